"""Synthetic chest CT: a HU volume (body, lungs, heart, spine, table, maybe a nodule) and its slices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from radflow.synth.files import CT_IMAGE, make_uid
from radflow.synth.headers import SeriesInfo, instance_dataset, set_pixels_module
from radflow.synth.plan import Study

MATRIX = 64
INTERCEPT = -1024


@dataclass(frozen=True)
class Geometry:
    """Where a series' voxels lie: slices along the normal of (row, col), `thickness` mm apart."""

    n_slices: int
    pixel_mm: float
    thickness: float
    row: tuple[float, float, float]
    col: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def normal(self) -> np.ndarray:
        """The unit slice normal (row × col)."""
        return np.cross(np.array(self.row), np.array(self.col))

    def position(self, k: int) -> list[float]:
        """ImagePositionPatient of slice k (0 = most inferior)."""
        return [round(float(v), 4) for v in np.array(self.origin) + k * self.thickness * self.normal]


def make_geometry(rng: np.random.Generator, oblique: bool) -> Geometry:
    """Axial geometry (or tilted a few degrees about the x axis, still orthonormal and untilted stacking)."""
    thickness = float(rng.choice([5.0, 7.5, 8.0]))
    n_slices = int(np.clip(round(rng.uniform(240, 300) / thickness), 20, 40))
    pixel_mm = round(float(rng.uniform(5.5, 6.5)), 3)
    angle = np.deg2rad(rng.uniform(2.0, 5.0)) if oblique else 0.0
    col = (0.0, round(float(np.cos(angle)), 6), round(float(-np.sin(angle)), 6))
    half = pixel_mm * (MATRIX - 1) / 2
    origin = (-half, -half + float(rng.uniform(-10, 10)), round(float(rng.uniform(-350, -250)), 2))
    return Geometry(n_slices, pixel_mm, thickness, (1.0, 0.0, 0.0), col, origin)


def _ellipsoid(
    grid: tuple[np.ndarray, ...], centre: tuple[float, ...], radii: tuple[float, ...]
) -> np.ndarray:
    """A boolean ellipsoid over normalised (z, y, x) coordinates."""
    squared = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    return np.asarray(squared) <= 1.0


def chest_volume(rng: np.random.Generator, n_slices: int, finding: bool) -> np.ndarray:
    """A (slices, 64, 64) HU volume; slice 0 is the most inferior."""
    z, y, x = np.meshgrid(np.linspace(-1, 1, n_slices), *(2 * [np.linspace(-1, 1, MATRIX)]), indexing="ij")
    hu = np.full(z.shape, -1000.0)
    body_axes = (rng.uniform(0.8, 0.9), rng.uniform(0.6, 0.7))
    body = (x / body_axes[0]) ** 2 + (y / body_axes[1]) ** 2 <= 1.0
    hu[body] = -100.0  # subcutaneous fat rim; the inner body overrides it
    hu[(x / (body_axes[0] - 0.08)) ** 2 + (y / (body_axes[1] - 0.08)) ** 2 <= 1.0] = 40.0
    lungs = np.zeros(z.shape, dtype=bool)
    for side in (-1, 1):
        centre = (0.15, rng.uniform(-0.1, 0.0), side * rng.uniform(0.33, 0.4))
        lungs |= _ellipsoid((z, y, x), centre, (1.05, rng.uniform(0.4, 0.48), rng.uniform(0.25, 0.3)))
    hu[lungs] = -850.0 + rng.normal(0, 30, size=int(lungs.sum()))
    hu[_ellipsoid((z, y, x), (-0.45, -0.15, 0.12), (0.4, 0.3, 0.28))] = 45.0  # heart
    hu[(x / 0.1) ** 2 + ((y - 0.45) / 0.1) ** 2 <= 1.0] = 450.0  # vertebral body
    hu[(np.abs(y - 0.85) < 0.03) & (np.abs(x) < 0.9)] = 150.0  # table
    if finding:
        hu = _add_nodule(rng, hu, lungs, (z, y, x))
    return hu + rng.normal(0, rng.uniform(12, 25), size=hu.shape)


def _add_nodule(
    rng: np.random.Generator, hu: np.ndarray, lungs: np.ndarray, grid: tuple[np.ndarray, ...]
) -> np.ndarray:
    """A soft-tissue blob centred inside a lung (radius about 20-50 mm), blended in with a soft edge."""
    candidates = np.argwhere(lungs)
    centre_idx = tuple(candidates[int(rng.integers(len(candidates)))])
    radius = rng.uniform(0.12, 0.25)
    # z spans less millimetres than x/y over [-1, 1], so the blob is stretched in z to stay round in mm.
    radii = (radius * 1.4, radius, radius)
    dist = np.sqrt(sum(((g - g[centre_idx]) / r) ** 2 for g, r in zip(grid, radii, strict=True)))
    weight = 1.0 / (1.0 + np.exp((dist - 1.0) * 8.0))
    return hu * (1 - weight) + rng.uniform(0.0, 60.0) * weight


def slice_dataset(
    seed: int, study: Study, series: SeriesInfo, geometry: Geometry, k: int, instance: int
) -> Dataset:
    """The header (no pixels yet) of slice k of a CT series."""
    ds = instance_dataset(seed, study, series, CT_IMAGE, instance)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.FrameOfReferenceUID = make_uid(seed, "frame", study.patient.index, study.index)
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = geometry.position(k)
    ds.ImageOrientationPatient = [*geometry.row, *geometry.col]
    ds.PixelSpacing = [geometry.pixel_mm, geometry.pixel_mm]
    ds.SliceThickness = geometry.thickness
    ds.SpacingBetweenSlices = geometry.thickness
    ds.SliceLocation = geometry.position(k)[2]
    ds.KVP = 120
    ds.PatientPosition = "FFS"
    set_pixels_module(ds, MATRIX, MATRIX, "MONOCHROME2", (16, 16, 1))
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = -600, 1500
    return ds
