"""PNG figures for the report: ROC, PR, confusion matrix, reliability diagram, Grad-CAM galleries.

Matplotlib's object API (`Figure`, rendered by Agg) is used instead of pyplot, so no global
backend or figure state is touched and nothing needs a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from radflow.metrics.binary import confusion_counts, predict_labels
from radflow.metrics.plots import pr_table, roc_table

DPI = 110


def save(fig: Figure, path: Path) -> Path:
    """Write the figure as PNG and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    return path


def roc_figure(y_true: np.ndarray, y_score: np.ndarray, threshold: float, auc: float | None) -> Figure:
    """ROC curve with the chance diagonal and the operating point marked."""
    fig, ax = _axes()
    curve = roc_table(y_true, y_score)
    label = f"AUC {auc:.3f}" if auc is not None else "AUC undefined"
    ax.plot(curve["fpr"], curve["tpr"], lw=2, label=label)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    tn, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    if tn + fp and tp + fn:
        ax.plot(fp / (tn + fp), tp / (tp + fn), "o", c="crimson", label=f"operating point ({threshold:.3g})")
    ax.set(xlabel="1 - specificity (false-positive rate)", ylabel="sensitivity", title="ROC (test)")
    ax.legend(loc="lower right")
    return fig


def pr_figure(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> Figure:
    """Precision-recall curve with the prevalence baseline and the operating point."""
    fig, ax = _axes()
    curve = pr_table(y_true, y_score)
    ax.plot(curve["recall"], curve["precision"], lw=2, label="model")
    prevalence = float(np.mean(y_true)) if len(y_true) else 0.0
    ax.axhline(prevalence, ls="--", c="grey", lw=1, label=f"prevalence {prevalence:.2f}")
    _, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    if tp + fn and tp + fp:
        ax.plot(tp / (tp + fn), tp / (tp + fp), "o", c="crimson", label="operating point")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall (test)")
    ax.legend(loc="lower left")
    return fig


def confusion_figure(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> Figure:
    """The 2x2 confusion matrix at the operating point, with counts in each cell."""
    tn, fp, fn, tp = confusion_counts(y_true, predict_labels(y_score, threshold))
    matrix = np.array([[tn, fp], [fn, tp]])
    fig, ax = _axes(size=(3.8, 3.4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=14, color=colour)
    ax.set_xticks([0, 1], ["negative", "positive"])
    ax.set_yticks([0, 1], ["negative", "positive"])
    ax.set(xlabel="model call", ylabel="reference label", title="Confusion matrix (test)")
    return fig


def calibration_figure(bins: pd.DataFrame, ece: float | None) -> Figure:
    """Reliability diagram: observed positive fraction against mean predicted probability per bin."""
    fig = Figure(figsize=(4.6, 5.2))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    label = f"model (ECE {ece:.3f})" if ece is not None else "model"
    top.plot(bins["mean_predicted"], bins["fraction_positive"], "o-", lw=2, label=label)
    top.set(ylabel="observed fraction positive", xlim=(0, 1), ylim=(0, 1), title="Calibration (test)")
    top.legend(loc="upper left")
    width = (bins["upper"] - bins["lower"]).to_numpy() * 0.9
    bottom.bar(bins["lower"] + width / 1.8, bins["count"], width=width, color="grey")
    bottom.set(xlabel="predicted probability", ylabel="images")
    return fig


def gradcam_figure(
    images: list[np.ndarray], maps: list[np.ndarray], titles: list[str], heading: str
) -> Figure:
    """Per example a column: the 2D image in grey on top, the same with its Grad-CAM map in colour below."""
    n = max(len(images), 1)
    fig = Figure(figsize=(2.2 * n, 4.8))
    axes = np.asarray(fig.subplots(2, n)).reshape(2, n)
    for k, (image, cam, title) in enumerate(zip(images, maps, titles, strict=False)):
        lo, hi = np.percentile(image, [1, 99])
        axes[0, k].imshow(image, cmap="gray", vmin=lo, vmax=hi)
        axes[0, k].set_title(title, fontsize=9)
        axes[1, k].imshow(image, cmap="gray", vmin=lo, vmax=hi)
        axes[1, k].imshow(cam, cmap="jet", alpha=0.4, vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(heading)
    return fig


def _axes(size: tuple[float, float] = (4.6, 4.2)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=size)
    return fig, fig.subplots()
