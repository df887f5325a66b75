"""Every params network builds in 2D and 3D and gives one logit per sample."""

from __future__ import annotations

import pytest
import torch

from radflow.models.config import ModelConfig
from radflow.models.networks import build_network


@pytest.mark.parametrize("network", ["small_cnn", "resnet10", "resnet18", "densenet121"])
@pytest.mark.parametrize("size", [(32, 32), (32, 32, 32)])
def test_one_logit_per_sample(network: str, size: tuple[int, ...]) -> None:
    config = ModelConfig(network=network, spatial_size=size, modalities=("CR",), width=4, dropout=0.1)
    model = build_network(config).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, *size)).shape == (2, 1)


def test_config_round_trips_through_plain_types() -> None:
    config = ModelConfig(
        network="resnet10", spatial_size=(28, 28, 28), modalities=("CT",), tta_flip_dims=(0, 2)
    )
    raw = config.to_dict()
    assert raw["spatial_dims"] == 3 and raw["spatial_size"] == [28, 28, 28]
    assert ModelConfig.from_dict(raw) == config
