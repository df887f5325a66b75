"""The clean stage's tables keep the column types of docs/architecture.md, empty or not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from radflow.dicom.tables import (
    SERIES_COLUMNS,
    SERIES_SCHEMA,
    Disposition,
    read_manifest,
    write_dispositions,
    write_series,
)
from radflow.dicom.workers import worker_count
from radflow.errors import InputError


def series(key: str) -> dict[str, object]:
    return {
        "series_key": key, "patient_key": "pt-1", "study_key": "st-1", "modality": "CT", "kind": "volume",
        "n_slices": 4, "shape": [4, 2, 2], "spacing_mm": [1.0, 0.5, 0.5], "orientation": [1.0, 0, 0, 0, 1, 0],
        "origin": [0.0, 0.0, 0.0], "affine": [0.0] * 16, "array_path": f"arrays/{key}.npy",
        "manufacturer": "", "site_key": "", "sex": "", "age_band": "", "source_sop_keys": ["2.25.1"],
        "notes": "", "technical": "{}",
    }  # fmt: skip


def test_series_table_is_sorted_and_typed_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "series.parquet"
    write_series([series("se-b"), series("se-a")], path)
    table = pd.read_parquet(path)
    assert list(table.columns) == SERIES_COLUMNS and list(table.series_key) == ["se-a", "se-b"]
    assert list(table["shape"][0]) == [4, 2, 2] and list(table.source_sop_keys[0]) == ["2.25.1"]
    write_series([], path)  # rewritten in place: a re-run replaces the file
    assert pq.read_schema(path).remove_metadata().equals(SERIES_SCHEMA) and len(pd.read_parquet(path)) == 0


def test_dispositions_round_trip_in_manifest_order(tmp_path: Path) -> None:
    rows = [
        Disposition("b.dcm", "accepted", "", "", "se-1"),
        Disposition("a.txt", "quarantined", "NOT_DICOM", "x", ""),
    ]
    path = tmp_path / "dispositions.parquet"
    write_dispositions(rows, path)
    assert [Disposition(*r) for r in pd.read_parquet(path).itertuples(index=False)] == rows
    write_dispositions([], path)
    assert list(pd.read_parquet(path).columns) == list(Disposition._fields)


def test_manifest_problems_are_one_sentence_input_errors(tmp_path: Path) -> None:
    pq.write_table(pa.table({"path": ["a.dcm"], "modality": [None]}), tmp_path / "m.parquet")
    manifest = read_manifest(tmp_path / "m.parquet", tmp_path)
    assert manifest.rows == 1 and manifest.column("modality") == [None] and manifest.column("gone") == [None]
    pq.write_table(pa.table({"file": ["a.dcm"]}), tmp_path / "old.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    for name in ("old.parquet", "junk.parquet"):
        with pytest.raises(InputError, match=name):
            read_manifest(tmp_path / name, tmp_path)


@pytest.mark.parametrize(
    ("workers", "jobs", "per_worker", "expected"),
    [(1, 1000, 1, 1), (4, 1000, 128, 4), (4, 300, 128, 2), (4, 127, 128, 1), (2, 0, 1, 1)],
)
def test_worker_count_gives_each_process_enough_work(
    workers: int, jobs: int, per_worker: int, expected: int
) -> None:
    assert worker_count(workers, jobs, per_worker) == expected
