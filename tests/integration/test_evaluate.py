"""The evaluate stage on a small clean output, a real split and a model.pt as train writes it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from cleandata import write_clean_dir

from radflow.config import EvaluateParams, SplitParams
from radflow.data.dataset import load_split_arrays
from radflow.errors import InputError
from radflow.metrics.calibration import expected_calibration_error
from radflow.models.checkpoint import load_model, save_model
from radflow.models.config import ModelConfig
from radflow.models.networks import build_network
from radflow.models.predict import predict_proba
from tasks.evaluate import run
from tasks.split import run as run_split

ROOT = Path(__file__).resolve().parents[2]
PARAMS = EvaluateParams(
    bootstrap=40,
    robustness={"noise_std": [0.1], "contrast_gamma": [1.5], "resolution_scale": [0.5]},
    gradcam={"per_outcome": 2},
)
PLOTS = ("roc", "pr", "calibration", "confusion")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """clean dir, split.parquet and model.pt (a small untrained 2D network, saved by train's own code)."""
    root = tmp_path_factory.mktemp("evaluate")
    clean, labels = write_clean_dir(root, patients=36, studies_per_patient=2, size=16)
    split = run_split(SplitParams(strategy="predefined"), clean, labels, root / "split").path
    config = ModelConfig(
        network="small_cnn", spatial_size=(16, 16), modalities=("CR", "DX"), width=4, mean=0.4, std=0.1
    )
    torch.manual_seed(0)
    model = root / "models" / "model.pt"
    save_model(
        model, build_network(config).state_dict(), config, {"seed": 0, "epochs_run": 1, "best_epoch": 1}
    )
    return clean, split, model


def test_stage_writes_every_file_with_the_contracted_metrics(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    clean, split, model = inputs
    result = run(PARAMS, model, clean, split, tmp_path)
    expected = ["metrics.json", "subgroups.json", "robustness.json", "report.html"]
    expected += [f"plots/{name}.csv" for name in PLOTS] + [
        f"figures/{n}.png" for n in ("roc", "pr", "confusion", "calibration")
    ]
    for name in expected:
        assert (tmp_path / name).is_file(), name
    assert set(map(Path, expected)) <= {p.relative_to(tmp_path) for p in result.files}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    test, val = metrics["test"], metrics["val"]
    for key in (
        "auc",
        "accuracy",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "n",
        "n_positive",
        "threshold",
        "ece",
    ):
        assert key in test and key in val, key
    assert test["n"] == 24 and val["n"] == 24  # 12 patients x 2 studies per split (predefined by patient)
    assert test["threshold"] == val["threshold"] == metrics["operating_point"]["threshold"]
    lo, hi = test["ci95"]["accuracy"]
    assert lo <= test["accuracy"] <= hi
    assert test["ci_unit"] == "patient" and test["ci_resamples"] == 40
    roc = pd.read_csv(tmp_path / "plots" / "roc.csv")
    assert list(roc.columns) == ["fpr", "tpr"] and roc["tpr"].iloc[-1] == 1.0
    assert len(pd.read_csv(tmp_path / "plots" / "confusion.csv")) == 24
    subgroups = json.loads((tmp_path / "subgroups.json").read_text())["groups"]
    assert {g["attribute"] for g in subgroups} == {"site_key", "manufacturer", "sex", "age_band"}
    for group in subgroups:  # small groups are flagged and kept; the one 24-image age band is not small
        assert group["flag"].startswith("small") == (group["n"] < 20), group
    assert any(g["n"] < 20 for g in subgroups) and any(g["n"] >= 20 for g in subgroups)
    conditions = json.loads((tmp_path / "robustness.json").read_text())["conditions"]
    assert [c["perturbation"] for c in conditions] == ["none", "noise", "contrast", "resolution"]


def test_report_is_self_contained_and_names_no_patient(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    clean, split, model = inputs
    run(PARAMS, model, clean, split, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert not re.search(r"(https?:|ftp:|file:)", html, re.IGNORECASE)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.IGNORECASE)
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    series = pd.read_parquet(clean / "series.parquet")
    for key in pd.concat([series["patient_key"], series["series_key"], series["study_key"]]):
        assert key not in html
    assert "1.2.826" not in html  # no raw UID of the cohort
    assert "config.network" in html and "small_cnn" in html


def test_a_calibrated_model_reports_its_raw_ece_beside_the_scaled_one(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    clean, split, model = inputs
    assert (
        "ece_uncalibrated"
        not in json.loads((run(PARAMS, model, clean, split, tmp_path / "plain").metrics_path).read_text())[
            "test"
        ]
    )
    saved = torch.load(model, weights_only=True)
    config = replace(ModelConfig.from_dict(saved["config"]), calibration=(0.5, -1.0))
    scaled = tmp_path / "scaled.pt"
    save_model(scaled, saved["state_dict"], config, saved["lineage"])
    result = run(PARAMS, scaled, clean, split, tmp_path / "scaled")
    test = json.loads(result.metrics_path.read_text())["test"]
    network, _ = load_model(scaled)
    images, labels, _ = load_split_arrays(clean, split, config, "test")
    raw = predict_proba(network, images, calibrated=False)
    assert test["ece_uncalibrated"] == pytest.approx(expected_calibration_error(labels, raw, 10), abs=1e-9)
    assert test["ece"] == pytest.approx(
        expected_calibration_error(labels, predict_proba(network, images), 10), abs=1e-9
    )
    assert test["ece"] != pytest.approx(test["ece_uncalibrated"])
    assert "Platt-scaled" in result.report_path.read_text()


@pytest.mark.slow
def test_main_runs_as_dvc_calls_it_and_errors_are_one_sentence(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    clean, split, model = inputs
    params = tmp_path / "params.yaml"
    params.write_text("evaluate:\n  bootstrap: 20\n  gradcam:\n    per_outcome: 1\n")
    cmd = [
        sys.executable,
        "-m",
        "tasks.evaluate",
        "--model",
        str(model),
        "--clean",
        str(clean),
        "--split",
        str(split),
        "--out",
        str(tmp_path / "reports"),
        "--params",
        str(params),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test AUC" in done.stdout and (tmp_path / "reports" / "report.html").is_file()
    missing = [*cmd[:4], str(tmp_path / "nope.pt"), *cmd[5:]]
    failed = subprocess.run(missing, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr
    assert failed.stderr.strip().count("\n") == 0 and "nope.pt" in failed.stderr


def test_a_split_without_test_images_is_a_clear_input_error(
    inputs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    clean, split, model = inputs
    table = pd.read_parquet(split)
    no_test = tmp_path / "split.parquet"
    table[table["split"] != "test"].to_parquet(no_test, index=False)
    with pytest.raises(InputError, match="no test images"):
        run(PARAMS, model, clean, no_test, tmp_path / "reports")
