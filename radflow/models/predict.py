"""Probabilities from a trained model, batch by batch, optionally averaged over test-time flips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from radflow.metrics.calibration import Platt


def predict_logits(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256, flip_dims: Sequence[int] = ()
) -> torch.Tensor:
    """Logits (N,) on CPU; with flip_dims, the mean logit over the image and each single-axis flip."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            views = [batch, *(torch.flip(batch, dims=(d + 2,)) for d in flip_dims)]
            logits = torch.stack([model(v).float().reshape(-1) for v in views]).mean(dim=0)
            out.append(logits.cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def predict_proba(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    flip_dims: Sequence[int] | None = None,
    calibrated: bool = True,
) -> np.ndarray:
    """P(label = 1) per sample (N,) for preprocessed images (N, C, *spatial) from load_split_arrays.

    flip_dims defaults to the test-time flips the model was trained to use, and the probabilities
    are the model's calibrated ones (its Platt scaling; `calibrated=False`: the raw sigmoid), both
    as load_model set them.
    """
    if flip_dims is None:
        flip_dims = tuple(getattr(model, "radflow_tta_flip_dims", ()))
    logits = predict_logits(model, torch.as_tensor(images, dtype=torch.float32), batch_size, flip_dims)
    scale, shift = getattr(model, "radflow_calibration", (1.0, 0.0)) if calibrated else (1.0, 0.0)
    return Platt(scale, shift).apply(logits.numpy())
