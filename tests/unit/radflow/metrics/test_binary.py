"""Threshold metrics against hand-computed confusion matrices, and undefined metrics as None."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.metrics.binary import classification_metrics, confusion_counts, predict_labels, undefined_reasons


def test_metrics_match_a_hand_computed_confusion_matrix() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.2, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05])
    # at 0.5: TP 3 (0.9, 0.8, 0.6), FN 1 (0.2), FP 1 (0.7), TN 5
    assert confusion_counts(y, predict_labels(p, 0.5)) == (5, 1, 1, 3)
    m = classification_metrics(y, p, 0.5)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["ppv"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(5 / 6)
    # AUC = P(score_pos > score_neg) over 24 pairs: 0.9 and 0.8 win 6 each, 0.6 wins 5,
    # 0.2 wins 2 and ties 1 (counted 0.5)
    assert m["auc"] == pytest.approx(19.5 / 24)


def test_threshold_is_inclusive_like_sklearn() -> None:
    assert predict_labels(np.array([0.3, 0.5, 0.7]), 0.5).tolist() == [0, 1, 1]


def test_one_class_makes_auc_and_sensitivity_undefined_not_a_crash() -> None:
    y = np.zeros(5, dtype=int)
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.9])
    m = classification_metrics(y, p, 0.5)
    assert m["auc"] is None and m["sensitivity"] is None and m["npv"] == 1.0
    assert m["specificity"] == pytest.approx(3 / 5)
    reasons = undefined_reasons(y, p, 0.5)
    assert set(reasons) == {"auc", "sensitivity"}
    assert "only negative" in reasons["auc"]


def test_no_positive_calls_leave_ppv_undefined() -> None:
    m = classification_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4]), 0.9)
    assert m["ppv"] is None and m["sensitivity"] == 0.0 and m["auc"] == pytest.approx(0.75)
    assert "called no case positive" in undefined_reasons(np.array([0, 1]), np.array([0.1, 0.2]), 0.9)["ppv"]


def test_empty_input_gives_no_metrics_and_no_error() -> None:
    m = classification_metrics(np.array([], dtype=int), np.array([]), 0.5)
    assert all(v is None for v in m.values())
