"""ECE and the reliability bins agree with the definition."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.metrics.calibration import brier_score, expected_calibration_error, reliability_bins


def test_a_perfectly_calibrated_predictor_has_ece_near_zero() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)  # y ~ Bernoulli(p): calibrated by construction
    assert expected_calibration_error(y, p, 10) < 0.01


def test_an_overconfident_predictor_has_the_hand_computed_ece() -> None:
    # bin [0.9, 1.0]: 10 predictions of 0.95, half positive -> gap 0.45
    # bin [0.0, 0.1): 10 predictions of 0.05, half positive -> gap 0.45
    p = np.array([0.95] * 10 + [0.05] * 10)
    y = np.array([1, 0] * 10)
    assert expected_calibration_error(y, p, 10) == pytest.approx(0.45)
    bins = reliability_bins(y, p, 10)
    assert bins["bin"].tolist() == [0, 9] and bins["count"].tolist() == [10, 10]
    assert bins["fraction_positive"].tolist() == [0.5, 0.5]


def test_probability_one_falls_in_the_last_bin() -> None:
    bins = reliability_bins(np.array([1, 1]), np.array([1.0, 0.95]), 10)
    assert bins["bin"].tolist() == [9] and bins["count"].tolist() == [2]


def test_brier_score_and_empty_input() -> None:
    assert brier_score(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx((0.04 + 0.16) / 2)
    assert expected_calibration_error(np.array([]), np.array([]), 10) is None
