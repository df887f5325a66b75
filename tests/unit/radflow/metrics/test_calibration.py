"""ECE and the reliability bins agree with the definition; Platt scaling recovers a known miscalibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radflow.metrics.calibration import (
    Platt,
    brier_score,
    expected_calibration_error,
    fit_platt,
    reliability_bins,
)
from radflow.metrics.evaluation import uncalibrated


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


def _miscalibrated(n: int, scale: float, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true P(y = 1) is sigmoid(scale * logit + shift)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(scale * logits + shift)))).astype(int)
    return y, logits


def test_platt_recovers_the_map_that_generated_the_labels() -> None:
    y, logits = _miscalibrated(50_000, 0.5, -1.0)
    platt = fit_platt(y, logits)
    assert platt is not None
    assert platt.scale == pytest.approx(0.5, abs=0.03) and platt.shift == pytest.approx(-1.0, abs=0.05)
    raw = 1 / (1 + np.exp(-logits))
    assert expected_calibration_error(y, raw) > 0.15
    assert expected_calibration_error(y, platt.apply(logits)) < 0.01


def test_platt_keeps_the_ranking_and_matches_the_smoothed_prevalence() -> None:
    y, logits = _miscalibrated(300, 1.5, 1.2, seed=3)
    platt = fit_platt(y, logits)
    assert platt is not None
    probs = platt.apply(logits)
    assert roc_auc_score(y, probs) == roc_auc_score(y, logits)
    # the shift's score equation: the probabilities sum to the smoothed targets' sum
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    assert probs.sum() == pytest.approx(n_pos * (n_pos + 1) / (n_pos + 2) + n_neg / (n_neg + 2), rel=1e-4)


def test_platt_stays_finite_on_perfectly_separated_validation() -> None:
    platt = fit_platt(np.array([0, 0, 0, 1, 1, 1]), np.array([-6.0, -5.0, -4.0, 4.0, 5.0, 6.0]))
    assert platt is not None and np.isfinite(platt.scale) and 0 < platt.scale < 5
    probs = platt.apply(np.array([-6.0, 6.0]))
    assert 0.0 < probs[0] < 0.25 and 0.75 < probs[1] < 1.0  # confident, not certain: 6 images


@pytest.mark.parametrize(
    ("labels", "logits"),
    [
        (np.ones(5), np.arange(5.0)),  # one class: nothing to fit
        (np.array([0, 0, 1, 1]), np.array([3.0, 2.0, -2.0, -3.0])),  # ranked backwards
        (np.array([0, 1]), np.array([0.0, np.nan])),
    ],
)
def test_platt_declines_what_it_cannot_calibrate(labels: np.ndarray, logits: np.ndarray) -> None:
    assert fit_platt(labels, logits) is None


def test_uncalibrated_inverts_the_scaling() -> None:
    logits = np.linspace(-8, 8, 33)
    platt = Platt(0.7, -1.3)
    np.testing.assert_allclose(uncalibrated(platt.apply(logits), (0.7, -1.3)), 1 / (1 + np.exp(-logits)))
