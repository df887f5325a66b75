"""Percentile bootstrap 95% confidence intervals, resampling patients rather than images.

Images of one patient are correlated; resampling them independently would give intervals that
are too narrow. When any patient contributes several images the whole patient is the resampling
unit (a cluster bootstrap); otherwise each image is. The threshold stays fixed (it was chosen on
validation), so the intervals describe sampling variation of the test set only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from radflow.metrics.binary import METRICS, classification_metrics

# A metric undefined in more than half of the resamples (e.g. AUC with very few positives) gets
# no interval: percentiles of the few resamples that define it would be misleading.
MIN_DEFINED_FRACTION = 0.5


@dataclass(frozen=True)
class Intervals:
    """Per-metric [lo, hi] (None when not estimable) and how they were obtained."""

    ci95: dict[str, list[float] | None]
    resamples: int
    unit: str  # "patient" or "image"
    n_units: int


def resampling_unit(groups: np.ndarray | None) -> str:
    """'patient' when some patient has several images, else 'image'."""
    if groups is None:
        return "image"
    return "patient" if pd.Series(groups).duplicated().any() else "image"


def bootstrap_intervals(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    groups: np.ndarray | None,
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> Intervals:
    """Percentile intervals of every metric at a fixed threshold over `resamples` seeded resamples."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    unit = resampling_unit(groups)
    clusters = patient_clusters(groups) if groups is not None and unit == "patient" else None
    n_units = len(clusters) if clusters is not None else len(y_true)
    if resamples == 0 or n_units == 0:
        return Intervals({m: None for m in METRICS}, resamples, unit, n_units)
    rng = np.random.default_rng(seed)
    draws = np.full((resamples, len(METRICS)), np.nan)
    for r in tqdm(range(resamples), desc="bootstrap", leave=False, disable=None):
        pick = rng.integers(0, n_units, n_units)
        idx = np.concatenate([clusters[i] for i in pick]) if clusters is not None else pick
        values = classification_metrics(y_true[idx], y_score[idx], threshold)
        draws[r] = [np.nan if values[m] is None else values[m] for m in METRICS]
    ci = {m: percentile_interval(draws[:, j], level) for j, m in enumerate(METRICS)}
    return Intervals(ci, resamples, unit, n_units)


def patient_clusters(groups: np.ndarray) -> list[np.ndarray]:
    """Indices of each patient's images."""
    codes, _ = pd.factorize(pd.Series(groups))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def percentile_interval(values: np.ndarray, level: float) -> list[float] | None:
    defined = values[np.isfinite(values)]
    if defined.size == 0 or defined.size < MIN_DEFINED_FRACTION * values.size:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(defined, [tail, 100 - tail])
    return [float(lo), float(hi)]
