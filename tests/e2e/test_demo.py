"""The real pipeline (ingest → clean → split → train → evaluate) through the flow, on a small cohort."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from toyproject import sh

from flows.parameters import RetrainParameters
from flows.retrain import retrain
from flows.summary import RunSummary

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "tasks", "radflow"]


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    """A copy of this project (code, dvc.yaml, params.yaml) with a 12-patient synthetic cohort."""
    from radflow.config import load_params
    from radflow.synth.cohort import write_cohort

    root = tmp_path / "radflow"
    root.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "radflow")
    params = load_params(root / "params.yaml")
    write_cohort(root / params.ingest.source, patients=12, seed=0)
    return root


def test_the_real_pipeline_runs_end_to_end_with_overrides(demo_project: Path) -> None:
    params_before = (demo_project / "params.yaml").read_bytes()
    overrides = [
        "train.epochs=2",
        "evaluate.bootstrap=50",
        "evaluate.gradcam.per_outcome=0",
        "register.min_auc=0",
        "register.bootstrap=50",
    ]

    state = retrain(params=RetrainParameters(set=overrides), project=str(demo_project), return_state=True)

    assert state.is_completed(), state.message
    summary = state.result()
    assert isinstance(summary, RunSummary)
    assert [s.name for s in summary.stages] == ["ingest", "clean", "split", "train", "evaluate"]
    assert {s.outcome for s in summary.stages} == {"ran"}
    metrics = summary.test_metrics
    assert metrics is not None and 0.0 <= metrics["auc"] <= 1.0
    low, high = metrics["ci95"]["auc"]
    assert low <= metrics["auc"] <= high
    workdir = demo_project / summary.workdir
    assert (workdir / "reports/report.html").is_file() and (workdir / "models/model.pt").is_file()
    assert summary.quarantine and all(count > 0 for count in summary.quarantine.values())
    assert (demo_project / "params.yaml").read_bytes() == params_before
    assert "epochs: 2" in sh(demo_project, "git", "show", f"{summary.lineage_ref}:params.yaml")

    # Registered and, with the floor lowered for this tiny cohort, promoted: the first model in prod.
    first = "radflow-model@v0.1.0"
    assert (summary.model_version, summary.promoted) == (first, "radflow-model#prod#1"), summary.registration
    card = (workdir / "reports/model_card.md").read_text()
    for section in (
        "## Provenance",
        "## Data",
        "## Model",
        "## Performance on the test split",
        "## Subgroups",
    ):
        assert section in card
    assert "| de-identification key (fingerprint) |" in card  # read from the run's data/ingest/source.json

    # A retrained model is compared with the one in prod on this run's test split, image by image.
    again = retrain(
        params=RetrainParameters(set=[*overrides, "train.epochs=3"]),
        project=str(demo_project),
        return_state=True,
    )
    assert again.is_completed(), again.message
    second = again.result()
    assert second.model_version == "radflow-model@v0.2.0", second.registration
    record = json.loads((demo_project / second.workdir / "reports/registration.json").read_text())
    comparison = record["gate"]["comparison"]
    assert record["gate"]["reference"] == "v0.1.0" and comparison["n"] == second.test_metrics["n"]
    # the candidate scored by the gate is the model evaluate measured: the same AUC on the same images
    assert comparison["candidate"] == pytest.approx(second.test_metrics["auc"], abs=1e-9)
    assert comparison["difference"] == pytest.approx(comparison["candidate"] - comparison["reference"])
    passed = comparison["difference"] >= -0.02 and second.test_metrics["auc"] >= 0.0
    assert (second.promoted == "radflow-model#prod#2") == passed

    # The version in prod scores new studies, through the same ingest and clean, at its operating point.
    from radflow.synth.cohort import write_cohort
    from tasks.predict import run as run_predict

    write_cohort(demo_project.parent / "new", patients=3, seed=42)
    prod = "v0.2.0" if second.promoted else "v0.1.0"
    result = run_predict(demo_project, demo_project.parent / "new", demo_project.parent / "scored")
    assert result.version == prod and result.scored > 0
    table = pd.read_csv(demo_project.parent / "scored" / "predictions.csv")
    accepted = pd.read_parquet(demo_project.parent / "scored" / "clean" / "series.parquet")
    assert len(table) == len(accepted) and set(table["series_key"]) == set(accepted["series_key"])
    scored = table[table["probability"].notna()]
    assert set(scored["modality"]) <= {"CR", "DX"} and scored["probability"].between(0, 1).all()
    threshold = json.loads(sh(demo_project, "git", "show", f"radflow-model@{prod}:reports/metrics.json"))[
        "operating_point"
    ]["threshold"]
    assert result.threshold == threshold
    assert (scored["call"] == "positive").tolist() == (scored["probability"] >= threshold).tolist()
    assert table.loc[table["probability"].isna(), "note"].str.startswith("not an input").all()

    from flows.predict import predict

    state = predict(
        source=str(demo_project.parent / "new"),
        out=str(demo_project.parent / "scored-v1"),
        version="v0.1.0",
        project=str(demo_project),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert state.result().version == "v0.1.0"
    missing = predict(source=".", out=".", version="v9.9.9", project=str(demo_project), return_state=True)
    assert missing.is_failed() and "radflow-model@v9.9.9 is not registered" in str(missing.message)
