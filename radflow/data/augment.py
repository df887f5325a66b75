"""Training augmentation drawn per sample but applied to a whole batch at once.

Per-sample MONAI dictionary transforms cost far more than a small network's step at 28-64 px, so
random flips, rotations, zooms and shifts are composed into one affine matrix per sample and
resampled in one batched torch grid_sample call (MONAI's AffineTransform layer does the same but
measured 8x slower here, as it re-normalises coordinates every call); noise and contrast are tensor ops.
The sampling grid is built axis by axis (`affine_grid` below), 3-5x faster than torch's own
`F.affine_grid` on CPU, which multiplies a full coordinate grid by each matrix.
Every draw comes from the caller's torch.Generator, so a resumed run repeats the same batches. On
a GPU the per-sample draws are made on the host, as on a CPU, and reach the GPU through pinned
memory without the host waiting (a plain copy stops the host until the GPU has caught up, so the
GPU would idle while the host prepared the next batch); the noise itself is drawn on the GPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from radflow.config.train import AugmentParams


class BatchAugment:
    """Random affine (flip, rotate, zoom, shift), contrast and Gaussian noise for (B, C, *spatial) batches."""

    def __init__(self, params: AugmentParams, spatial_dims: int) -> None:
        self.params = params
        self.spatial_dims = spatial_dims

    @property
    def is_identity(self) -> bool:
        """True when no augmentation is configured."""
        p = self.params
        return not (p.flip_axes or p.rotate_deg or p.scale or p.translate or p.noise_std or p.contrast)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented copy of `images` (values in [0, 1] before standardisation)."""
        if self.is_identity:
            return images
        n, p = images.shape[0], self.params
        chosen = torch.rand(n, generator=generator) < p.probability
        theta = onto(self._theta(n, chosen, generator), images.device)
        grid = affine_grid(theta, tuple(images.shape[2:]))
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if p.contrast:
            factor = 1 + p.contrast * (2 * torch.rand(n, generator=generator) - 1)
            factor = onto(torch.where(chosen, factor, torch.ones(n)), images.device)
            factor = factor.view(-1, *[1] * (images.ndim - 1))
            mean = out.mean(dim=tuple(range(1, images.ndim)), keepdim=True)
            out = mean + (out - mean) * factor
        if p.noise_std:
            out = out + self._noise(images, chosen, generator)
        return out

    def _noise(self, images: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Gaussian noise for the chosen samples. On a GPU it is drawn there, from a generator seeded by
        one host draw (a resumed run repeats it): drawn on the host it cost more than the step itself."""
        per_sample = (self.params.noise_std * chosen).view(-1, *[1] * (images.ndim - 1))
        if images.device.type == "cpu":
            return torch.randn(images.shape, generator=generator) * per_sample
        return normal_on(images.device, images.shape, generator) * onto(per_sample, images.device)

    def _theta(self, n: int, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(n, d, d + 1) matrices in normalised array-axis coordinates."""
        d, p = self.spatial_dims, self.params
        matrix = torch.eye(d).repeat(n, 1, 1)
        for axis in p.flip_axes:
            sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
            matrix[:, axis, :] *= sign.view(-1, 1)
        if p.rotate_deg:
            matrix = _rotations(n, d, math.radians(p.rotate_deg), chosen, generator) @ matrix
        if p.scale:
            zoom = 1 + p.scale * (2 * torch.rand(n, generator=generator) - 1)
            matrix = matrix * torch.where(chosen, zoom, torch.ones(n)).view(-1, 1, 1)
        shift = torch.zeros(n, d, 1)
        if p.translate:
            shift = 2 * p.translate * (2 * torch.rand(n, d, 1, generator=generator) - 1)
            shift = shift * chosen.view(-1, 1, 1)
        # torch's grids index (x, y[, z]), the reverse of array axes: reverse rows and columns
        theta = torch.cat([matrix, shift], dim=2)
        order = list(reversed(range(d)))
        return theta[:, order][:, :, [*order, d]]


def normal_on(device: torch.device, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Standard normal values drawn on `device` by a generator there, seeded by one draw from the host
    `generator`: the same host state gives the same values, and the host stream advances by one."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    on_device = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(shape, generator=on_device, device=device)


def onto(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`values` on `device`; from the host to a GPU through pinned memory, so the host does not wait."""
    if device.type != "cuda" or values.is_cuda:
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)


def mixup(
    images: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample blended with a random other of the batch by a Beta(alpha, alpha) weight per sample.

    torch's Beta sampler takes no generator, so the weights come from a numpy generator seeded by a
    draw from `generator`: a resumed run repeats them.
    """
    n = images.shape[0]
    if alpha <= 0 or n < 2:
        return images, targets
    partner = onto(torch.randperm(n, generator=generator), images.device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    weight = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=n).astype(np.float32))
    weight = onto(weight, images.device)
    per_image = weight.view(-1, *[1] * (images.ndim - 1))
    mixed = per_image * images + (1 - per_image) * images[partner]
    return mixed, weight * targets + (1 - weight) * targets[partner]


def affine_grid(theta: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """`F.affine_grid(theta, (n, c, *size), align_corners=False)`, computed separably.

    Output coordinate k at voxel v is theta[k, d] + sum_j theta[k, j] * x_j(v), where x_j is torch's
    j-th normalised coordinate (x runs along the last array axis) and depends on one axis only, so
    each term is a small (n, size_axis) product broadcast into the sum instead of a full matmul.
    """
    n, d = theta.shape[0], len(size)
    axes = [
        torch.arange(s, dtype=theta.dtype, device=theta.device).mul_(2).add_(1).div_(s).sub_(1) for s in size
    ]
    components = []
    for k in range(d):
        total = theta[:, k, d].view(n, *[1] * d)
        for j in range(d):
            axis = d - 1 - j  # torch's coordinate j (x, y, z) runs along array axis d - 1 - j
            shape = [n] + [1] * d
            shape[1 + axis] = size[axis]
            total = total + (theta[:, k, j, None] * axes[axis]).view(shape)
        components.append(total)
    return torch.stack(components, dim=-1)


def _rotations(
    n: int, d: int, max_rad: float, chosen: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Random rotation matrices: one in-plane angle in 2D, one per plane in 3D."""
    planes = [(0, 1)] if d == 2 else [(0, 1), (0, 2), (1, 2)]
    result = torch.eye(d).repeat(n, 1, 1)
    for i, j in planes:
        angle = max_rad * (2 * torch.rand(n, generator=generator) - 1) * chosen
        rot = torch.eye(d).repeat(n, 1, 1)
        rot[:, i, i], rot[:, j, j] = torch.cos(angle), torch.cos(angle)
        rot[:, i, j], rot[:, j, i] = -torch.sin(angle), torch.sin(angle)
        result = rot @ result
    return result
