"""Batched augmentation: flips land on the named array axis, draws are reproducible, identity is free."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from radflow.config.train import AugmentParams
from radflow.data.augment import BatchAugment, affine_grid, mixup, normal_on


def test_flip_axis_zero_flips_rows_in_2d_and_slices_in_3d() -> None:
    for dims in (2, 3):
        images = torch.zeros(16, 1, *[6] * dims)
        images[:, :, 0] = 1.0
        out = BatchAugment(AugmentParams(flip_axes=[0], probability=1.0), dims)(
            images, torch.Generator().manual_seed(0)
        )
        first, last = out[:, 0, 0].flatten(1).mean(1), out[:, 0, -1].flatten(1).mean(1)
        flipped = last > 0.99
        assert torch.all(flipped ^ (first > 0.99)) and 0 < int(flipped.sum()) < 16


def test_same_generator_state_gives_same_batch() -> None:
    params = AugmentParams(
        flip_axes=[1], rotate_deg=15, scale=0.1, translate=0.1, noise_std=0.05, contrast=0.2
    )
    images = torch.rand(8, 1, 12, 12)
    augment = BatchAugment(params, 2)
    a = augment(images, torch.Generator().manual_seed(5))
    b = augment(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.allclose(a, images)


def test_no_augmentation_returns_the_input() -> None:
    images = torch.rand(4, 1, 8, 8, 8)
    assert BatchAugment(AugmentParams(), 3)(images, torch.Generator()) is images


@pytest.mark.parametrize("shape", [(5, 1, 7, 9), (3, 2, 4, 6, 5)])
def test_the_separable_grid_equals_torch_affine_grid(shape: tuple[int, ...]) -> None:
    theta = torch.randn(shape[0], len(shape) - 2, len(shape) - 1, generator=torch.Generator().manual_seed(1))
    expected = F.affine_grid(theta, list(shape), align_corners=False)
    torch.testing.assert_close(affine_grid(theta, shape[2:]), expected, rtol=1e-5, atol=1e-6)


def test_mixup_blends_images_and_targets_by_the_same_weights() -> None:
    # one-hot images make every output pixel say how much of which sample it holds
    n = 6
    images = torch.eye(n).view(n, 1, 1, n)
    targets = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    mixed, mixed_targets = mixup(images, targets, 0.4, torch.Generator().manual_seed(3))
    shares = mixed.view(n, n)
    assert torch.allclose(shares.sum(dim=1), torch.ones(n))  # convex blends of two samples
    assert torch.allclose(mixed_targets, shares @ targets)
    assert (shares > 1e-6).sum(dim=1).max() <= 2
    assert not torch.equal(mixed, images)  # Beta(0.4, 0.4) weights are almost never exactly 1


def test_mixup_repeats_from_the_same_generator_state_and_is_off_at_zero() -> None:
    images, targets = torch.rand(8, 1, 5, 5), torch.rand(8)
    a = mixup(images, targets, 0.2, torch.Generator().manual_seed(1))
    b = mixup(images, targets, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    generator = torch.Generator().manual_seed(1)
    state = generator.get_state()
    off = mixup(images, targets, 0.0, generator)
    assert off[0] is images and off[1] is targets
    assert torch.equal(generator.get_state(), state)  # off draws nothing: old runs stay bit-identical


def test_noise_drawn_on_a_device_repeats_from_the_host_state_and_advances_it_by_one_draw() -> None:
    """The GPU's noise path (BatchAugment on CUDA), run here on the CPU device: a resumed run, whose
    host generator is restored, must draw the same noise, and the host stream must move on."""
    shape = torch.Size((64, 1, 8, 8))
    host = torch.Generator().manual_seed(5)
    state = host.get_state()
    first = normal_on(torch.device("cpu"), shape, host)
    one_draw = torch.Generator().manual_seed(5)
    torch.randint(0, 2**62, (1,), generator=one_draw)
    assert torch.equal(torch.rand(1, generator=host), torch.rand(1, generator=one_draw))
    host.set_state(state)
    assert torch.equal(normal_on(torch.device("cpu"), shape, host), first)
    second = normal_on(torch.device("cpu"), shape, host)
    assert not torch.equal(first, second)
    assert abs(float(first.mean())) < 0.1 and abs(float(first.std()) - 1) < 0.1
