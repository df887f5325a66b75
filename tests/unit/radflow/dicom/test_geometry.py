"""Slice geometry: normals, sorting, tilt, spacing verdicts and the affine."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.dicom import geometry

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def test_orientation_ok_accepts_unit_orthogonal_and_rejects_the_rest() -> None:
    assert geometry.orientation_ok(AXIAL)
    assert geometry.orientation_ok(SAGITTAL)
    assert not geometry.orientation_ok(None)
    assert not geometry.orientation_ok((1.0, 0.0, 0.0, 1.0, 0.0, 0.0))  # parallel
    assert not geometry.orientation_ok((2.0, 0.0, 0.0, 0.0, 1.0, 0.0))  # not unit
    assert not geometry.orientation_ok((1.0, 0.0, 0.0))


def test_slice_normal_is_the_cross_product() -> None:
    np.testing.assert_allclose(geometry.slice_normal(AXIAL), [0, 0, 1])
    np.testing.assert_allclose(geometry.slice_normal(SAGITTAL), [-1, 0, 0])


def test_sort_along_normal_orders_by_projection_not_input_order() -> None:
    positions = np.array([[0, 0, 5.0], [0, 0, -5.0], [0, 0, 0.0]])
    order, proj = geometry.sort_along_normal(positions, np.array([0, 0, 1.0]))
    assert order.tolist() == [1, 2, 0]
    assert proj.tolist() == [-5.0, 0.0, 5.0]


def test_tilt_degrees_measures_shear_from_positions() -> None:
    z = np.arange(10) * 2.0
    straight = np.stack([np.zeros(10), np.zeros(10), z], axis=1)
    sheared = np.stack([np.zeros(10), z * np.tan(np.radians(15)), z], axis=1)
    normal = np.array([0, 0, 1.0])
    assert geometry.tilt_degrees(straight, normal) == pytest.approx(0.0)
    assert geometry.tilt_degrees(sheared, normal) == pytest.approx(15.0, abs=1e-6)


def test_check_spacing_regular_missing_and_irregular() -> None:
    regular = geometry.check_spacing(np.arange(8) * 2.5, 0.2, 0.05)
    assert regular.reason == "" and regular.spacing == pytest.approx(2.5)
    gap = np.array([0, 2.5, 5.0, 10.0, 12.5, 15.0])
    missing = geometry.check_spacing(gap, 0.2, 0.05)
    assert missing.reason == "MISSING_SLICES" and "1 slice" in missing.detail
    odd = geometry.check_spacing(np.array([0, 2.5, 5.0, 8.8, 11.3, 13.8]), 0.2, 0.05)
    assert odd.reason == "SPACING_NONUNIFORM"


def test_check_spacing_tolerates_scanner_rounding() -> None:
    noisy = np.arange(10) * 1.25 + np.array([0, 0.01, -0.02, 0.0, 0.03, 0, 0, -0.01, 0.02, 0])
    assert geometry.check_spacing(noisy, 0.2, 0.05).reason == ""


def _blend(t: np.ndarray, values: np.ndarray, planes: tuple[tuple[int, float], ...]) -> np.ndarray:
    return np.array([(1 - w) * values[lo] + w * values[lo + 1] for lo, w in planes])


def test_uniform_grid_steps_by_the_smallest_gap_and_blends_linearly() -> None:
    t = np.array([10.0, 15.0, 20.0, 30.0, 40.0])  # a head CT: 5 mm at the base, 10 mm above
    step, planes = geometry.uniform_grid(t)
    assert step == pytest.approx(5.0) and len(planes) == 7
    # a quantity linear in height is reproduced exactly at every plane's height
    np.testing.assert_allclose(_blend(t, 3 * t + 1, planes), 3 * (10 + 5 * np.arange(7)) + 1)
    assert planes[0] == (0, 0.0) and planes[-1] == (3, 1.0)  # the first and last slices, unblended


def test_uniform_grid_ends_on_the_last_slice_and_caps_the_growth() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.7, 4.7, 5.7])
    step, planes = geometry.uniform_grid(t)
    assert step <= 1.0 and (len(planes) - 1) * step == pytest.approx(5.7)
    np.testing.assert_allclose(_blend(t, t, planes), np.arange(len(planes)) * step, atol=1e-12)
    # one slice very close to another would ask for 50x the planes: capped at twice the slices
    close = np.array([0.0, 0.1, 5.0, 10.0, 15.0])
    step, planes = geometry.uniform_grid(close)
    assert len(planes) == 10 and step == pytest.approx(15.0 / 9)
    np.testing.assert_allclose(_blend(close, close, planes), np.arange(10) * step, atol=1e-12)


def test_affine_maps_voxel_indices_to_patient_mm() -> None:
    origin = np.array([-100.0, -120.0, 30.0])
    step = np.array([0.0, 0.0, 2.5])
    aff = geometry.affine(origin, AXIAL, (0.8, 0.7), step)
    k, j, i = 3, 10, 20  # slice, row, column
    point = aff @ np.array([k, j, i, 1.0])
    expected = origin + i * 0.7 * np.array([1, 0, 0]) + j * 0.8 * np.array([0, 1, 0]) + k * step
    np.testing.assert_allclose(point[:3], expected)


def test_unique_positions_groups_repeats() -> None:
    positions = np.array([[0, 0, 0.0], [0, 0, 0.0], [0, 0, 2.0], [0, 0, 2.0]])
    runs = geometry.unique_positions(positions[:, 2], positions, 0.01)
    assert runs == [[0, 1], [2, 3]]
