"""Stage clean: triage, dedupe, split series, sort, check geometry, decode, de-identify.

Reads data/ingest (manifest.parquet + source.json) and writes arrays/<series_key>.npy,
series.parquet, dispositions.parquet (exactly one row per manifest row) and quarantine.csv/.html.
The checks run in the order of docs/architecture.md; every file ends with one disposition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radflow.config import CleanParams, load_section
from radflow.dicom import deid
from radflow.dicom.assemble import (
    Chunk,
    ChunkResult,
    chunks_of,
    create_array,
    decode_chunk,
    resample_planes,
    series_row,
)
from radflow.dicom.duplicates import resolve_duplicates
from radflow.dicom.instances import Instance
from radflow.dicom.paths import SourcePaths, source_paths
from radflow.dicom.report import write_quarantine
from radflow.dicom.series import Plan, plan_radiograph, plan_stack, split_stacks
from radflow.dicom.tables import Disposition, Manifest, read_manifest, write_dispositions, write_series
from radflow.dicom.triage import Verdict, inspect_file, manifest_verdict
from radflow.dicom.workers import parallel_map, quiet, worker_count
from radflow.errors import InputError, user_errors

__all__ = ["CleanResult", "main", "run"]

# A process pool's start-up (~50 ms, more on a loaded machine) pays off only with this much work
# per process: a header read costs ~0.4 ms, a 512x512 slice ~0.5 ms to decode and write.
HEADERS_PER_WORKER = 128
VOXELS_PER_WORKER = 1 << 25  # 128 MiB of float32 output, about 130 CT slices of 512x512


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


def _read_ingest(ingest_dir: Path) -> tuple[Manifest, SourcePaths]:
    """The manifest, and where its files are (its paths may be redacted: ingest.redact_paths)."""
    manifest_path, source_path = ingest_dir / "manifest.parquet", ingest_dir / "source.json"
    for p in (manifest_path, source_path):
        if not p.is_file():
            raise InputError(f"{p} not found; run `radflow ingest SRC_DIR --out {ingest_dir}` first.")
    try:
        root = Path(json.loads(source_path.read_text())["root"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{source_path} has no 'root' entry; re-run ingest to rewrite it.") from None
    manifest, source = read_manifest(manifest_path, root), source_paths(ingest_dir, deid.load_key())
    if source.real is not None and "path_key" not in manifest.columns:
        raise InputError(
            f"{manifest_path} has redacted paths but no path_key column; re-run ingest with this "
            "version of radflow."
        )
    return manifest, source


_TRIAGE_COLUMNS = ("is_dicom", "read_error", "sop_class_uid", "has_pixel_data", "modality")


def _triage_manifest(
    manifest: Manifest, source: SourcePaths, real: list[str], params: CleanParams, ledger: _Ledger
) -> list[int]:
    """Checks 1-2: manifest triage, files a redacted path no longer finds, duplicates; the rows that go on."""
    columns = [(name, manifest.column(name)) for name in _TRIAGE_COLUMNS]
    alive: list[int] = []
    for i in range(manifest.rows):
        verdict = manifest_verdict({name: values[i] for name, values in columns}, params.modalities)
        if verdict is None and not real[i]:  # outputs keep the redacted path; the sentence says why
            verdict = Verdict("UNREADABLE", source.why_unresolved())
        if verdict is None:
            alive.append(i)
        else:
            ledger.reject(i, verdict)
    sop = manifest.column("sop_instance_key")
    with quiet():
        dropped, conflicts = resolve_duplicates([(i, str(sop[i] or ""), real[i]) for i in alive], source.root)
    ledger.kept_copy.update(dropped)
    for i, verdict in conflicts.items():
        ledger.reject(i, verdict)
    return [i for i in alive if i not in dropped and i not in conflicts]


def _inspect(args: tuple[str, int, CleanParams]) -> Instance | Verdict:
    return inspect_file(*args)


def _instances(
    alive: list[int], paths: list[str], root: str, params: CleanParams, ledger: _Ledger
) -> list[Instance]:
    """Checks 4-7 per file: header triage and geometry; in-process unless there are many files."""
    jobs = [(paths[i], i, params) for i in alive]
    found = parallel_map(
        _inspect, jobs, params.workers, "headers", per_worker=HEADERS_PER_WORKER, reads=[root]
    )
    instances: list[Instance] = []
    for i, item in zip(alive, found, strict=True):
        if isinstance(item, Verdict):
            ledger.reject(i, item)
        else:
            instances.append(item)
    return instances


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


def _decode_all(
    plans: list[Plan],
    instances: list[Instance],
    paths: list[str],
    root: str,
    arrays: Path,
    params: CleanParams,
    key: bytes,
) -> tuple[dict[int, Verdict], dict[int, dict[str, Any]], list[Path]]:
    """Checks 13-14: decode every plan into its temporary array file; failures and header facts per plan."""
    recipes = {inst.row: inst.recipe for inst in instances if inst.recipe is not None}
    mosaics = {inst.row: inst.mosaic for inst in instances if inst.mosaic is not None}
    voxels = sum(len(p.slices) * p.size[0] * p.size[1] for p in plans)
    workers = worker_count(params.workers, voxels, VOXELS_PER_WORKER)  # small jobs stay in-process
    tmp = [arrays / f".plan{i}.npy.tmp" for i in range(len(plans))]
    jobs: list[tuple[Chunk, bytes]] = []
    for i, plan in enumerate(plans):
        create_array(plan, tmp[i])
        rows = {s.row: paths[s.row] for s in plan.slices}
        jobs += [(c, key) for c in chunks_of(plan, i, tmp[i], rows, recipes, mosaics, workers)]
    failed: dict[int, Verdict] = {}
    facts: dict[int, dict[str, Any]] = {}
    for done in parallel_map(_decode, jobs, workers, "series", reads=[root], writes=[str(arrays)]):
        if done.verdict is not None:
            failed.setdefault(done.plan, done.verdict)
        if done.facts is not None:
            facts[done.plan] = done.facts
    return failed, facts, tmp


_SOURCE_COLUMNS = ("patient_key", "study_key", "sop_instance_key")


def _write_arrays(
    plans: list[Plan],
    instances: list[Instance],
    manifest: Manifest,
    paths: list[str],
    root: str,
    arrays: Path,
    params: CleanParams,
    ledger: _Ledger,
) -> list[dict[str, Any]]:
    """Check 15: decode every plan, move its array into place; the series rows."""
    key = deid.load_key()
    failed, facts, tmp = _decode_all(plans, instances, paths, root, arrays, params, key)
    columns = {name: manifest.column(name) for name in _SOURCE_COLUMNS}
    rows = []
    for i, plan in enumerate(plans):
        if i in failed:
            tmp[i].unlink()
            for s in plan.slices:
                ledger.reject(s.row, failed[i])
            continue
        if plan.resample is not None:
            resample_planes(tmp[i], plan.resample)
        sources = {name: [values[s.row] for s in plan.slices] for name, values in columns.items()}
        row = series_row(plan, sources, facts[i], key)
        tmp[i].replace(arrays / f"{row['series_key']}.npy")
        rows.append(row)
        for s in plan.slices:
            ledger.accept(s.row, row["series_key"])
    return rows


DEDUPLICATED = "An identical copy of another file (same SOP Instance UID and pixels)."
UNACCOUNTED = Verdict("DECODE_FAILED", "The file reached no output series.")


def _disposition(i: int, path: str, ledger: _Ledger) -> Disposition:
    """The dispositions.parquet row of manifest row i."""
    if i in ledger.series:
        return Disposition(path, "accepted", "", "", ";".join(ledger.series[i]))
    if i in ledger.kept_copy:
        kept = ";".join(ledger.series.get(ledger.kept_copy[i], []))
        return Disposition(path, "deduplicated", "", DEDUPLICATED, kept)
    first = (ledger.verdicts.get(i) or [UNACCOUNTED])[0]  # the earliest check a file failed names it
    return Disposition(path, "quarantined", first.reason, first.detail, "")


def _dispositions(manifest: Manifest, ledger: _Ledger) -> list[Disposition]:
    """Exactly one row per manifest row: accepted if any of its slices reached a written series."""
    table = [_disposition(i, str(path), ledger) for i, path in enumerate(manifest.column("path"))]
    if len(table) != manifest.rows:
        raise RuntimeError("bug: the dispositions do not account for every manifest row exactly once")
    return table


def run(params: CleanParams, ingest_dir: Path, out: Path) -> CleanResult:
    """Clean the files an ingest manifest lists into arrays, series and dispositions under `out`."""
    manifest, source = _read_ingest(ingest_dir)
    arrays = (out / "arrays").absolute()  # absolute, like the paths: a Dask worker's cwd is its own
    shutil.rmtree(arrays, ignore_errors=True)  # stale arrays of a previous run would be untracked orphans
    arrays.mkdir(parents=True)
    ledger = _Ledger()
    shown = zip(manifest.column("path"), manifest.column("path_key"), strict=True)
    real = [source.resolve(str(p), k) or "" for p, k in shown]  # '': its file is gone
    root = os.path.abspath(source.root)
    paths = [os.path.join(root, p) for p in real]
    alive = _triage_manifest(manifest, source, real, params, ledger)
    instances = _instances(alive, paths, root, params, ledger)
    plans = _plans(instances, params, ledger)
    rows = _write_arrays(plans, instances, manifest, paths, root, arrays, params, ledger)
    return _write(out, manifest, ledger, rows)


def _write(out: Path, manifest: Manifest, ledger: _Ledger, rows: list[dict[str, Any]]) -> CleanResult:
    """series.parquet, dispositions.parquet and the quarantine report; the counts."""
    write_series(rows, out / "series.parquet")
    table = _dispositions(manifest, ledger)
    write_dispositions(table, out / "dispositions.parquet")
    quarantined = write_quarantine(table, out)
    counts = Counter(d.disposition for d in table)
    return CleanResult(
        out=out,
        files=len(table),
        accepted=counts["accepted"],
        deduplicated=counts["deduplicated"],
        quarantined=counts["quarantined"],
        series=len(rows),
        reasons=dict(Counter(d.reason for d in quarantined)),
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
