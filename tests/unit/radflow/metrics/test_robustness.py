"""Perturbations keep shapes, change the images as intended, and feed a metrics table."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.config.evaluate import RobustnessParams
from radflow.metrics.robustness import add_noise, adjust_contrast, reduce_resolution, robustness_table


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((6, 1, 16, 16)).astype(np.float32)


def test_noise_is_seeded_and_scaled_to_the_image_spread(images: np.ndarray) -> None:
    noisy = add_noise(images, 0.5, seed=1)
    assert noisy.shape == images.shape and noisy.dtype == np.float32
    assert np.std(noisy - images) == pytest.approx(0.5 * images.std(), rel=0.05)
    np.testing.assert_array_equal(noisy, add_noise(images, 0.5, seed=1))


def test_contrast_gamma_keeps_each_image_range(images: np.ndarray) -> None:
    out = adjust_contrast(images, 2.0)
    assert out.shape == images.shape
    for a, b in zip(images, out, strict=True):
        assert b.min() == pytest.approx(a.min(), abs=1e-5) and b.max() == pytest.approx(a.max(), abs=1e-4)
    assert out.mean() < images.mean()  # gamma > 1 darkens mid-tones


def test_resolution_loss_blurs_but_keeps_shape_2d_and_3d(images: np.ndarray) -> None:
    low = reduce_resolution(images, 0.25)
    assert low.shape == images.shape
    assert np.abs(np.diff(low, axis=-1)).mean() < np.abs(np.diff(images, axis=-1)).mean()
    volume = np.random.default_rng(1).random((2, 1, 8, 8, 8)).astype(np.float32)
    assert reduce_resolution(volume, 0.5).shape == volume.shape


def test_table_has_a_clean_baseline_and_every_severity(images: np.ndarray) -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    predict = lambda x: 1 / (1 + np.exp(-(x.mean(axis=(1, 2, 3)) - 0.5) * 20))  # noqa: E731
    params = RobustnessParams(noise_std=[0.1, 0.3], contrast_gamma=[2.0], resolution_scale=[0.5])
    table = robustness_table(predict, images, y, 0.5, params, seed=0)
    assert table["perturbation"].tolist() == ["none", "noise", "noise", "contrast", "resolution"]
    assert table.loc[0, "auc_change"] == 0.0
    assert {"auc", "sensitivity", "specificity", "ece"} <= set(table.columns)


def test_known_clean_predictions_are_reused_not_recomputed(images: np.ndarray) -> None:
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return np.full(len(x), 0.7)

    params = RobustnessParams(noise_std=[0.1], contrast_gamma=[], resolution_scale=[])
    clean = np.linspace(0.1, 0.9, 6)
    table = robustness_table(predict, images, np.array([0, 0, 0, 1, 1, 1]), 0.5, params, 0, clean_probs=clean)
    assert len(calls) == 1  # only the noisy pass
    assert table.loc[0, "auc"] == 1.0 and table.loc[1, "auc"] == 0.5
