"""Metrics per subgroup (site, manufacturer, sex, age band) at the test operating point.

Small or single-class groups are kept in the table with a flag: hiding them would hide exactly
the sites and scanners where the evidence is thin. Sensitivity and specificity carry Wilson 95%
intervals (scipy), which stay sensible for the small counts subgroups have and cost nothing,
unlike a bootstrap per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from radflow.metrics.binary import METRICS, classification_metrics, confusion_counts, predict_labels

MISSING = "not recorded"
COLUMNS = ["attribute", "group", "n", "n_positive", *METRICS, "sensitivity_ci95", "specificity_ci95", "flag"]


def subgroup_table(
    rows: pd.DataFrame,
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    attributes: Sequence[str],
    min_n: int,
) -> pd.DataFrame:
    """One row per (attribute, group) with counts, metrics and a flag when it is too thin to trust."""
    y_true, y_score = np.asarray(y_true).astype(np.int64), np.asarray(y_score)
    records = []
    for attribute in attributes:
        values = _group_values(rows, attribute)
        for group in sorted(values.unique()):
            mask = (values == group).to_numpy()
            records.append(_group_record(attribute, group, y_true[mask], y_score[mask], threshold, min_n))
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def flag(y_true: np.ndarray, min_n: int) -> str:
    """Why a group's metrics should not be trusted, or '' when nothing stands out."""
    reasons = []
    if y_true.size < min_n:
        reasons.append(f"small (n < {min_n})")
    if np.unique(y_true).size < 2:
        reasons.append("one class only")
    return "; ".join(reasons)


def wilson_interval(successes: int, trials: int) -> list[float] | None:
    """Wilson score 95% interval of a proportion; None when there are no trials."""
    if trials == 0:
        return None
    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def _group_values(rows: pd.DataFrame, attribute: str) -> pd.Series:
    if attribute not in rows.columns:
        return pd.Series([MISSING] * len(rows), index=rows.index)
    values = rows[attribute].astype("string").fillna(MISSING).str.strip()
    return values.mask(values == "", MISSING).astype(str)


def _group_record(
    attribute: str, group: str, y_true: np.ndarray, y_score: np.ndarray, threshold: float, min_n: int
) -> dict[str, object]:
    tn, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    return {
        "attribute": attribute,
        "group": group,
        "n": int(y_true.size),
        "n_positive": int(y_true.sum()),
        **classification_metrics(y_true, y_score, threshold),
        "sensitivity_ci95": wilson_interval(tp, tp + fn),
        "specificity_ci95": wilson_interval(tn, tn + fp),
        "flag": flag(y_true, min_n),
    }
