"""Every params network builds in 2D and 3D and gives one logit per sample."""

from __future__ import annotations

import pytest
import torch

from radflow.config.train import DENSENET_MIN_SIZE, TrainParams
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


@pytest.mark.parametrize("dims", [2, 3])
def test_densenet_size_limit_is_the_networks_own(dims: int) -> None:
    """At DENSENET_MIN_SIZE the network runs; one pixel less and torch's pooling fails, which the params
    check turns into one sentence before any data is loaded."""
    network = build_network(
        ModelConfig(network="densenet121", spatial_size=(DENSENET_MIN_SIZE,) * dims, modalities=("CR",))
    ).eval()
    with torch.no_grad():
        assert network(torch.rand(1, 1, *(DENSENET_MIN_SIZE,) * dims)).shape == (1, 1)
        with pytest.raises(RuntimeError, match=r"(?i)too small|smaller than kernel"):
            network(torch.rand(1, 1, *(DENSENET_MIN_SIZE - 1,) * dims))
    with pytest.raises(ValueError, match=f"at least {DENSENET_MIN_SIZE}"):
        TrainParams(network="densenet121", spatial_size=[64, DENSENET_MIN_SIZE - 1])
    TrainParams(network="densenet121", spatial_size=[DENSENET_MIN_SIZE] * dims)
    TrainParams(network="resnet10", spatial_size=[28] * dims)
