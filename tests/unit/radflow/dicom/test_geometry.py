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
