"""Robustness: the test metrics again after degrading the preprocessed test images.

Three shifts a deployed model meets: acquisition noise (Gaussian, scaled to the images' own
intensity spread so a severity means the same for HU and [0, 1] data), contrast (MONAI's
AdjustContrast gamma within each image's range) and resolution (area-downsampling, then linear
resampling back to the input size, as from a coarser detector or thicker slices).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from monai.transforms import AdjustContrast
from tqdm.auto import tqdm

from radflow.config.evaluate import RobustnessParams
from radflow.metrics.binary import METRICS, classification_metrics
from radflow.metrics.calibration import expected_calibration_error

Predict = Callable[[np.ndarray], np.ndarray]
Perturbation = tuple[str, float, Callable[[np.ndarray], np.ndarray]]
COLUMNS = ["perturbation", "severity", *METRICS, "ece", "auc_change"]


def add_noise(images: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Add Gaussian noise with SD = `fraction` x the intensity SD of the whole batch."""
    rng = np.random.default_rng(seed)
    sd = float(images.std()) or 1.0
    # float32 noise: a float64 draw would double the memory of a large 3D test set
    noise = rng.standard_normal(images.shape, dtype=np.float32) * np.float32(fraction * sd)
    return (images + noise).astype(np.float32, copy=False)


def adjust_contrast(images: np.ndarray, gamma: float) -> np.ndarray:
    """Apply a gamma curve within each image's own intensity range (MONAI AdjustContrast)."""
    transform = AdjustContrast(gamma=gamma)
    out = [np.asarray(transform(torch.from_numpy(np.ascontiguousarray(image)))) for image in images]
    return np.stack(out).astype(np.float32)


def reduce_resolution(images: np.ndarray, scale: float) -> np.ndarray:
    """Downsample every spatial axis by `scale` (area averaging), then resample back linearly."""
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    spatial = tuple(tensor.shape[2:])
    small = [max(1, round(s * scale)) for s in spatial]
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    down = F.interpolate(tensor, size=small, mode="area")
    return F.interpolate(down, size=spatial, mode=mode, align_corners=False).numpy()


def perturbations(params: RobustnessParams, seed: int) -> Iterator[Perturbation]:
    """Every configured (name, severity, transform), mildest first within each kind."""
    for std in sorted(params.noise_std):
        yield "noise", std, partial(add_noise, fraction=std, seed=seed)
    for gamma in sorted(params.contrast_gamma):
        yield "contrast", gamma, partial(adjust_contrast, gamma=gamma)
    for scale in sorted(params.resolution_scale, reverse=True):
        yield "resolution", scale, partial(reduce_resolution, scale=scale)


def robustness_table(
    predict: Predict,
    images: np.ndarray,
    y_true: np.ndarray,
    threshold: float,
    params: RobustnessParams,
    seed: int,
    n_bins: int = 10,
    clean_probs: np.ndarray | None = None,
) -> pd.DataFrame:
    """Metrics at the fixed threshold for the clean images and each perturbation, with AUC change.

    `clean_probs` (the unperturbed predictions, when already computed) saves one pass over the test set.
    """
    conditions: list[Perturbation] = [("none", 0.0, np.asarray), *perturbations(params, seed)]
    records = []
    for name, severity, transform in tqdm(conditions, desc="robustness", leave=False, disable=None):
        reuse = name == "none" and clean_probs is not None
        probs = clean_probs if reuse and clean_probs is not None else predict(transform(images))
        metrics = classification_metrics(y_true, probs, threshold)
        ece = expected_calibration_error(y_true, probs, n_bins)
        records.append({"perturbation": name, "severity": severity, **metrics, "ece": ece})
    table = pd.DataFrame.from_records(records)
    auc = pd.to_numeric(table["auc"], errors="coerce")  # None (undefined) becomes NaN
    table["auc_change"] = auc - auc.iloc[0]
    return table.reindex(columns=COLUMNS)
