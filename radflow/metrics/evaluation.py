"""The whole evaluation in memory: operating point on val, metrics and CIs, calibration, subgroups,
robustness and Grad-CAM on test. No file I/O here (see `outputs.py`), so it is testable with any
model and arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from torch import nn

from radflow.config.evaluate import EvaluateParams
from radflow.metrics.binary import classification_metrics, undefined_reasons
from radflow.metrics.bootstrap import bootstrap_intervals
from radflow.metrics.calibration import brier_score, expected_calibration_error, reliability_bins
from radflow.metrics.gradcam import gradcam_maps, middle_slice, pick_examples, resolve_layer
from radflow.metrics.robustness import robustness_table
from radflow.metrics.subgroups import subgroup_table
from radflow.metrics.threshold import OperatingPoint, choose_threshold

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SplitData:
    """One split as the model sees it: preprocessed images (N, C, *spatial), labels (N,), table rows."""

    images: np.ndarray
    labels: np.ndarray
    rows: pd.DataFrame


@dataclass(frozen=True)
class CamExample:
    """One Grad-CAM overlay: a 2D view of the image, its map, and the model's probability."""

    image: np.ndarray
    cam: np.ndarray
    probability: float


@dataclass(frozen=True)
class Evaluation:
    """Everything the stage reports; the inputs of metrics.json, the plots and the HTML report."""

    operating_point: OperatingPoint
    val: dict[str, Any]
    test: dict[str, Any]
    test_labels: np.ndarray
    test_probs: np.ndarray
    calibration: pd.DataFrame
    subgroups: pd.DataFrame
    robustness: pd.DataFrame
    gradcam: dict[str, list[CamExample]] = field(default_factory=dict)
    gradcam_layer: str | None = None
    gradcam_layer_configured: bool = False


def split_summary(
    labels: np.ndarray, probs: np.ndarray, rows: pd.DataFrame, threshold: float, params: EvaluateParams
) -> dict[str, Any]:
    """Metrics at the threshold, counts, ECE, Brier score and bootstrap 95% CIs of one split."""
    labels = np.asarray(labels).astype(np.int64)
    groups = rows["patient_key"].to_numpy() if "patient_key" in rows.columns else None
    intervals = bootstrap_intervals(labels, probs, threshold, groups, params.bootstrap, params.seed)
    summary: dict[str, Any] = {
        **classification_metrics(labels, probs, threshold),
        "n": int(labels.size),
        "n_positive": int(labels.sum()),
        "n_patients": int(rows["patient_key"].nunique()) if groups is not None else int(labels.size),
        "threshold": float(threshold),
        "ece": expected_calibration_error(labels, probs, params.calibration_bins),
        "brier": brier_score(labels, probs),
        "ci95": intervals.ci95,
        # short values only: `dvc metrics show` prints every leaf; the report spells the method out
        "ci_resamples": intervals.resamples,
        "ci_unit": intervals.unit,
    }
    reasons = undefined_reasons(labels, probs, threshold)
    if reasons:
        summary["undefined"] = reasons
    return summary


def evaluate_model(
    params: EvaluateParams,
    model: nn.Module,
    predict: Predict,
    val: SplitData,
    test: SplitData,
    calibration: tuple[float, float] = (1.0, 0.0),
) -> Evaluation:
    """Choose the operating point on val, then measure test every way the report shows.

    `calibration` is the Platt scaling `predict` applies (the model's); when it is not the identity,
    test also gets `ece_uncalibrated`, the ECE of the raw probabilities, so the report shows what
    the scaling did.
    """
    val_probs, test_probs = predict(val.images), predict(test.images)
    point = choose_threshold(val.labels, val_probs, params.operating_point, params.target_sensitivity)
    t = point.threshold
    cam, layer = _gradcam_examples(params, model, test, test_probs, t)
    test_summary = split_summary(test.labels, test_probs, test.rows, t, params)
    if tuple(calibration) != (1.0, 0.0):
        raw = uncalibrated(test_probs, calibration)
        test_summary["ece_uncalibrated"] = expected_calibration_error(
            test.labels, raw, params.calibration_bins
        )
    return Evaluation(
        operating_point=point,
        val=split_summary(val.labels, val_probs, val.rows, t, params),
        test=test_summary,
        test_labels=np.asarray(test.labels).astype(np.int64),
        test_probs=test_probs,
        calibration=reliability_bins(test.labels, test_probs, params.calibration_bins),
        subgroups=subgroup_table(
            test.rows, test.labels, test_probs, t, params.subgroups, params.subgroup_min_n
        ),
        robustness=robustness_table(
            predict,
            test.images,
            test.labels,
            t,
            params.robustness,
            params.seed,
            params.calibration_bins,
            clean_probs=test_probs,
        ),
        gradcam=cam,
        gradcam_layer=layer,
        gradcam_layer_configured=params.gradcam.layer is not None,
    )


def uncalibrated(probs: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """The raw sigmoid probabilities behind Platt-scaled ones: sigmoid((logit(p) - shift) / scale)."""
    scale, shift = calibration
    return np.asarray(expit((logit(np.asarray(probs, dtype=np.float64)) - shift) / scale))


def _gradcam_examples(
    params: EvaluateParams, model: nn.Module, test: SplitData, probs: np.ndarray, threshold: float
) -> tuple[dict[str, list[CamExample]], str | None]:
    """Grad-CAM maps for a seeded sample of TP, FP and FN test images (middle slice for 3D)."""
    if params.gradcam.per_outcome == 0 or len(test.labels) == 0:
        return {}, None
    picks = pick_examples(test.labels, probs, threshold, params.gradcam.per_outcome, params.seed)
    chosen = np.concatenate(list(picks.values())).astype(np.int64)
    if chosen.size == 0:
        return {outcome: [] for outcome in picks}, None
    layer = resolve_layer(model, test.images[:1], params.gradcam.layer)
    maps = dict(zip(chosen.tolist(), gradcam_maps(model, test.images[chosen], layer), strict=True))
    examples = {
        outcome: [
            CamExample(middle_slice(test.images[i, 0]), middle_slice(maps[i]), float(probs[i]))
            for i in indices.tolist()
        ]
        for outcome, indices in picks.items()
    }
    return examples, layer
