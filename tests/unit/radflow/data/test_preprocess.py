"""Windowing, resizing and standardisation of clean arrays into network inputs."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.data.preprocess import prepare, standardise
from radflow.models.config import ModelConfig


def test_volume_is_windowed_to_unit_range_and_resized() -> None:
    config = ModelConfig(
        network="small_cnn", spatial_size=(4, 4, 4), modalities=("CT",), ct_window=(0.0, 255.0)
    )
    volume = np.full((8, 8, 8), 127.5, dtype=np.float32)
    volume[0, 0, 0] = -2000.0
    out = prepare(volume, config)
    assert out.shape == (1, 4, 4, 4) and out.dtype == np.float32
    assert out.min() >= 0.0 and out[0, 1:, 1:, 1:] == pytest.approx(0.5)


def test_radiograph_upsampled_and_standardised() -> None:
    config = ModelConfig(network="small_cnn", spatial_size=(56, 56), modalities=("CR",), mean=0.5, std=0.25)
    image = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    out = prepare(image, config)
    assert out.shape == (1, 56, 56) and out.min() >= 0 and out.max() <= 1
    assert standardise(np.full((1, 1, 2, 2), 0.75, np.float32), config) == pytest.approx(1.0)


def test_dimension_mismatch_is_refused() -> None:
    config = ModelConfig(network="small_cnn", spatial_size=(8, 8), modalities=("CR",))
    with pytest.raises(ValueError, match="dimensions"):
        prepare(np.zeros((4, 8, 8), np.float32), config)
