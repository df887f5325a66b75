"""Stage clean: triage, dedupe, split series, sort, check geometry, decode, de-identify.

Reads data/ingest (manifest.parquet + source.json) and writes arrays/<series_key>.npy,
series.parquet, dispositions.parquet (exactly one row per manifest row) and quarantine.csv/.html.
The checks run in the order of docs/architecture.md; every file ends with one disposition.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from radflow.config import CleanParams, load_section
from radflow.dicom import deid
from radflow.dicom.assemble import Chunk, ChunkResult, chunks_of, create_array, decode_chunk, series_row
from radflow.dicom.duplicates import resolve_duplicates
from radflow.dicom.instances import Instance
from radflow.dicom.report import write_quarantine
from radflow.dicom.series import Plan, plan_radiograph, plan_stack, split_stacks
from radflow.dicom.triage import Verdict, inspect_file, manifest_verdict
from radflow.dicom.workers import parallel_map, quiet
from radflow.errors import InputError, user_errors

__all__ = ["CleanResult", "main", "run"]

SERIES_COLUMNS = [
    "series_key",
    "patient_key",
    "study_key",
    "modality",
    "kind",
    "n_slices",
    "shape",
    "spacing_mm",
    "orientation",
    "origin",
    "affine",
    "array_path",
    "manufacturer",
    "site_key",
    "sex",
    "age_band",
    "source_sop_keys",
    "notes",
    "technical",
]


@dataclass(frozen=True)
class CleanResult:
    """What the clean stage wrote, with counts per disposition and per reason."""

    out: Path
    files: int
    accepted: int
    deduplicated: int
    quarantined: int
    series: int
    reasons: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One paragraph for the terminal."""
        top = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        return (
            f"clean: {self.files} files → {self.accepted} accepted, {self.deduplicated} deduplicated, "
            f"{self.quarantined} quarantined ({top or 'none'}); {self.series} series in {self.out}"
        )


@dataclass
class _Ledger:
    """Per manifest row: the verdicts its slices met and the series it went into."""

    verdicts: dict[int, list[Verdict]] = field(default_factory=dict)
    series: dict[int, list[str]] = field(default_factory=dict)
    kept_copy: dict[int, int] = field(default_factory=dict)

    def reject(self, row: int, verdict: Verdict) -> None:
        self.verdicts.setdefault(row, []).append(verdict)

    def accept(self, row: int, series_key: str) -> None:
        keys = self.series.setdefault(row, [])
        if series_key not in keys:
            keys.append(series_key)


