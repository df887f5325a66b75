"""Ingest stage: scan every file under a folder into data/ingest/manifest.parquet, incrementally.

One row per file (DICOM or not), header-only reads across cores, de-identified keys only; a
re-run reads only new or changed files and drops deleted ones. With ingest.redact_paths, patient
identifiers in folder and file names are redacted from the manifest's paths (radflow.dicom.paths);
with `redact_paths: all`, every folder and file name is.
See docs/architecture.md for the manifest's columns. `python -m tasks.ingest --source data/demo
--out data/ingest` (DVC), or `radflow ingest SRC --out OUT`.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from radflow.config import IngestParams, load_section
from radflow.dicom.deid import key_fingerprint, load_key
from radflow.dicom.paths import Redactor, by_path_key
from radflow.dicom.scan_manifest import (
    previous_manifest,
    read_redaction,
    reusable,
    source_record,
    to_table,
    write,
)
from radflow.dicom.scan_pool import paused_gc, read_headers
from radflow.dicom.scan_walk import Stat, list_files
from radflow.errors import InputError, user_errors

__all__ = ["IngestResult", "main", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What an ingest wrote and how much of it was read afresh."""

    manifest: Path
    files: int  # rows in the manifest: every file under the source
    dicom: int
    unreadable: int  # DICOM whose header failed to parse
    not_dicom: int
    read: int  # files whose headers were read in this run
    reused: int  # rows taken unchanged from the previous manifest
    dropped: int  # rows of the previous manifest whose files are gone or changed
    seconds: float

    def describe(self) -> str:
        """One summary line for people (counts only, never identifiers)."""
        return (
            f"ingest: {self.files} files → {self.manifest}: {self.dicom} DICOM "
            f"({self.unreadable} unreadable), {self.not_dicom} not DICOM; read {self.read}, "
            f"reused {self.reused}, dropped {self.dropped} in {self.seconds:.1f} s."
        )


def run(params: IngestParams, source: Path, out: Path) -> IngestResult:
    """Scan `source` recursively into `out`/manifest.parquet and `out`/source.json; reuse unchanged rows."""
    start = time.perf_counter()
    if not source.is_dir():
        raise InputError(
            f"source folder {source} does not exist or is not a folder; pass the folder that holds "
            "the DICOM files (ingest.source in params.yaml)."
        )
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file, not a folder; pass a folder for manifest.parquet.")
    key = load_key()
    with paused_gc():
        return _run(params, source, out, key, start)


def _run(params: IngestParams, source: Path, out: Path, key: bytes, start: float) -> IngestResult:
    """The scan proper: walk, reuse, read, write."""
    record = source_record(source, key_fingerprint(key), params.redact_paths)
    # The previous manifest is read (pyarrow, which releases the GIL) while the walk stats every file;
    # the reader thread is joined here, before read_headers forks any worker.
    with ThreadPoolExecutor(max_workers=1) as reader:
        earlier = reader.submit(previous_manifest, out, record)
        files = list_files(source, exclude=out, hide_names=bool(params.redact_paths), folders=True)
        previous = earlier.result()
    if not files and not os.access(source, os.R_OK | os.X_OK):
        raise InputError(
            f"source folder {source} cannot be listed (permission denied); make it readable by this "
            "user and re-run ingest."
        )
    digests: set[str] | None = None
    if params.redact_paths:
        table, read, reused, digests = _scan_redacted(params, source, out, files, previous, key)
    else:
        kept, todo = reusable(previous, files)
        fresh = to_table(read_headers(os.fspath(source), todo, key, params.workers))
        table = fresh if kept is None else pa.concat_tables([kept, fresh])
        read, reused = len(todo), 0 if kept is None else kept.num_rows
    manifest = write(out, table, record, digests)
    return _result(manifest, table, read, reused, _dropped(previous, reused), start)


def _scan_redacted(
    params: IngestParams,
    source: Path,
    out: Path,
    files: list[Stat],
    previous: pa.Table | None,
    key: bytes,
) -> tuple[pa.Table, int, int, set[str]]:
    """The scan with paths redacted: the table, files read, rows reused and the grown digest set."""
    known = read_redaction(out) if previous is not None else None
    if known is None or known[0] != key_fingerprint(key):  # rows redacted with another set: read all
        previous, digests = None, set[str]()
    else:
        digests = set(known[1])
    learnt = frozenset(digests)
    # Walked files match reused rows by path_key, so nothing is redacted for an unchanged file.
    by_key = by_path_key(files, key)
    kept, todo = reusable(previous, [(k, size, mtime) for k, (_, size, mtime) in by_key.items()], "path_key")
    rows = read_headers(os.fspath(source), [by_key[k] for k, _, _ in todo], key, params.workers, digests)
    redactor = Redactor(key, digests, every_name=params.redact_paths == "all")
    fresh = _set(to_table(rows), "path", [redactor.redact(r.path) for r in rows])
    fresh = _set(fresh, "path_key", [k for k, _, _ in todo])
    if kept is None:
        return fresh, len(todo), 0, digests
    if digests != learnt and not redactor.every_name:
        # New identifiers may be in reused rows' paths too (a folder named after a patient whose
        # first image just arrived): those are redacted afresh, so the manifest is a fresh scan's.
        real = [by_key[k][0] for k in kept.column("path_key").to_pylist()]  # (path, size, mtime)
        kept = _set(kept, "path", [redactor.redact(p) for p in real])
    return pa.concat_tables([kept, fresh]), len(todo), kept.num_rows, digests


def _set(table: pa.Table, name: str, values: list[str]) -> pa.Table:
    """`table` with the text column `name` replaced by `values`."""
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, pa.string()))


def _dropped(previous: pa.Table | None, reused: int) -> int:
    return 0 if previous is None else previous.num_rows - reused


def _result(
    manifest: Path, table: pa.Table, read: int, reused: int, dropped: int, start: float
) -> IngestResult:
    is_dicom = table.column("is_dicom")
    failed = pc.not_equal(table.column("read_error"), "")
    dicom = int(pc.sum(is_dicom).as_py() or 0)
    unreadable = int(pc.sum(pc.and_(is_dicom, failed)).as_py() or 0)
    return IngestResult(
        manifest,
        table.num_rows,
        dicom,
        unreadable,
        table.num_rows - dicom,
        read,
        reused,
        dropped,
        time.perf_counter() - start,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """DVC entry point: `python -m tasks.ingest --source DIR --out DIR [--params params.yaml]`."""
    parser = argparse.ArgumentParser(prog="python -m tasks.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="Folder to scan (default: params ingest.source).")
    parser.add_argument(
        "--out", type=Path, required=True, help="Folder for manifest.parquet and source.json."
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="The params.yaml to read.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with user_errors():
        params = load_section("ingest", IngestParams, args.params)
        result = run(params, args.source or params.source, args.out)
    print(result.describe())


if __name__ == "__main__":
    main()
