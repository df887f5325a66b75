"""Optimiser, learning-rate schedule, loss and sampling order built from TrainParams."""

from __future__ import annotations

import math

import torch

from radflow.config.train import TrainParams


def make_optimizer(model: torch.nn.Module, params: TrainParams) -> torch.optim.Optimizer:
    """AdamW; weight decay spares biases and normalisation scales, which it only harms.

    On a GPU the fused AdamW: one kernel for all parameters, and under a GradScaler it skips a step
    with infinite gradients on the GPU itself, where the unfused one reads a flag back every step
    and so stops the host until the GPU has finished the batch.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": params.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=params.learning_rate, fused=fused or None)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    params: TrainParams,
    steps_per_epoch: int,
    epochs: int | None = None,
    step: int = 0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch over the planned run: params.epochs, or the `epochs` a time budget
    leaves (early stopping may end it sooner). `step` > 0 starts it there, with the rate of that step
    (PyTorch's own `last_epoch`, which needs the optimiser to have had a scheduler before)."""
    total = max(1, (params.epochs if epochs is None else epochs) * steps_per_epoch)
    if params.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=params.learning_rate,
            total_steps=total,
            pct_start=max(params.warmup_fraction, 1e-3),
            last_epoch=step - 1,
        )
    if params.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / total)), last_epoch=step - 1
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0, last_epoch=step - 1)


def make_loss(params: TrainParams, train_labels: torch.Tensor) -> torch.nn.Module:
    """BCE with logits; pos_weight = negatives / positives when class_balance is pos_weight."""
    if params.class_balance != "pos_weight":
        return torch.nn.BCEWithLogitsLoss()
    positives = float(train_labels.sum())
    negatives = float(len(train_labels)) - positives
    weight = negatives / positives if positives and negatives else 1.0
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))


def smooth(targets: torch.Tensor, amount: float) -> torch.Tensor:
    """Targets pulled towards 0.5: overconfident logits on 28-px images overfit quickly."""
    return targets * (1 - amount) + 0.5 * amount


def epoch_order(labels: torch.Tensor, params: TrainParams, generator: torch.Generator) -> torch.Tensor:
    """Sample indices for one epoch: a permutation, or a class-balanced draw with replacement."""
    n = len(labels)
    if params.class_balance != "sampler":
        return torch.randperm(n, generator=generator)
    positives = labels.sum()
    per_class = torch.where(labels > 0.5, 1.0 / positives.clamp(min=1), 1.0 / (n - positives).clamp(min=1))
    return torch.multinomial(per_class, n, replacement=True, generator=generator)


def batches(order: torch.Tensor, batch_size: int, shards: int = 1) -> list[torch.Tensor]:
    """Index batches; a trailing batch too small to give each of `shards` processes two samples is
    dropped (batch norm cannot train on one)."""
    chunks = list(torch.split(order, batch_size))
    return [c for c in chunks if len(c) >= 2 * shards] or chunks
