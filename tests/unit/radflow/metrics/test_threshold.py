"""The operating point is chosen on validation by Youden's J, a target sensitivity or accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.metrics.binary import classification_metrics
from radflow.metrics.threshold import FALLBACK_THRESHOLD, choose_threshold


def test_youden_picks_the_score_that_separates_the_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3])  # perfectly separable, far below 0.5
    point = choose_threshold(y, p, "youden")
    assert point.threshold == pytest.approx(0.175)  # halfway between 0.15 and 0.2
    assert point.method == "youden" and "Youden" in point.description
    assert classification_metrics(y, p, point.threshold)["accuracy"] == 1.0


def test_target_sensitivity_takes_the_highest_threshold_that_reaches_it() -> None:
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.35, 0.95, 10), np.linspace(0.0, 0.6, 10)])
    point = choose_threshold(y, p, "sensitivity", target_sensitivity=0.8)
    m = classification_metrics(y, p, point.threshold)
    assert m["sensitivity"] >= 0.8
    # the cut sits below the lowest score called positive; one score higher misses the target
    lowest_called = np.sort(p[p >= point.threshold])[0]
    higher = np.sort(p[p > lowest_called])[0]
    assert classification_metrics(y, p, higher)["sensitivity"] < 0.8
    assert "0.80" in point.description


def test_one_class_in_validation_falls_back_and_says_so() -> None:
    point = choose_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), "youden")
    assert point.threshold == FALLBACK_THRESHOLD and point.method == "fallback"
    assert "only one class" in point.description


def test_useless_scores_give_a_finite_threshold() -> None:
    y = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.2])  # anti-correlated: J is best at 'call nothing positive'
    point = choose_threshold(y, p, "youden")
    assert np.isfinite(point.threshold) and point.threshold > 0.9


def test_accuracy_weighs_errors_by_prevalence_where_youden_does_not() -> None:
    # 2 positives, 8 negatives. Youden calls both positives and pays with 3 false positives
    # (J = 1 - 3/8); the best accuracy gives up one positive to avoid them (9/10 right, not 7/10).
    y = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 1])
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.9])
    youden = choose_threshold(y, p, "youden")
    best = choose_threshold(y, p, "accuracy")
    assert youden.threshold == pytest.approx(0.275)
    assert classification_metrics(y, p, youden.threshold)["accuracy"] == pytest.approx(0.7)
    assert best.threshold == pytest.approx(0.675) and best.method == "accuracy"
    assert classification_metrics(y, p, best.threshold)["accuracy"] == pytest.approx(0.9)
    assert "accuracy" in best.description


@pytest.mark.parametrize("method", ["youden", "sensitivity", "accuracy"])
def test_the_cut_lies_halfway_between_neighbouring_scores(method: str) -> None:
    """The validation split is called exactly as at the lowest score called positive; the threshold
    itself is the midpoint of that score and the next lower one."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    point = choose_threshold(y, p, method, target_sensitivity=0.85)  # type: ignore[arg-type]
    called = p >= point.threshold
    lowest_called, highest_not = p[called].min(), p[~called].max()
    assert point.threshold == pytest.approx((lowest_called + highest_not) / 2)
    assert np.array_equal(called, p >= lowest_called)
    assert "halfway" in point.description


def test_scores_one_float_apart_keep_the_higher_one_as_the_cut() -> None:
    low = 0.3
    high = float(np.nextafter(low, 1.0))
    y, p = np.array([0, 1]), np.array([low, high])
    point = choose_threshold(y, p, "accuracy")
    assert point.threshold == high
    assert classification_metrics(y, p, point.threshold)["accuracy"] == 1.0
