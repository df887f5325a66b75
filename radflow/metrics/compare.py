"""Two models scored on the same test images: the paired AUC difference and its bootstrap interval.

Both models' scores are resampled together (the same patients in every resample), so the interval
describes the difference itself, not two independent AUCs: far narrower when the models agree on
which images are hard, as retrained versions of one model do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from radflow.metrics.binary import auc_or_none
from radflow.metrics.bootstrap import patient_clusters, percentile_interval, resampling_unit


@dataclass(frozen=True)
class AucDifference:
    """AUC of a candidate and of a reference on the same images, and candidate − reference."""

    candidate: float | None
    reference: float | None
    difference: float | None
    ci95: list[float] | None
    n: int
    n_positive: int
    unit: str  # resampling unit: "patient" or "image"
    resamples: int


def paired_auc_difference(
    y_true: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    groups: np.ndarray | None,
    resamples: int,
    seed: int,
) -> AucDifference:
    """AUC(candidate) − AUC(reference) with a percentile 95% interval over paired (cluster) resamples."""
    y_true = np.asarray(y_true).astype(np.int64)
    candidate, reference = np.asarray(candidate, dtype=float), np.asarray(reference, dtype=float)
    if not len(y_true) == len(candidate) == len(reference):
        raise ValueError("labels and both models' scores must cover the same images")
    auc_c, auc_r = auc_or_none(y_true, candidate), auc_or_none(y_true, reference)
    unit = resampling_unit(groups)
    clusters = patient_clusters(groups) if groups is not None and unit == "patient" else None
    n_units = len(clusters) if clusters is not None else len(y_true)
    ci = None
    if auc_c is not None and auc_r is not None and resamples > 0:
        rng = np.random.default_rng(seed)
        draws = np.full(resamples, np.nan)
        for r in tqdm(range(resamples), desc="paired bootstrap", leave=False, disable=None):
            pick = rng.integers(0, n_units, n_units)
            idx = np.concatenate([clusters[i] for i in pick]) if clusters is not None else pick
            a, b = auc_or_none(y_true[idx], candidate[idx]), auc_or_none(y_true[idx], reference[idx])
            if a is not None and b is not None:
                draws[r] = a - b
        ci = percentile_interval(draws, 0.95)
    return AucDifference(
        candidate=auc_c,
        reference=auc_r,
        difference=None if auc_c is None or auc_r is None else auc_c - auc_r,
        ci95=ci,
        n=int(y_true.size),
        n_positive=int(y_true.sum()),
        unit=unit,
        resamples=resamples,
    )
