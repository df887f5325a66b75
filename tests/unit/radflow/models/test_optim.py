"""Loss weighting, label smoothing, sampling order and learning-rate schedules."""

from __future__ import annotations

import pytest
import torch

from radflow.config.train import TrainParams
from radflow.models.optim import batches, epoch_order, make_loss, make_optimizer, make_scheduler, smooth


def test_pos_weight_is_negatives_over_positives() -> None:
    loss = make_loss(TrainParams(class_balance="pos_weight"), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert float(loss.pos_weight) == pytest.approx(3.0)
    assert make_loss(TrainParams(class_balance="none"), torch.ones(3)).pos_weight is None


def test_sampler_balances_classes() -> None:
    labels = torch.tensor([1.0] * 10 + [0.0] * 90)
    order = epoch_order(labels, TrainParams(class_balance="sampler"), torch.Generator().manual_seed(0))
    assert len(order) == 100 and 0.35 < float(labels[order].mean()) < 0.65
    perm = epoch_order(labels, TrainParams(class_balance="none"), torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(100))


def test_smoothing_and_batches() -> None:
    assert smooth(torch.tensor([0.0, 1.0]), 0.1).tolist() == pytest.approx([0.05, 0.95])
    assert [len(b) for b in batches(torch.arange(9), 4)] == [4, 4]
    assert [len(b) for b in batches(torch.arange(10), 4)] == [4, 4, 2]
    # two DDP processes: a trailing batch of 2 would leave each one sample for batch norm
    assert [len(b) for b in batches(torch.arange(10), 4, shards=2)] == [4, 4]


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_schedules_end_near_zero(schedule: str) -> None:
    params = TrainParams(schedule=schedule, epochs=2, learning_rate=0.1)
    model = torch.nn.Linear(2, 1)
    optimizer = make_optimizer(model, params)
    scheduler = make_scheduler(optimizer, params, steps_per_epoch=50)
    rates = []
    for _ in range(100):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert max(rates) <= 0.1 + 1e-9 and rates[-1] < 0.01
    assert optimizer.param_groups[1]["weight_decay"] == 0.0  # biases are not decayed
