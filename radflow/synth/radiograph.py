"""Synthetic PA chest radiographs: body, lungs, heart, spine, ribs, noise, and an optional round nodule."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from scipy.ndimage import gaussian_filter

from radflow.synth.files import CR_IMAGE, DX_IMAGE
from radflow.synth.headers import SeriesInfo, instance_dataset, set_pixels_module
from radflow.synth.plan import Study

SIZE = 256
MAX_STORED = 4095  # 12 bits stored in 16


def _ellipse(
    x: np.ndarray, y: np.ndarray, centre: tuple[float, float], axes: tuple[float, float]
) -> np.ndarray:
    """A soft-edged ellipse mask in [0, 1] over normalised coordinates."""
    r = np.sqrt(((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2)
    return 1.0 / (1.0 + np.exp((r - 1.0) * 25.0))


def _lungs(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Both lung fields as a soft mask, the patient's left (image right) one smaller by the heart."""
    sx, sy = rng.uniform(0.24, 0.30), rng.uniform(0.52, 0.62)
    cx, cy = rng.uniform(0.34, 0.42), rng.uniform(-0.12, 0.0)
    right = _ellipse(x, y, (-cx, cy), (sx, sy))
    left = _ellipse(x, y, (cx, cy), (sx * 0.92, sy))
    return np.clip(right + left, 0.0, 1.0)


def _ribs(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Posterior rib shadows: bands that curve down laterally, spacing and curvature vary per patient."""
    spacing, curve = rng.uniform(0.15, 0.2), rng.uniform(0.35, 0.6)
    phase = (y - curve * x**2) / spacing + rng.uniform(0, 1)
    bands = np.clip((np.sin(2 * np.pi * phase) - 0.3) / 0.7, 0.0, 1.0)
    return bands * (np.abs(x) > 0.07)


def _nodule(rng: np.random.Generator, lungs: np.ndarray) -> np.ndarray:
    """A round opacity of random size and contrast centred well inside a lung field."""
    inside = np.argwhere(gaussian_filter(lungs, 6) > 0.9)
    cy, cx = inside[int(rng.integers(len(inside)))]
    radius, contrast = rng.uniform(16.0, 32.0), rng.uniform(0.35, 0.6)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    dist = np.hypot(yy - cy, xx - cx)
    return contrast / (1.0 + np.exp((dist - radius) / 1.5))


def _vessels(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Lung markings: fine texture, stronger towards the hila, so a blob is not the only structure there."""
    texture = gaussian_filter(rng.normal(0.0, 1.0, x.shape), 2.0)
    hila = np.exp(-((np.abs(x) - 0.18) ** 2 + (y - 0.05) ** 2) / 0.15)
    return np.clip(texture * 3.0, 0.0, None) * (0.3 + hila)


def chest_density(rng: np.random.Generator, finding: bool) -> np.ndarray:
    """A (256, 256) attenuation map in about [0, 1], bright = dense, with the nodule when `finding`."""
    y, x = np.mgrid[-1 : 1 : SIZE * 1j, -1 : 1 : SIZE * 1j]
    body = _ellipse(x, y, (rng.uniform(-0.04, 0.04), 0.15), (rng.uniform(0.8, 0.95), rng.uniform(1.0, 1.15)))
    heart = _ellipse(x, y, (rng.uniform(0.06, 0.14), rng.uniform(0.3, 0.42)), (rng.uniform(0.26, 0.34), 0.22))
    lungs = _lungs(rng, x, y) * (1.0 - heart)
    thorax = _ellipse(x, y, (0.0, -0.05), (0.85, 0.75))
    spine = np.exp(-((x / 0.07) ** 4)) * body
    density = rng.uniform(0.45, 0.55) * body - rng.uniform(0.3, 0.36) * lungs + 0.05 * heart + 0.12 * spine
    density += rng.uniform(0.04, 0.07) * _ribs(rng, x, y) * thorax
    density += rng.uniform(0.02, 0.04) * _vessels(rng, x, y) * lungs
    density += gaussian_filter(rng.normal(0.0, 1.0, (SIZE, SIZE)), 12) * 2.0 * body
    if finding:
        density += _nodule(rng, lungs) * lungs
    density = gaussian_filter(density, 1.0)
    return (density + rng.normal(0.0, 0.015, (SIZE, SIZE))).astype(np.float32)


def radiograph_dataset(
    seed: int, study: Study, series: SeriesInfo, density: np.ndarray, rng: np.random.Generator
) -> Dataset:
    """A CR or DX image of `density` as 12-bit stored in 16, windowed, MONOCHROME1 or 2 per device."""
    ds = instance_dataset(seed, study, series, DX_IMAGE if study.device.modality == "DX" else CR_IMAGE, 1)
    offset, scale = rng.uniform(200, 500), rng.uniform(2800, 3400)
    stored = np.clip(np.rint(offset + density * scale), 0, MAX_STORED).astype(np.uint16)
    centre, width = offset + scale * rng.uniform(0.42, 0.5), scale * rng.uniform(0.9, 1.05)
    photometric = study.device.photometric
    if photometric == "MONOCHROME1":
        stored = (MAX_STORED - stored).astype(np.uint16)
        centre = MAX_STORED - centre
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImagerPixelSpacing = [1.4, 1.4]
    if study.device.modality == "DX":
        ds.PixelSpacing = [1.4, 1.4]
        ds.DetectorType = "SCINTILLATOR"
    set_pixels_module(ds, SIZE, SIZE, photometric, (16, 12, 0))
    ds.WindowCenter = f"{centre:.1f}"
    ds.WindowWidth = f"{width:.1f}"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PixelData = stored.tobytes()
    return ds