def _read_ingest(ingest_dir: Path) -> tuple[pd.DataFrame, Path]:
    """The manifest and the source root it is relative to."""
    manifest_path, source_path = ingest_dir / "manifest.parquet", ingest_dir / "source.json"
    for p in (manifest_path, source_path):
        if not p.is_file():
            raise InputError(f"{p} not found; run `radflow ingest SRC_DIR --out {ingest_dir}` first.")
    try:
        root = Path(json.loads(source_path.read_text())["root"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{source_path} has no 'root' entry; re-run ingest to rewrite it.") from None
    manifest = pd.read_parquet(manifest_path).reset_index(drop=True)
    if "path" not in manifest.columns:
        raise InputError(f"{manifest_path} has no 'path' column; re-run ingest with this version of radflow.")
    return manifest, root


def _triage_manifest(manifest: pd.DataFrame, params: CleanParams, ledger: _Ledger, root: Path) -> list[int]:
    """Checks 1-2: manifest triage and duplicate resolution; returns the rows that go on."""
    alive: list[int] = []
    for i, rec in enumerate(manifest.to_dict("records")):
        verdict = manifest_verdict(rec, params.modalities)
        if verdict is None:
            alive.append(i)
        else:
            ledger.reject(i, verdict)
    sop = manifest["sop_instance_key"] if "sop_instance_key" in manifest else pd.Series([""] * len(manifest))
    with quiet():
        dropped, conflicts = resolve_duplicates(
            [(i, str(sop[i] or ""), str(manifest.at[i, "path"])) for i in alive], root
        )
    ledger.kept_copy.update(dropped)
    for i, verdict in conflicts.items():
        ledger.reject(i, verdict)
    return [i for i in alive if i not in dropped and i not in conflicts]


def _inspect(args: tuple[str, int, CleanParams]) -> Instance | Verdict:
    return inspect_file(*args)


def _plans(instances: list[Instance], params: CleanParams, ledger: _Ledger) -> list[Plan]:
    """Checks 3-12: split into stacks, then sort and check each; rejected slices go to the ledger."""
    stacks, rejected = split_stacks(instances, params)
    plans: list[Plan] = []
    for stack in stacks:
        if stack.kind == "radiograph":
            plans.append(plan_radiograph(stack))
            continue
        more, bad = plan_stack(stack, params)
        plans += more
        rejected += bad
    for s, verdict in rejected:
        ledger.reject(s.row, verdict)
    return plans


def _decode(args: tuple[Chunk, bytes]) -> ChunkResult:
    return decode_chunk(*args)


def _write_arrays(
    plans: list[Plan],
    instances: list[Instance],
    manifest: pd.DataFrame,
    root: Path,
    arrays: Path,
    params: CleanParams,
    ledger: _Ledger,
) -> list[dict[str, Any]]:
    """Checks 13-15: decode every plan into its array (chunks across workers); the series rows."""
    key = deid.load_key()
    paths = {i: str(root / str(p)) for i, p in enumerate(manifest["path"])}
    recipes = {inst.row: inst.recipe for inst in instances if inst.recipe is not None}
    mosaics = {inst.row: inst.mosaic for inst in instances if inst.mosaic is not None}
    tmp = [arrays / f".plan{i}.npy.tmp" for i in range(len(plans))]
    jobs: list[tuple[Chunk, bytes]] = []
    for i, plan in enumerate(plans):
        create_array(plan, tmp[i])
        jobs += [(c, key) for c in chunks_of(plan, i, tmp[i], paths, recipes, mosaics, params.workers)]
    failed: dict[int, Verdict] = {}
    facts: dict[int, dict[str, Any]] = {}
    for done in parallel_map(_decode, jobs, params.workers, "series"):
        if done.verdict is not None:
            failed.setdefault(done.plan, done.verdict)
        if done.facts is not None:
            facts[done.plan] = done.facts
    rows = []
    for i, plan in enumerate(plans):
        if i in failed:
            tmp[i].unlink()
            for s in plan.slices:
                ledger.reject(s.row, failed[i])
            continue
        row = series_row(plan, manifest.iloc[[s.row for s in plan.slices]], facts[i], key)
        tmp[i].replace(arrays / f"{row['series_key']}.npy")
        rows.append(row)
        for s in plan.slices:
            ledger.accept(s.row, row["series_key"])
    return rows


DEDUPLICATED = "An identical copy of another file (same SOP Instance UID and pixels)."
UNACCOUNTED = Verdict("DECODE_FAILED", "The file reached no output series.")


def _disposition(i: int, ledger: _Ledger) -> tuple[str, str, str, str]:
    """(disposition, reason, detail, series_key) of manifest row i."""
    if i in ledger.series:
        return "accepted", "", "", ";".join(ledger.series[i])
    if i in ledger.kept_copy:
        return "deduplicated", "", DEDUPLICATED, ";".join(ledger.series.get(ledger.kept_copy[i], []))
    first = (ledger.verdicts.get(i) or [UNACCOUNTED])[0]  # the earliest check a file failed names it
    return "quarantined", first.reason, first.detail, ""


def _dispositions(manifest: pd.DataFrame, ledger: _Ledger) -> pd.DataFrame:
    """Exactly one row per manifest row: accepted if any of its slices reached a written series."""
    rows = [(path, *_disposition(i, ledger)) for i, path in enumerate(manifest["path"])]
    table = pd.DataFrame(rows, columns=["path", "disposition", "reason", "detail", "series_key"])
    if len(table) != len(manifest) or not table["path"].equals(manifest["path"].reset_index(drop=True)):
        raise RuntimeError("bug: the dispositions do not account for every manifest row exactly once")
    return table


def run(params: CleanParams, ingest_dir: Path, out: Path) -> CleanResult:
    """Clean the files an ingest manifest lists into arrays, series and dispositions under `out`."""
    manifest, root = _read_ingest(ingest_dir)
    arrays = out / "arrays"
    shutil.rmtree(arrays, ignore_errors=True)  # stale arrays of a previous run would be untracked orphans
    arrays.mkdir(parents=True)
    ledger = _Ledger()
    alive = _triage_manifest(manifest, params, ledger, root)
    jobs = [(str(root / str(manifest.at[i, "path"])), i, params) for i in alive]
    instances: list[Instance] = []
    for i, found in zip(alive, parallel_map(_inspect, jobs, params.workers, "headers"), strict=True):
        if isinstance(found, Verdict):
            ledger.reject(i, found)
        else:
            instances.append(found)
    plans = _plans(instances, params, ledger)
    rows = _write_arrays(plans, instances, manifest, root, arrays, params, ledger)
    return _write(out, manifest, ledger, rows)


def _write(out: Path, manifest: pd.DataFrame, ledger: _Ledger, rows: list[dict[str, Any]]) -> CleanResult:
    """series.parquet, dispositions.parquet and the quarantine report; the counts."""
    series = pd.DataFrame(rows, columns=SERIES_COLUMNS).sort_values("series_key").reset_index(drop=True)
    series.to_parquet(out / "series.parquet", index=False)
    table = _dispositions(manifest, ledger)
    table.to_parquet(out / "dispositions.parquet", index=False)
    quarantined = write_quarantine(table, out)
    counts = Counter(table["disposition"])
    return CleanResult(
        out=out,
        files=len(table),
        accepted=counts["accepted"],
        deduplicated=counts["deduplicated"],
        quarantined=counts["quarantined"],
        series=len(series),
        reasons=dict(Counter(quarantined["reason"])),
    )


def main(argv: list[str] | None = None) -> None:
    """DVC entry point: python -m tasks.clean --ingest data/ingest --out data/clean."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ingest", type=Path, default=Path("data/ingest"), help="Output folder of the ingest stage."
    )
    parser.add_argument("--out", type=Path, default=Path("data/clean"), help="Folder for the clean outputs.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="The params.yaml to read.")
    args = parser.parse_args(argv)
    with user_errors():
        params = load_section("clean", CleanParams, args.params) if args.params.exists() else CleanParams()
        print(run(params, args.ingest, args.out).describe())


if __name__ == "__main__":
    main()
