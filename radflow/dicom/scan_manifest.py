"""The manifest table: its schema, the rows a previous ingest can lend, and atomic writing.

A previous manifest is reused only when it was written under the same key (fingerprint), by the
same scan version, for the same source and with path redaction as now; then each row whose (path,
size, mtime_ns) is unchanged is kept as it is, and only the other files are read again. With
ingest.redact_paths, rows match files by (path_key, size, mtime_ns) instead, and redaction.json
holds the digests that paths were redacted with.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from radflow.dicom.scan import COLUMNS, Header
from radflow.dicom.scan_walk import Stat

__all__ = [
    "MANIFEST",
    "REDACTION",
    "SCAN_VERSION",
    "SCHEMA",
    "SOURCE",
    "previous_manifest",
    "read_redaction",
    "reusable",
    "source_record",
    "to_table",
    "write",
]

log = logging.getLogger(__name__)

MANIFEST, SOURCE, REDACTION = "manifest.parquet", "source.json", "redaction.json"
SCAN_VERSION = 5  # bump when a column's meaning changes: older manifests are then re-scanned whole
_TYPES = {
    "size": pa.int64(),
    "mtime_ns": pa.int64(),
    "is_dicom": pa.bool_(),
    "has_pixel_data": pa.bool_(),
    "series_number": pa.int64(),
    "instance_number": pa.int64(),
    "rows": pa.int64(),
    "columns": pa.int64(),
    "number_of_frames": pa.int64(),
}
SCHEMA = pa.schema([(name, _TYPES.get(name, pa.string())) for name in COLUMNS])


def to_table(rows: Sequence[Header]) -> pa.Table:
    """Rows as an Arrow table with the manifest schema (integers nullable)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = [pa.array(c, f.type) for c, f in zip(columns, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def source_record(source: Path, fingerprint: str, redact_paths: bool | str = False) -> dict[str, Any]:
    """source.json: the root as given (relative stays relative) and what the rows depend on.

    `redact_paths` is recorded as true, or "all" when every name is hidden (switching re-scans)."""
    record: dict[str, Any] = {
        "root": source.as_posix(),
        "key_fingerprint": fingerprint,
        "scan_version": SCAN_VERSION,
    }
    if redact_paths:  # only when on: without it, source.json stays as it always was
        record["redact_paths"] = redact_paths  # true, or "all" (ingest.redact_paths, validated)
    return record


def previous_manifest(out: Path, record: dict[str, Any]) -> pa.Table | None:
    """The manifest in `out` if it was written for the same root, key and scan version; else None."""
    manifest, source = out / MANIFEST, out / SOURCE
    if not (manifest.is_file() and source.is_file()):
        return None
    try:
        before = json.loads(source.read_text())
        table = pq.ParquetFile(manifest).read()  # not read_table: it imports pyarrow.dataset (~0.5 s)
    except (OSError, ValueError, pa.ArrowException):
        log.warning("the previous manifest in %s is unreadable; scanning every file again", out)
        return None
    changed = [k for k in sorted(record.keys() | before.keys()) if before.get(k) != record.get(k)]
    if changed:
        log.info("previous manifest was written with a different %s; scanning every file again", changed[0])
        return None
    if table.schema.names != SCHEMA.names:
        return None
    return table.cast(SCHEMA)


def reusable(
    previous: pa.Table | None, files: Sequence[Stat], by: str = "path"
) -> tuple[pa.Table | None, list[Stat]]:
    """Previous rows still valid (same `by` column, size and mtime_ns), and the files that must be read.

    `files` name each file as the `by` column does: its path, or (redacted paths) its path_key.
    """
    if previous is None or previous.num_rows == 0:
        return None, list(files)
    # (name, size, mtime_ns) triples: a file's Stat is such a tuple, so sets match them without lookups
    rows = list(zip(*(previous.column(c).to_pylist() for c in (by, "size", "mtime_ns")), strict=True))
    known = set(rows)
    todo = [f for f in files if f not in known]
    if len(todo) == len(files):
        return None, todo
    if len(files) - len(todo) == len(rows):  # names are unique: every previous row matched a file
        return previous, todo
    current = set(files)
    # One flag per previous row, in its order: deleted and changed files drop out.
    keep = [row in current for row in rows]
    return previous.filter(pa.array(keep, pa.bool_())), todo


def read_redaction(out: Path) -> tuple[str, frozenset[str]] | None:
    """redaction.json in `out`: key fingerprint and path-token digests; None when absent or unreadable."""
    try:
        data = json.loads((out / REDACTION).read_text())
        return str(data["key_fingerprint"]), frozenset(str(d) for d in data["digests"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(out: Path, table: pa.Table, record: dict[str, Any], digests: Collection[str] | None = None) -> Path:
    """Write manifest.parquet (sorted by path), redaction.json (when `digests`) and source.json atomically."""
    out.mkdir(parents=True, exist_ok=True)
    table = table.sort_by("path")
    path = out / MANIFEST
    tmp = out / f".{MANIFEST}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    if digests is None:
        (out / REDACTION).unlink(missing_ok=True)  # a stale set would make clean redact real paths
    else:
        redaction = {"key_fingerprint": record["key_fingerprint"], "digests": sorted(digests)}
        _write_json(out / REDACTION, redaction)
    _write_json(out / SOURCE, record)  # last: source.json vouches for the files written before it
    return path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
