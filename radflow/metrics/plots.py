"""DVC plot data: ROC, precision-recall, calibration and confusion tables as CSV under reports/plots/.

Curves come from scikit-learn (`roc_curve`, `precision_recall_curve`). A curve that is undefined
(one class present) is written with its header and no rows, so DVC still finds the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from radflow.metrics.binary import predict_labels

LABEL_NAMES = np.array(["negative", "positive"])


def roc_table(y_true: np.ndarray, y_score: np.ndarray) -> pd.DataFrame:
    """False- and true-positive rates along the ROC curve (columns fpr, tpr)."""
    if np.unique(y_true).size < 2:
        return pd.DataFrame(columns=["fpr", "tpr"])
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def pr_table(y_true: np.ndarray, y_score: np.ndarray) -> pd.DataFrame:
    """Precision against recall (columns recall, precision), highest recall first as sklearn gives it."""
    if np.asarray(y_true).sum() == 0:
        return pd.DataFrame(columns=["recall", "precision"])
    precision, recall, _ = precision_recall_curve(y_true, y_score)
    return pd.DataFrame({"recall": recall, "precision": precision})


def confusion_table(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per test image (actual, predicted as words), the layout of DVC's confusion template."""
    actual = LABEL_NAMES[np.asarray(y_true).astype(np.int64)]
    predicted = LABEL_NAMES[predict_labels(y_score, threshold)]
    return pd.DataFrame({"actual": actual, "predicted": predicted})


def write_plot_data(
    plots_dir: Path, y_true: np.ndarray, y_score: np.ndarray, threshold: float, calibration: pd.DataFrame
) -> dict[str, Path]:
    """Write roc.csv, pr.csv, calibration.csv and confusion.csv; return their paths by name."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "roc": roc_table(y_true, y_score),
        "pr": pr_table(y_true, y_score),
        "calibration": calibration,
        "confusion": confusion_table(y_true, y_score, threshold),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = plots_dir / f"{name}.csv"
        table.to_csv(paths[name], index=False, float_format="%.6g")
    return paths
