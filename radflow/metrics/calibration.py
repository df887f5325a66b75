"""Calibration: do predicted probabilities match observed frequencies?

Expected calibration error (Guo et al., ICML 2017): probabilities are put into equal-width bins;
ECE is the image-weighted mean of |observed positive fraction - mean predicted probability| over
the bins. The same bins feed the reliability plot, so the number and the picture agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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
