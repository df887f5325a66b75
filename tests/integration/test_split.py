"""The split stage on a small clean output: grouping, predefined splits, leakage and PHI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cleandata import write_clean_dir

from radflow.config import SplitParams
from radflow.errors import InputError
from tasks.split import run

ROOT = Path(__file__).resolve().parents[2]


def test_grouped_split_keeps_patients_together_and_is_seeded(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=60, studies_per_patient=2)
    result = run(SplitParams(strategy="grouped", seed=3), clean, labels, tmp_path / "a")
    table = pd.read_parquet(result.path)
    assert list(table.columns) == ["study_key", "patient_key", "label", "split"]
    assert len(table) == 120 and set(table["split"]) == {"train", "val", "test"}
    assert table.groupby("patient_key")["split"].nunique().max() == 1
    assert 0.45 < (table["split"] == "train").mean() < 0.75
    for name in ("train", "val", "test"):
        assert 0 < table.loc[table["split"] == name, "label"].mean() < 1
    again = pd.read_parquet(run(SplitParams(strategy="grouped", seed=3), clean, labels, tmp_path / "b").path)
    pd.testing.assert_frame_equal(table, again)


def test_predefined_split_honours_the_column_and_counts_mismatches(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=12, studies_per_patient=1)
    raw = pd.read_csv(labels)
    series = pd.read_parquet(clean / "series.parquet")
    series.iloc[1:].to_parquet(clean / "series.parquet")  # one labelled study lost in cleaning
    extra = pd.DataFrame([{"StudyInstanceUID": "9.9.9", "label": 1, "split": "train"}])
    pd.concat([raw, extra]).to_csv(labels, index=False)
    result = run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "out")
    table = pd.read_parquet(result.path)
    assert len(table) == 11 and result.labels_without_study == 2 and result.unlabelled_studies == 0
    expected = raw.iloc[1:]["split"].value_counts().to_dict()
    assert result.counts == expected


def test_predefined_without_split_column_is_one_sentence(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=6, studies_per_patient=1)
    pd.read_csv(labels).drop(columns="split").to_csv(labels, index=False)
    with pytest.raises(InputError, match="split"):
        run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "out")


def test_leakage_fails_the_stage_without_identifiers(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=6, studies_per_patient=2)
    raw = pd.read_csv(labels)
    raw.loc[0, "split"], raw.loc[1, "split"] = "train", "test"  # patient 0's two studies
    raw.to_csv(labels, index=False)
    params = tmp_path / "params.yaml"
    params.write_text(f"split:\n  labels: {labels}\n  strategy: predefined\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasks.split",
            "--clean",
            str(clean),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "out"),
            "--params",
            str(params),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "1 patient(s) have studies in more than one split" in proc.stderr
    assert "Traceback" not in proc.stderr and "1.2.826" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "split.parquet").exists()


def test_outputs_hold_no_raw_uids(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=9, studies_per_patient=1)
    path = run(SplitParams(), clean, labels, tmp_path / "out").path
    assert b"1.2.826" not in path.read_bytes()
    assert pd.read_parquet(path)["study_key"].str.startswith("st-").all()
