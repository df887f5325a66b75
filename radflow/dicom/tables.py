"""The clean stage's tables: the manifest it reads and the series and dispositions tables it writes.

Columns travel as plain Python lists through pyarrow: the stage touches every manifest row a few
times, and pandas' per-row access (`.at`, `.iloc`, `to_dict`) cost more than the header checks of
a small series. Column types are those of docs/architecture.md, written with an explicit schema so
an empty table keeps them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from radflow.errors import InputError

__all__ = [
    "DISPOSITION_SCHEMA",
    "SERIES_COLUMNS",
    "SERIES_SCHEMA",
    "Disposition",
    "Manifest",
    "fresh",
    "read_manifest",
    "write_dispositions",
    "write_series",
]

_TEXT = pa.large_string()  # what pandas' str columns are written as; kept for the same file types
_FLOATS = pa.list_(pa.float64())
SERIES_SCHEMA = pa.schema(
    [
        ("series_key", _TEXT),
        ("patient_key", _TEXT),
        ("study_key", _TEXT),
        ("modality", _TEXT),
        ("kind", _TEXT),
        ("n_slices", pa.int64()),
        ("shape", pa.list_(pa.int64())),
        ("spacing_mm", _FLOATS),
        ("orientation", _FLOATS),
        ("origin", _FLOATS),
        ("affine", _FLOATS),
        ("array_path", _TEXT),
        ("manufacturer", _TEXT),
        ("site_key", _TEXT),
        ("sex", _TEXT),
        ("age_band", _TEXT),
        ("source_sop_keys", pa.list_(pa.string())),
        ("notes", _TEXT),
        ("technical", _TEXT),
    ]
)
SERIES_COLUMNS = SERIES_SCHEMA.names
DISPOSITION_SCHEMA = pa.schema(
    [(name, _TEXT) for name in ("path", "disposition", "reason", "detail", "series_key")]
)


class Disposition(NamedTuple):
    """One dispositions.parquet row."""

    path: str
    disposition: str  # accepted, deduplicated or quarantined
    reason: str  # a reason code, '' when accepted
    detail: str  # one sentence, never a header value
    series_key: str  # ';'-joined when a multi-frame file went into several series


@dataclass(frozen=True)
class Manifest:
    """manifest.parquet as columns of Python values (null → None), and the source root it is relative to."""

    columns: dict[str, list[Any]]
    rows: int
    root: Path

    def column(self, name: str) -> list[Any]:
        """A column's values; all None when an older manifest lacks it."""
        found = self.columns.get(name)
        return found if found is not None else [None] * self.rows


def read_manifest(path: Path, root: Path) -> Manifest:
    """Read manifest.parquet; a missing `path` column or an unreadable file is the user's to fix."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        raise InputError(f"{path} is not a readable parquet file; re-run ingest to rewrite it.") from None
    if "path" not in table.column_names:
        raise InputError(f"{path} has no 'path' column; re-run ingest with this version of radflow.")
    return Manifest(table.to_pydict(), table.num_rows, root)


def fresh(path: Path) -> Path:
    """`path` with any previous file removed, so it is written anew rather than truncated in place.

    ext4 flushes a file that was truncated and rewritten when it is closed (its auto_da_alloc guard
    for applications that do not fsync): ~4 ms per output on every re-run; a new file is not flushed.
    An output DVC checked out as a link to its cache is replaced, never written through, too.
    """
    path.unlink(missing_ok=True)
    return path


def write_series(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """series.parquet, one row per output series, ordered by series_key."""
    ordered = sorted(rows, key=lambda r: r["series_key"])
    pq.write_table(pa.Table.from_pylist(ordered, schema=SERIES_SCHEMA), fresh(path))


def write_dispositions(rows: Sequence[Disposition], path: Path) -> None:
    """dispositions.parquet, one row per manifest row, in manifest order."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(DISPOSITION_SCHEMA)
    arrays = [pa.array(values, _TEXT) for values in columns]
    pq.write_table(pa.Table.from_arrays(arrays, schema=DISPOSITION_SCHEMA), fresh(path))
