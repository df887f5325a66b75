"""Write the synthetic demo cohort (DICOM, labels.csv, defects.json) atomically and deterministically."""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from radflow.errors import InputError
from radflow.synth.defects import as_json, pick_targets, plant, truncate_files
from radflow.synth.files import write_dataset
from radflow.synth.headers import study_uid
from radflow.synth.plan import Study, make_plan
from radflow.synth.studies import SeriesFiles, study_series

MARKER = ".radflow-synth.json"
VERSION = 1


@dataclass(frozen=True)
class CohortSummary:
    """What a cohort holds, in counts only (no identifiers)."""

    patients: int
    studies: int
    radiograph_studies: int
    ct_studies: int
    series: int
    files: int
    positives: int
    defects: int

    def describe(self) -> str:
        """A one-line human summary."""
        return (
            f"Synthetic cohort: {self.patients} patients, {self.studies} studies "
            f"({self.radiograph_studies} radiograph, {self.ct_studies} CT), {self.series} series, "
            f"{self.files} DICOM files, {self.positives} positive studies, {self.defects} planted defects."
        )


def _write_labels(root: Path, seed: int, studies: list[Study]) -> None:
    """labels.csv: one row per study, label 1 when the study shows the finding."""
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["StudyInstanceUID", "label"])
        for study in studies:
            writer.writerow([study_uid(seed, study), int(study.positive)])


def _write_json(path: Path, payload: object) -> None:
    """Stable JSON (sorted keys, fixed indent) so that reruns are byte-identical."""
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _write_tree(root: Path, patients: int, seed: int) -> CohortSummary:
    """Generate and write every file of the cohort under `root` (an empty folder)."""
    studies = make_plan(patients, seed)
    series_of: dict[str, list[SeriesFiles]] = {}
    for study in tqdm(studies, desc="synth studies", unit="study", disable=None):
        series_of[study.folder] = study_series(seed, study)
    records = plant(seed, series_of, pick_targets(seed, studies))
    all_series = [series for group in series_of.values() for series in group]
    for series in all_series:
        for rel, ds in series.files:
            write_dataset(ds, root / rel)
    truncate_files(root, records)
    _write_labels(root, seed, studies)
    _write_json(root / "defects.json", {"version": VERSION, "defects": as_json(records)})
    return CohortSummary(
        patients=patients,
        studies=len(studies),
        radiograph_studies=sum(s.kind == "radiograph" for s in studies),
        ct_studies=sum(s.kind == "ct" for s in studies),
        series=len(all_series),
        files=sum(len(series.files) for series in all_series),
        positives=sum(s.positive for s in studies),
        defects=len(records),
    )


def _read_marker(out_dir: Path) -> dict[str, object] | None:
    """The completion marker of a cohort folder, or None when absent or unreadable."""
    try:
        marker = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def write_cohort(out_dir: Path, patients: int, seed: int) -> CohortSummary:
    """Write a fresh cohort into `out_dir`, replacing an earlier synthetic cohort but never other data."""
    out_dir = Path(out_dir)
    if patients < 2:
        raise InputError(
            f"A synthetic cohort needs at least 2 patients, got {patients}; pass --patients 2 or more."
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; pass a folder for the synthetic cohort.")
    if out_dir.exists() and any(out_dir.iterdir()) and _read_marker(out_dir) is None:
        raise InputError(f"{out_dir} exists and is not a synthetic cohort; choose an empty or new folder.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        summary = _write_tree(tmp, patients, seed)
        _write_json(
            tmp / MARKER, {"version": VERSION, "patients": patients, "seed": seed, "summary": asdict(summary)}
        )
        _replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _replace(new: Path, target: Path) -> None:
    """Move `new` into place as `target`; an old cohort is moved aside first and then deleted."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def ensure_cohort(out_dir: Path, patients: int, seed: int) -> CohortSummary:
    """Return the cohort in `out_dir` if it was completed with these arguments, else write it."""
    marker = _read_marker(Path(out_dir))
    if marker and (marker.get("version"), marker.get("patients"), marker.get("seed")) == (
        VERSION,
        patients,
        seed,
    ):
        summary = marker.get("summary")
        if isinstance(summary, dict):
            return CohortSummary(**summary)
    return write_cohort(out_dir, patients, seed)
