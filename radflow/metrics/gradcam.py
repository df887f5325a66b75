"""Grad-CAM (MONAI's `monai.visualize.GradCAM`) for a sample of true/false positives and false negatives.

The map is computed for the positive class at the target layer (by default the last layer to run
that still has a spatial layout: the last convolution block of a CNN), upsampled to the input size and
scaled to [0, 1] per image with 1 = most important. MONAI's default post-processing inverts that
scale, so our own normaliser replaces it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn

from radflow.errors import ConfigError
from radflow.metrics.binary import predict_labels

OUTCOMES = {"tp": "True positive", "fp": "False positive", "fn": "False negative"}


class _Logits(nn.Module):
    """Give any binary network (N,), (N, 1) or (N, 2) output the (N, classes) shape GradCAM indexes."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(x.shape[0], -1)


def default_target_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The last layer, in execution order, whose output still has a spatial layout (more than one voxel).

    For a plain CNN that is its last convolution block (MONAI DenseNet: `class_layers.relu`, ResNet:
    `layer4`); module registration order is not used because a ResNet registers its shortcut
    convolution after the main path. Maps from a 1-voxel layer would be flat, so those are skipped.
    """
    finished: dict[str, None] = {}

    def record(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == example.ndim and output[0, 0].numel() > 1:
                finished.pop(name, None)
                finished[name] = None

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise ConfigError(
            "The model has no layer with a spatial output; set evaluate.gradcam.layer to a layer name."
        )
    return list(finished)[-1]


def gradcam_maps(model: nn.Module, images: np.ndarray, layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps for the positive class, shape (N, *spatial) in [0, 1], for (N, C, *spatial) images."""
    # A private copy: GradCAM registers hooks and turns in-place activations off on the network.
    net = _Logits(copy.deepcopy(model)).eval()
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    # Gradients w.r.t. the input are not used; requiring them keeps torch's full backward hooks quiet.
    x = _tensor(images, net).requires_grad_(True)
    layer = resolve_layer(net.net, images[:1], layer)
    with torch.no_grad():
        n_outputs = net(x[:1]).shape[1]
    cam = GradCAM(nn_module=net, target_layers=f"net.{layer}", postprocessing=_unit_range)
    maps = cam(x, class_idx=0 if n_outputs == 1 else 1)
    return maps[:, 0].detach().cpu().numpy().astype(np.float32)


def resolve_layer(model: nn.Module, images: np.ndarray, layer: str | None = None) -> str:
    """The configured target layer once checked to exist, or the automatic default for these inputs."""
    if layer is None:
        return default_target_layer(model, _tensor(images[:1], model))
    if layer not in dict(model.named_modules()):
        raise ConfigError(
            f"evaluate.gradcam.layer {layer!r} is not a layer of the model; use null to find one."
        )
    return layer


def pick_examples(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float, per_outcome: int, seed: int
) -> dict[str, np.ndarray]:
    """A seeded random sample (not the most striking cases) of up to `per_outcome` TP, FP and FN indices."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_pred = predict_labels(y_score, threshold)
    pools = {
        "tp": np.flatnonzero((y_true == 1) & (y_pred == 1)),
        "fp": np.flatnonzero((y_true == 0) & (y_pred == 1)),
        "fn": np.flatnonzero((y_true == 1) & (y_pred == 0)),
    }
    rng = np.random.default_rng(seed)
    return {
        outcome: np.sort(rng.choice(pool, size=min(per_outcome, pool.size), replace=False))
        for outcome, pool in pools.items()
    }


def middle_slice(array: np.ndarray) -> np.ndarray:
    """A 2D view: the array itself, or its middle slice along the first (slice) axis for 3D."""
    return array if array.ndim == 2 else array[array.shape[0] // 2]


def _unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] (flat maps become 0), keeping high = important."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1).values.view(-1, *[1] * (maps.ndim - 1))
    span = (flat.max(dim=1).values.view(-1, *[1] * (maps.ndim - 1)) - lo).clamp_min(1e-12)
    return (maps - lo) / span


def _tensor(images: np.ndarray, model: nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
