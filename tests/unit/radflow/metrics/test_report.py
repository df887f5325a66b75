"""The evaluation end to end in memory, written to files: self-contained HTML, no identifiers, valid JSON."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from radflow.config import EvaluateParams
from radflow.metrics.binary import classification_metrics
from radflow.metrics.evaluation import Evaluation, SplitData, evaluate_model
from radflow.metrics.outputs import write_outputs
from radflow.metrics.report_text import summary_sentence
from radflow.models.checkpoint import save_model
from radflow.models.config import ModelConfig
from radflow.models.networks import build_network
from tasks.evaluate import model_info

PARAMS = EvaluateParams(
    bootstrap=30,
    subgroup_min_n=20,
    robustness={"noise_std": [0.2], "contrast_gamma": [2.0], "resolution_scale": [0.5]},
    gradcam={"per_outcome": 2},
)


def _split(n: int, seed: int, shift: float) -> SplitData:
    """Images with a bright square for positives; `shift` moves every score so val and test differ."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    x = rng.normal(shift, 1.0, (n, 1, 12, 12)).astype(np.float32)
    x[y == 1, :, 3:7, 3:7] += 1.5
    rows = pd.DataFrame(
        {
            "series_key": [f"se-{seed}-{i}" for i in range(n)],
            "patient_key": [f"pa-{seed}-{i // 2}" for i in range(n)],
            "site_key": [f"si-{i % 3}" for i in range(n)],
            "manufacturer": "ACME",
            "sex": ["F", "M", "M", "F"] * (n // 4),
            "age_band": "60-69",
        }
    )
    return SplitData(x, y, rows)


def _model() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1)
    )
    return net.eval()


@pytest.fixture(scope="module")
def evaluation() -> tuple[Evaluation, SplitData, nn.Module]:
    model = _model()

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(torch.from_numpy(images)).reshape(-1)).numpy().astype(np.float64)

    val, test = _split(40, 1, 0.0), _split(48, 2, 0.3)
    return evaluate_model(PARAMS, model, predict, val, test), test, model


def test_the_val_threshold_is_applied_unchanged_to_test(
    evaluation: tuple[Evaluation, SplitData, nn.Module],
) -> None:
    ev, test, model = evaluation
    t = ev.operating_point.threshold
    assert ev.operating_point.method == "youden" and t != 0.5
    assert ev.test["threshold"] == ev.val["threshold"] == t
    with torch.no_grad():
        probs = torch.sigmoid(model(torch.from_numpy(test.images)).reshape(-1)).numpy()
    expected = classification_metrics(test.labels, probs, t)
    for metric, value in expected.items():
        assert ev.test[metric] == pytest.approx(value)
    assert ev.test["ci_unit"] == "patient"


def test_every_file_is_written_and_the_html_stands_alone(
    evaluation: tuple[Evaluation, SplitData, nn.Module], tmp_path: Path
) -> None:
    ev, test, _ = evaluation
    counts = pd.DataFrame({"split": ["train", "val", "test"], "studies": [80, 40, 48]})
    config = ModelConfig(network="small_cnn", spatial_size=(12, 12), modalities=("CR",), width=4)
    save_model(tmp_path / "model.pt", build_network(config).state_dict(), config, {"seed": 0})
    paths = write_outputs(ev, tmp_path, counts, model_info(tmp_path / "model.pt", config.to_dict()))
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.all_files())
    metrics = json.loads(paths.metrics.read_text())
    assert {
        "auc",
        "accuracy",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "n",
        "threshold",
        "ece",
        "ci95",
    } <= set(metrics["test"])
    assert set(metrics["val"]["ci95"]) == {"auc", "accuracy", "sensitivity", "specificity", "ppv", "npv"}
    html = paths.report.read_text()
    assert not re.search(r"(https?:|ftp:|//[a-z0-9.-]+\.[a-z]{2,}/)", html, re.IGNORECASE)
    assert not re.search(r"<(script|link|iframe)", html, re.IGNORECASE)
    assert re.findall(r'<img src="([^"]{0,22})', html) == ["data:image/png;base64,"] * html.count("<img ")
    galleries = [outcome for outcome, examples in ev.gradcam.items() if examples]
    assert galleries and html.count("<img ") == 4 + len(
        galleries
    )  # roc, pr, confusion, calibration + Grad-CAM
    for key in pd.concat([test.rows["patient_key"], test.rows["series_key"]]):
        assert key not in html
    for heading in (
        "Operating point",
        "Calibration",
        "Subgroups",
        "Robustness",
        "Grad-CAM",
        "Model lineage",
        "Limits",
    ):
        assert heading in html
    assert html.count('<tr class="flag">') == 3  # the three sites have 16 test images each: flagged, shown
    assert "small (n &lt; 20)" in html
    assert '<td class="l">config.tta_flip_dims</td><td class="l">none</td>' in html  # not a blank cell


def test_single_class_test_split_gives_null_auc_with_a_reason(tmp_path: Path) -> None:
    model = _model()
    val, test = _split(40, 1, 0.0), _split(24, 3, 0.0)
    test = SplitData(
        test.images[test.labels == 0], test.labels[test.labels == 0], test.rows[test.labels == 0]
    )

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(torch.from_numpy(images)).reshape(-1)).numpy().astype(np.float64)

    ev = evaluate_model(PARAMS, model, predict, val, test)
    paths = write_outputs(ev, tmp_path, pd.DataFrame({"split": ["test"]}), {})
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["test"]["auc"] is None and metrics["test"]["ci95"]["auc"] is None
    assert "only negative" in metrics["test"]["undefined"]["auc"]
    assert paths.plots["roc"].read_text().strip() == "fpr,tpr"


def test_an_empty_validation_split_falls_back_and_is_reported(tmp_path: Path) -> None:
    model = _model()
    full = _split(8, 1, 0.0)
    val = SplitData(full.images[:0], full.labels[:0], full.rows.iloc[:0])
    test = _split(24, 2, 0.0)

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(model(torch.from_numpy(images)).reshape(-1)).numpy().astype(np.float64)

    ev = evaluate_model(PARAMS, model, predict, val, test)
    assert ev.operating_point.method == "fallback" and ev.val["n"] == 0 and ev.val["auc"] is None
    html = write_outputs(ev, tmp_path, pd.DataFrame({"split": ["test"]}), {}).report.read_text()
    assert "only one class" in html  # the fallback is stated in the limits, not hidden


def test_the_summary_sentence_counts_each_outcome_in_plain_words(
    evaluation: tuple[Evaluation, SplitData, nn.Module],
) -> None:
    ev, _, _ = evaluation
    t = ev.operating_point.threshold
    below, above = t / 2, (1 + t) / 2
    # 2 true positives, 1 missed positive, 1 flagged negative, 3 cleared negatives
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    probs = np.array([above, above, below, above, below, below, below])
    text = summary_sentence(replace(ev, test_labels=labels, test_probs=probs))
    assert "On 7 test images (3 with the finding)" in text
    assert "flagged 2 of the 3 positive images and cleared 3 of the 4 negative images" in text
    assert "1 negative was flagged (false positives) and 1 positive missed" in text
    # 3 flagged negatives, 2 missed positives
    labels, probs = np.array([0, 0, 0, 1, 1]), np.array([above, above, above, below, below])
    many = summary_sentence(replace(ev, test_labels=labels, test_probs=probs))
    assert "3 negatives were flagged (false positives) and 2 positives missed" in many
