"""Slice geometry: normals, sorting along the normal, repeated positions, tilt, spacing and the affine.

Pure numpy over positions and direction cosines; no file I/O. The conventions are DICOM's (LPS
patient mm): ImageOrientationPatient is (row cosine X, column cosine Y), a pixel at row j and column
i of a slice at position P lies at P + i·Δcol·X + j·Δrow·Y, with PixelSpacing = (Δrow, Δcol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SpacingVerdict",
    "affine",
    "check_spacing",
    "orientation_ok",
    "same_orientation",
    "slice_normal",
    "sort_along_normal",
    "tilt_degrees",
    "uniform_grid",
    "unique_positions",
]

Floats = NDArray[np.float64]


def orientation_ok(iop: tuple[float, ...] | None, tol: float = 1e-3) -> bool:
    """Whether six direction cosines are two unit vectors at a right angle (within `tol`)."""
    if iop is None or len(iop) != 6 or not all(math.isfinite(v) for v in iop):
        return False
    x, y = iop[:3], iop[3:]
    # Scanners write cosines with ~6 digits; 10·tol keeps rounding noise from rejecting real data.
    # Plain floats: this runs once per slice, where numpy's per-call overhead would dominate.
    return bool(
        abs(math.hypot(*x) - 1) < 10 * tol
        and abs(math.hypot(*y) - 1) < 10 * tol
        and abs(x[0] * y[0] + x[1] * y[1] + x[2] * y[2]) < 10 * tol
    )


def same_orientation(a: tuple[float, ...], b: tuple[float, ...], tol: float) -> bool:
    """Whether two orientations agree cosine by cosine within `tol`."""
    if len(a) != len(b):
        return False
    return all(abs(float(p) - float(q)) <= tol for p, q in zip(a, b, strict=True))


def slice_normal(iop: tuple[float, ...]) -> Floats:
    """The unit slice normal: the cross product of the row and column cosines."""
    x, y = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    n = np.cross(x, y)
    return n / np.linalg.norm(n)


def sort_along_normal(positions: Floats, normal: Floats) -> tuple[NDArray[np.intp], Floats]:
    """Indices that sort positions by their projection on the normal, and the sorted projections."""
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    return order, proj[order]


def unique_positions(sorted_proj: Floats, positions: Floats, tol: float) -> list[list[int]]:
    """Runs of sorted slices sharing one position (within `tol` mm in 3D), as lists of sorted indices."""
    runs: list[list[int]] = [[0]] if len(sorted_proj) else []
    for i in range(1, len(sorted_proj)):
        if np.linalg.norm(positions[i] - positions[runs[-1][0]]) <= tol:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def tilt_degrees(sorted_positions: Floats, normal: Floats) -> float:
    """Angle between the slice normal and the first→last position vector (gantry tilt from geometry)."""
    if len(sorted_positions) < 2:
        return 0.0
    span = sorted_positions[-1] - sorted_positions[0]
    length = float(np.linalg.norm(span))
    if length == 0:
        return 0.0
    cos = abs(float(span @ normal)) / length
    return float(np.degrees(np.arccos(min(1.0, cos))))


@dataclass(frozen=True)
class SpacingVerdict:
    """Outcome of the slice-gap check: `reason` is '' when the gaps are regular."""

    spacing: float
    reason: str
    detail: str


def check_spacing(sorted_proj: Floats, tol_mm: float, tol_fraction: float) -> SpacingVerdict:
    """Compare gaps along the normal: regular, whole multiples of the median (missing), or irregular."""
    gaps = np.diff(sorted_proj)
    median = float(np.median(gaps))
    if median <= 0:
        return SpacingVerdict(0.0, "NOT_A_VOLUME", "Slices do not advance along the slice normal.")
    tol = max(tol_mm, tol_fraction * median)
    off = np.abs(gaps - median) > tol
    if not off.any():
        return SpacingVerdict(float(gaps.mean()), "", "")
    ratio = gaps[off] / median
    whole = np.abs(ratio - np.round(ratio)) * median <= tol
    if np.all(whole & (np.round(ratio) >= 2)):
        missing = int(np.sum(np.round(ratio) - 1))
        return SpacingVerdict(
            median,
            "MISSING_SLICES",
            f"{missing} slice(s) missing: {int(off.sum())} gap(s) are whole multiples of the "
            f"{median:.3g} mm spacing.",
        )
    return SpacingVerdict(
        median,
        "SPACING_NONUNIFORM",
        f"Slice gaps range from {gaps.min():.3g} to {gaps.max():.3g} mm around a median of {median:.3g} mm "
        f"(tolerance {tol:.3g} mm); set clean.irregular_spacing: resample to keep the stack.",
    )


def uniform_grid(sorted_proj: Floats, max_factor: int = 2) -> tuple[float, tuple[tuple[int, float], ...]]:
    """Equal steps over an irregular stack: the step, and each output plane's (lower slice, weight above).

    As dcm2niix's equalisation: the step is the smallest gap, so no acquired detail is averaged
    away, shortened so the first and last planes fall on the first and last slices, and widened
    when it would give more than `max_factor` times the slices. Each output plane is a linear blend
    of the two slices around it along the normal.
    """
    t = np.asarray(sorted_proj, float) - float(sorted_proj[0])
    n, span = len(t), float(t[-1])
    gaps = np.diff(t)
    smallest = float(gaps[gaps > 0].min())
    count = min(max_factor * n, math.ceil(span / smallest - 1e-6) + 1)
    step = span / (count - 1)
    planes = []
    for k in range(count):
        at = min(k * step, span)
        lo = min(int(np.searchsorted(t, at, side="right")) - 1, n - 2)
        weight = (at - t[lo]) / (t[lo + 1] - t[lo])
        planes.append((lo, float(min(1.0, max(0.0, weight)))))
    return step, tuple(planes)


def affine(
    origin: Floats, iop: tuple[float, ...], pixel_spacing: tuple[float, float], step: Floats
) -> Floats:
    """4×4 matrix taking voxel index (k, j, i) to patient mm; `step` is the slice-to-slice vector."""
    x, y = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    out = np.eye(4)
    out[:3, 0] = step
    out[:3, 1] = y * pixel_spacing[0]
    out[:3, 2] = x * pixel_spacing[1]
    out[:3, 3] = origin
    return out
