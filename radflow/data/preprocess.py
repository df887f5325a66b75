"""Turn one clean array into a network input: window, resize (MONAI transforms) and standardise."""

from __future__ import annotations

import numpy as np
from monai.transforms import Resize, ScaleIntensityRange

from radflow.models.config import ModelConfig


def to_unit_range(array: np.ndarray, ct_window: tuple[float, float]) -> np.ndarray:
    """Radiographs are already in [0, 1]; volumes are clipped to the HU window and mapped onto [0, 1]."""
    if array.ndim == 2:
        return np.clip(array, 0.0, 1.0).astype(np.float32, copy=False)
    low, high = ct_window
    scale = ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True)
    return np.asarray(scale(array), dtype=np.float32)


def resize(array: np.ndarray, spatial_size: tuple[int, ...]) -> np.ndarray:
    """Channel-first (1, *spatial_size); area-averaging when shrinking avoids aliasing, linear otherwise."""
    image = array[np.newaxis].astype(np.float32, copy=False)
    if tuple(image.shape[1:]) == tuple(spatial_size):
        return image
    shrinking = all(s <= a for s, a in zip(spatial_size, image.shape[1:], strict=True))
    mode = "area" if shrinking else ("bilinear" if len(spatial_size) == 2 else "trilinear")
    return np.asarray(Resize(spatial_size, mode=mode)(image), dtype=np.float32)  # type: ignore[arg-type]


def prepare(array: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Window and resize only (no standardisation): (1, *spatial_size) float32 in [0, 1]."""
    if array.ndim != config.spatial_dims:
        raise ValueError(f"array has {array.ndim} dimensions, the model expects {config.spatial_dims}")
    return resize(to_unit_range(array, config.ct_window), config.spatial_size)


def standardise(images: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Subtract the training mean and divide by its standard deviation (both stored in the config)."""
    return ((images - np.float32(config.mean)) / np.float32(config.std)).astype(np.float32, copy=False)
