"""Threshold metrics of a binary classifier, and why a metric is undefined when it is.

Every metric comes from scikit-learn's `roc_auc_score` and `confusion_matrix`; a metric whose
denominator is empty (AUC with one class present, PPV with no positive calls) is None, never a
crash and never a made-up 0 or 1.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

METRICS = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv")

Metrics = dict[str, float | None]


def predict_labels(y_score: np.ndarray, threshold: float) -> np.ndarray:
    """Positive call where the score reaches the threshold (sklearn's `>=` convention)."""
    return (np.asarray(y_score) >= threshold).astype(np.int64)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int, int]:
    """(tn, fp, fn, tp), with both classes always counted even when one is absent."""
    if len(y_true) == 0:  # sklearn refuses empty input; an empty split simply has no counts
        return 0, 0, 0, 0
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return int(tn), int(fp), int(fn), int(tp)


def auc_or_none(y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present (AUC is then undefined)."""
    if np.unique(y_true).size < 2:
        return None
    return float(roc_auc_score(y_true, y_score))


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> Metrics:
    """AUC plus accuracy, sensitivity, specificity, PPV and NPV at `threshold`."""
    y_true = np.asarray(y_true).astype(np.int64)
    tn, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    return {
        "auc": auc_or_none(y_true, y_score),
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
    }


def undefined_reasons(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, str]:
    """One sentence per undefined metric, saying why it cannot be computed on this data."""
    y_true = np.asarray(y_true).astype(np.int64)
    tn, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    reasons = {}
    if tp + tn + fp + fn == 0:
        return {m: "no images in this split" for m in METRICS}
    if tp + fn == 0 or tn + fp == 0:
        present = "positive" if tp + fn else "negative"
        reasons["auc"] = f"AUC is undefined: only {present} cases are present."
    if tp + fn == 0:
        reasons["sensitivity"] = "Sensitivity is undefined: there are no positive cases."
    if tn + fp == 0:
        reasons["specificity"] = "Specificity is undefined: there are no negative cases."
    if tp + fp == 0:
        reasons["ppv"] = "PPV is undefined: the model called no case positive at this threshold."
    if tn + fn == 0:
        reasons["npv"] = "NPV is undefined: the model called no case negative at this threshold."
    return reasons


def _ratio(numerator: int, denominator: int) -> float | None:
    return float(numerator / denominator) if denominator else None
