"""Calibration: do predicted probabilities match observed frequencies?

Expected calibration error (Guo et al., ICML 2017): probabilities are put into equal-width bins;
ECE is the image-weighted mean of |observed positive fraction - mean predicted probability| over
the bins. The same bins feed the reliability plot, so the number and the picture agree.

Platt scaling (Platt 1999; the `sigmoid` method of scikit-learn's CalibratedClassifierCV) maps a
model's logit f to sigmoid(scale * f + shift), the two numbers fitted on the validation split by
maximum likelihood against Platt's smoothed targets ((n+ + 1)/(n+ + 2) for positives, 1/(n- + 2)
for negatives), which keep the fit finite when validation is perfectly separated. It is monotone,
so AUC and every ranking stay as they were; what changes is what a probability means. A
class-balanced loss (pos_weight) trains the network as if both classes were equally common, so its
raw probabilities run high at the real prevalence: Platt's shift is what removes that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.metrics import brier_score_loss

COLUMNS = ["bin", "lower", "upper", "count", "mean_predicted", "fraction_positive"]


def reliability_bins(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """One row per non-empty equal-width bin: edges, count, mean probability, positive fraction."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_prob = np.clip(np.asarray(y_prob, dtype=np.float64), 0.0, 1.0)
    # p == 1.0 belongs to the last bin, not an extra one.
    ids = np.minimum((y_prob * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(ids, minlength=n_bins)
    prob_sum = np.bincount(ids, weights=y_prob, minlength=n_bins)
    pos_sum = np.bincount(ids, weights=y_true, minlength=n_bins)
    used = count > 0
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins)[used],
            "lower": edges[:-1][used],
            "upper": edges[1:][used],
            "count": count[used],
            "mean_predicted": prob_sum[used] / count[used],
            "fraction_positive": pos_sum[used] / count[used],
        },
        columns=COLUMNS,
    )


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = 10) -> float | None:
    """Image-weighted mean gap between confidence and observed frequency; None when there is no data."""
    bins = reliability_bins(y_true, y_prob, n_bins)
    total = bins["count"].sum()
    if total == 0:
        return None
    gap = (bins["fraction_positive"] - bins["mean_predicted"]).abs()
    return float((gap * bins["count"]).sum() / total)


def brier_score(y_true: np.ndarray, y_prob: np.ndarray) -> float | None:
    """Mean squared error of the probabilities (sklearn); None when there is no data."""
    if len(y_true) == 0:
        return None
    return float(brier_score_loss(np.asarray(y_true), np.asarray(y_prob), labels=[0, 1]))


@dataclass(frozen=True)
class Platt:
    """sigmoid(scale * logit + shift): the model's calibrated probability."""

    scale: float
    shift: float

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw logits, float64."""
        return np.asarray(expit(self.scale * np.asarray(logits, dtype=np.float64) + self.shift))


def fit_platt(y_true: np.ndarray, logits: np.ndarray) -> Platt | None:
    """Platt scaling fitted to labelled logits; None when it cannot calibrate them.

    None when the labels hold one class (nothing to fit) or when the fitted scale is not positive
    (the probability does not rise with the score there, as on a few weakly ranked images; a
    reversed map would flip every call).
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    f = np.asarray(logits, dtype=np.float64).ravel()
    if len(y) != len(f):
        raise ValueError(f"{len(y)} labels but {len(f)} logits")
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0 or not np.all(np.isfinite(f)):
        return None
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] * f + w[1]
        nll = -float(np.sum(target * log_expit(z) + (1 - target) * log_expit(-z)))
        residual = expit(z) - target
        return nll, np.array([np.sum(residual * f), np.sum(residual)])

    # start from the prior's log-odds: the optimum when the logits carry no information
    start = np.array([0.0, float(np.log((n_pos + 1) / (n_neg + 1)))])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    scale, shift = (float(v) for v in result.x)
    if not (np.isfinite(scale) and np.isfinite(shift)) or scale <= 0:
        return None
    return Platt(scale, shift)
