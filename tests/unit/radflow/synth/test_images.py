"""Pixel generators: radiograph density with a visible nodule, CT volumes in plausible HU, geometry."""

from __future__ import annotations

import numpy as np

from radflow.synth.ct import chest_volume, make_geometry
from radflow.synth.headers import series_info
from radflow.synth.plan import make_plan
from radflow.synth.radiograph import chest_density, radiograph_dataset


def test_nodule_adds_a_bright_round_region() -> None:
    normal = chest_density(np.random.default_rng(5), finding=False)
    # the same draws up to the nodule, so the difference is the nodule plus fresh noise
    with_nodule = chest_density(np.random.default_rng(5), finding=True)
    diff = (with_nodule - normal).reshape(64, 4, 64, 4).mean(axis=(1, 3))
    assert normal.shape == (256, 256) and normal.dtype == np.float32
    assert diff.max() > 0.2  # still obvious after downsampling to 64x64
    assert (diff > 0.1).sum() >= 9


def test_backgrounds_differ_between_patients() -> None:
    a = chest_density(np.random.default_rng(1), finding=False)
    b = chest_density(np.random.default_rng(2), finding=False)
    assert np.abs(a - b).mean() > 0.02


def test_monochrome1_radiograph_stores_inverted_12_bit_values() -> None:
    study = next(s for s in make_plan(40, 0) if s.device.photometric == "MONOCHROME1")
    info = series_info(0, study, 1, study.device.modality, "PA")
    density = chest_density(np.random.default_rng(0), finding=False)
    ds = radiograph_dataset(0, study, info, density, np.random.default_rng(0))
    pixels = ds.pixel_array
    assert (ds.BitsStored, ds.HighBit, ds.BitsAllocated) == (12, 11, 16) and pixels.max() <= 4095
    body, outside = pixels[128, 128], pixels[5, 5]
    assert outside > body  # air is bright in stored MONOCHROME1 values
    assert ds.PresentationIntentType == "FOR PRESENTATION" and ds.ViewPosition == "PA"


def test_ct_volume_has_air_lung_and_soft_tissue_values() -> None:
    hu = chest_volume(np.random.default_rng(0), 24, finding=False)
    assert hu.shape == (24, 64, 64)
    assert abs(np.median(hu[:, 1, :]) + 1000) < 60  # air above the body
    assert abs(np.median(hu[12, 30, 18:24]) + 850) < 80  # right lung
    assert np.isclose(np.median(hu[(hu > -300) & (hu < 200)]), 40, atol=30)  # soft tissue


def test_geometry_is_orthonormal_and_spaced_by_thickness() -> None:
    for seed in range(6):
        geometry = make_geometry(np.random.default_rng(seed), oblique=seed % 2 == 1)
        row, col = np.array(geometry.row), np.array(geometry.col)
        assert abs(row @ col) < 1e-6 and np.isclose(np.linalg.norm(col), 1, atol=1e-5)
        steps = np.diff([np.array(geometry.position(k)) @ geometry.normal for k in range(geometry.n_slices)])
        assert np.allclose(steps, geometry.thickness, atol=1e-3)
        assert 20 <= geometry.n_slices <= 40
