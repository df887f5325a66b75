"""Grad-CAM: maps of the input's spatial shape, the target layer found, examples sampled by outcome."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.nets import resnet10
from torch import nn

from radflow.errors import ConfigError
from radflow.metrics.gradcam import (
    default_target_layer,
    gradcam_maps,
    middle_slice,
    pick_examples,
    resolve_layer,
)


def _cnn(dims: int) -> nn.Module:
    conv, pool = (nn.Conv2d, nn.AdaptiveAvgPool2d) if dims == 2 else (nn.Conv3d, nn.AdaptiveAvgPool3d)
    torch.manual_seed(0)
    return nn.Sequential(
        conv(1, 4, 3, padding=1),
        nn.ReLU(inplace=True),
        conv(4, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(8, 1),
    ).eval()


@pytest.mark.parametrize("shape", [(3, 1, 20, 24), (2, 1, 8, 12, 10)])
def test_maps_have_the_input_spatial_shape_and_unit_range(shape: tuple[int, ...]) -> None:
    images = np.random.default_rng(0).random(shape).astype(np.float32)
    maps = gradcam_maps(_cnn(len(shape) - 2), images)
    assert maps.shape == (shape[0], *shape[2:])
    assert maps.min() >= 0 and maps.max() <= 1 and maps.max() == pytest.approx(1.0)


def test_the_map_points_at_what_drives_the_score() -> None:
    # A net whose score is the mean intensity of the left half: the map must favour the left half.
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
    images = np.zeros((1, 1, 8, 8), dtype=np.float32)
    images[..., :4] = 1.0
    cam = gradcam_maps(net, images, layer="1")[0]
    assert cam[:, :3].mean() > cam[:, 5:].mean()


def test_target_layer_is_the_last_spatial_layer_in_execution_order() -> None:
    assert default_target_layer(_cnn(2), torch.rand(1, 1, 16, 16)) == "3"
    # ResNet registers its shortcut conv after the main path: the whole last stage is the right target
    net = resnet10(spatial_dims=2, n_input_channels=1, num_classes=1).eval()
    assert default_target_layer(net, torch.rand(1, 1, 64, 64)) == "layer4"


def test_the_original_model_is_left_untouched() -> None:
    model = _cnn(2)
    gradcam_maps(model, np.random.default_rng(0).random((1, 1, 8, 8)).astype(np.float32))
    assert model[1].inplace is True and not model._forward_hooks and not model[2]._forward_hooks


def test_an_unknown_configured_layer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"evaluate\.gradcam\.layer"):
        resolve_layer(_cnn(2), np.zeros((1, 1, 8, 8), np.float32), "nope")


def test_examples_are_sampled_per_outcome_and_seeded() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.2, 0.6, 0.3])
    picks = pick_examples(y, p, 0.5, per_outcome=2, seed=0)
    assert set(picks) == {"tp", "fp", "fn"}
    assert set(picks["tp"]) <= {0, 1, 6} and len(picks["tp"]) == 2
    assert picks["fp"].tolist() == [3] and picks["fn"].tolist() == [2]
    assert {k: v.tolist() for k, v in picks.items()} == {
        k: v.tolist() for k, v in pick_examples(y, p, 0.5, 2, 0).items()
    }


def test_middle_slice_of_a_volume() -> None:
    volume = np.arange(5)[:, None, None] * np.ones((5, 3, 3))
    assert middle_slice(volume).shape == (3, 3) and middle_slice(volume)[0, 0] == 2
    assert middle_slice(np.ones((4, 4))).shape == (4, 4)
