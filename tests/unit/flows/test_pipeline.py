"""Reading what `dvc repro` did from its output, and a failed stage as one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.pipeline import Pipeline, Stage, failure_sentence, outcome_of, read_pipeline
from radflow.errors import ConfigError


def test_outcomes_are_read_from_dvc_output() -> None:
    assert outcome_of("train", ["Running stage 'train':", "> python -m tasks.train"]) == "ran"
    assert outcome_of("train", ["Stage 'train' didn't change, skipping"]) == "skipped"
    assert outcome_of("split", ["Stage 'split' is cached - skipping run, checking out outputs"]) == "restored"


def test_a_stage_error_sentence_is_preferred_over_dvc_s() -> None:
    lines = [
        "error: params.yaml: 'train.epochs' is invalid (got 0).",
        "ERROR: failed to reproduce 'train': failed to run: python -m tasks.train, exited with 2",
    ]
    assert failure_sentence("train", 255, lines) == (
        "stage 'train' failed: params.yaml: 'train.epochs' is invalid (got 0)."
    )
    assert failure_sentence("train", 255, lines[1:]).startswith("stage 'train' failed: failed to reproduce")
    assert failure_sentence("train", 1, ["Traceback ..."]) == (
        "stage 'train' failed with exit code 1; its output is in the run's log."
    )


def test_external_inputs_are_those_no_stage_produces(tmp_path: Path) -> None:
    stages = (
        Stage("ingest", ("tasks/ingest.py", "data/demo"), ("data/ingest",), ()),
        Stage("clean", ("data/ingest",), ("data/clean",), ()),
        Stage("split", ("data/clean/series.parquet", "data/demo/labels.csv"), ("data/split",), ()),
    )
    pipeline = Pipeline(root=tmp_path, stages=stages, cache_dir=tmp_path / ".dvc/cache")
    assert pipeline.external_inputs() == ["data/demo", "data/demo/labels.csv", "tasks/ingest.py"]


def test_a_folder_dvc_cannot_read_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^DVC cannot read the pipeline in .*; fix dvc.yaml\.$"):
        read_pipeline(tmp_path)
