"""The training loop: epochs over in-memory tensors, validation AUC, early stopping, resumable state.

Every random draw (order, augmentation, dropout) comes from generators whose states are saved in
the per-epoch checkpoint, so a run killed anywhere and restarted repeats exactly what an
uninterrupted run would have done from its last completed epoch. Under DDP (radflow.models.distributed)
every process draws the same order, each augments its own share of a batch from its own generator,
and the checkpoint holds every process's generator states.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from radflow.config.train import TrainParams
from radflow.data.augment import BatchAugment, mixup, onto
from radflow.models import distributed
from radflow.models.checkpoint import load_checkpoint, save_atomic
from radflow.models.config import ModelConfig
from radflow.models.distributed import SINGLE, Ranks
from radflow.models.networks import build_network
from radflow.models.optim import batches, epoch_order, make_loss, make_optimizer, make_scheduler, smooth
from radflow.models.predict import predict_logits

log = logging.getLogger(__name__)

# The clock train.max_minutes is judged by (a module attribute, so a test can give epochs known lengths).
_clock = time.monotonic


@dataclass
class TrainData:
    """Training images in [0, 1] (augmented, then standardised per batch); standardised val images."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: np.ndarray


@dataclass
class FitResult:
    """The best weights (by validation AUC), per-epoch history and where the run started from."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    best_auc: float
    epochs_run: int
    resumed_from: int = 0
    seconds: float = 0.0  # time spent in epochs, restarts included (what train.max_minutes limits)
    out_of_time: bool = False  # the time budget cut its schedule short: shortened or stopped
    planned_epochs: int = 0  # the schedule it trained to: params.epochs, unless the budget shortened it


@dataclass
class _Run:
    """Everything that changes while training and must survive a restart."""

    model: torch.nn.Module  # the network itself (its state is what is saved)
    forward: torch.nn.Module  # what training calls: the network, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # sampling order: the same stream in every process
    augment_generator: torch.Generator  # augmentation: `generator` itself in one process, else per rank
    ranks: Ranks = SINGLE
    ema: torch.optim.swa_utils.AveragedModel | None = None  # train.ema_decay > 0: the weights kept
    epochs: int = 0  # the planned schedule: params.epochs, or fewer when the time budget shortened it
    epoch: int = 0
    best_auc: float = -math.inf
    best_epoch: int = 0
    wait: int = 0
    finished: bool = False
    seconds: float = 0.0  # rank 0's time in epochs (training and validation), summed over restarts
    out_of_time: bool = False  # the time budget stopped it before the end of its (planned) schedule
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


def fit(
    params: TrainParams,
    config: ModelConfig,
    data: TrainData,
    device: torch.device,
    checkpoint: Path,
    fingerprint: str,
    on_epoch: Callable[[list[dict[str, float]]], None] | None = None,
    ranks: Ranks = SINGLE,
    network: tuple[int, int] = (1, 1),
    budget_s: float | None = None,
) -> FitResult:
    """Train (or resume) until params.epochs or early stopping; checkpoint atomically after each epoch.

    With several `ranks` (DDP), call it in every process: rank 0 validates and writes the checkpoint
    and calls `on_epoch`; every rank returns the same result. Without a terminal for the progress
    bar (a log, the Prefect UI), each epoch is one log line; `network` (k of n in an ensemble) is
    named in it. `budget_s` (the time train.max_minutes leaves this network) shapes the run: when
    the first epoch shows that params.epochs would not fit, the learning-rate schedule is shortened
    to the epochs that do, so that it still completes (a schedule cut off mid-way leaves the weights
    at a high learning rate); and an epoch that would end past the budget is not started. A
    shortened run starts again when resumed with time for the full schedule; a stopped one
    continues.
    """
    torch.manual_seed(params.seed)
    data = _staged(data, device)
    run = _new_run(params, config, data, device, ranks)
    steps = len(batches(torch.arange(len(data.train_labels)), params.batch_size, ranks.world))
    saved = load_checkpoint(checkpoint, fingerprint) if params.resume else None
    if saved is not None and _full_schedule_fits_now(saved, params, budget_s):
        if ranks.main:
            log.info(
                "train: %s was shortened to %d of %d epochs by train.max_minutes; the full schedule "
                "fits the time now, so it trains again from the start",
                _which(network),
                saved["counters"]["epochs"],
                params.epochs,
            )
        saved = None
    if saved is not None:
        _restore(run, saved, params, steps)
        if run.out_of_time and not _over_budget(run, budget_s):  # more time now: carry on
            run.finished = run.out_of_time = False
        elif not run.finished and _over_budget(run, budget_s):
            run.finished = run.out_of_time = True
    resumed_from = run.epoch
    loss_fn = make_loss(params, data.train_labels).to(device)
    augment = BatchAugment(params.augment, config.spatial_dims)
    bar = tqdm(
        total=run.epochs * steps,
        initial=run.epoch * steps,
        desc="train",
        unit="step",
        disable=None if ranks.main else True,
    )
    started = _clock()
    while not run.finished:
        epoch_started = _clock()
        train_loss = _train_epoch(run, params, config, data, loss_fn, augment, device, bar)
        scores = _validate(_kept(run), config, data, device) if ranks.main else (0.0, 0.0)
        spent = _clock() - epoch_started
        # one verdict for every rank: rank 0's scores, and its clock for the time budget
        val_loss, val_auc, spent = distributed.broadcast([*scores, spent], ranks)
        run.seconds += spent
        _end_epoch(run, params, train_loss, val_loss, val_auc)
        if run.epoch == 1 and not run.finished and budget_s is not None:
            fits = _epochs_that_fit(run.seconds, budget_s)
            if fits < run.epochs:
                _shorten(run, params, steps, max(fits, 1))
                bar.total = run.epochs * steps
                if ranks.main:
                    log.warning(_shortened_line(run, params, network, budget_s))
        if not run.finished and _over_budget(run, budget_s):
            run.finished = run.out_of_time = True
            if ranks.main:
                log.warning(_out_of_time_line(run, params, network, budget_s))
        bar.set_postfix(epoch=run.epoch, val_auc=f"{val_auc:.4f}", best=f"{run.best_auc:.4f}")
        streams = distributed.all_gather(_rank_streams(run), ranks) if ranks.world > 1 else None
        if ranks.main:
            save_atomic(_state(run, fingerprint, streams), checkpoint)
            if on_epoch is not None:
                on_epoch(run.history)
            if bar.disable:
                log.info(_epoch_line(run, params, network, _clock() - started, resumed_from, budget_s))
    bar.close()
    best_epoch, best_auc = run.best_epoch, run.best_auc
    if params.select == "last":  # the weights are the last epoch's: report that epoch's figures
        best_epoch, best_auc = run.epoch, run.history[-1]["val_auc"]
    return FitResult(
        run.best_state,
        run.history,
        best_epoch,
        best_auc,
        run.epoch,
        resumed_from,
        run.seconds,
        run.out_of_time or run.epochs < params.epochs,
        run.epochs,
    )


def _epochs_that_fit(seconds_per_epoch: float, budget_s: float) -> int:
    """Whole epochs of this length that end within the budget."""
    return int(budget_s // seconds_per_epoch) if seconds_per_epoch > 0 else 1 << 30


def _full_schedule_fits_now(saved: dict[str, Any], params: TrainParams, budget_s: float | None) -> bool:
    """Whether a checkpoint whose schedule the budget shortened has time for the full one now."""
    counters = saved["counters"]
    planned, epoch = counters.get("epochs", params.epochs), counters["epoch"]
    if planned >= params.epochs or epoch == 0:
        return False
    return budget_s is None or _epochs_that_fit(counters["seconds"] / epoch, budget_s) >= params.epochs


def _shorten(run: _Run, params: TrainParams, steps: int, epochs: int) -> None:
    """Re-plan the learning-rate schedule over `epochs`, continuing from the steps already taken.

    Ends the run when the epochs already trained are all that fit.
    """
    run.epochs = epochs
    if run.epoch >= epochs:
        run.finished = True
        return
    run.scheduler = make_scheduler(run.optimizer, params, steps, epochs, step=run.epoch * steps)


def _which(network: tuple[int, int]) -> str:
    return f"network {network[0]} of {network[1]}" if network[1] > 1 else "training"


def _limit(budget_s: float | None, network: tuple[int, int]) -> str:
    """'the 840 s that train.max_minutes leaves' (+ ' this network' in an ensemble)."""
    mine = " this network" if network[1] > 1 else ""
    return f"the {budget_s or 0:.0f} s that train.max_minutes leaves{mine}"


def _shortened_line(run: _Run, params: TrainParams, network: tuple[int, int], budget_s: float) -> str:
    """The warning when train.max_minutes shortens the schedule."""
    end = (
        "the learning-rate schedule is shortened to match, so that it completes"
        if run.epoch < run.epochs
        else "training ends after it"
    )
    return (
        f"train: {_which(network)}: an epoch takes ~{run.seconds / run.epoch:.0f} s, so "
        f"{_limit(budget_s, network)} hold {run.epochs} of train.epochs = {params.epochs}; {end}. "
        f"Raise train.max_minutes to train the full schedule (the network then trains again from the start)."
    )


def _over_budget(run: _Run, budget_s: float | None) -> bool:
    """Whether one more epoch, as long as this network's mean epoch so far, would end past the budget."""
    if budget_s is None or run.epoch == 0:
        return False
    return run.seconds + run.seconds / run.epoch > budget_s


def _out_of_time_line(
    run: _Run, params: TrainParams, network: tuple[int, int], budget_s: float | None
) -> str:
    """The warning when train.max_minutes ends training before the end of its schedule."""
    kept = (
        "last epoch's weights" if params.select == "last" else f"best weights so far (epoch {run.best_epoch})"
    )
    return (
        f"train: {_which(network)} stops after epoch {run.epoch} of {run.epochs}: another epoch "
        f"(~{run.seconds / run.epoch:.0f} s) would pass {_limit(budget_s, network)}; the {kept} are kept. "
        f"Raise train.max_minutes to continue from the checkpoint."
    )


def _epoch_line(
    run: _Run,
    params: TrainParams,
    network: tuple[int, int],
    seconds: float,
    resumed_from: int,
    budget_s: float | None = None,
) -> str:
    """One epoch for a log: 'train: epoch 4/20 done: ...' (flows/artifacts.py reads the counts)."""
    last = run.history[-1]
    of = f" (network {network[0]} of {network[1]})" if network[1] > 1 else ""
    per_epoch = seconds / max(1, run.epoch - resumed_from)
    left_s = per_epoch * (run.epochs - run.epoch)
    if budget_s is not None:
        left_s = min(left_s, max(0.0, budget_s - run.seconds))
    left = "stopping" if run.finished else f"at most {left_s:.0f} s left"
    return (
        f"train: epoch {run.epoch}/{run.epochs}{of} done: train loss {last['train_loss']:.4f}, "
        f"val loss {last['val_loss']:.4f}, val AUC {last['val_auc']:.4f} (best {run.best_auc:.4f} at "
        f"epoch {run.best_epoch}); {per_epoch:.1f} s per epoch, {left}"
    )


def _new_run(
    params: TrainParams, config: ModelConfig, data: TrainData, device: torch.device, ranks: Ranks
) -> _Run:
    model = build_network(config).to(device)
    forward = model
    if ranks.world > 1:
        if device.type == "cuda":  # batch statistics over the whole batch, not one GPU's share
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        # DDP gave every rank rank 0's weights; dropout now draws per rank, not the same masks
        torch.manual_seed(params.seed + 104729 * (ranks.rank + 1))
    optimizer = make_optimizer(model, params)
    steps = len(batches(torch.arange(len(data.train_labels)), params.batch_size, ranks.world))
    use_amp = params.amp and device.type == "cuda"
    ema = None
    if params.ema_decay > 0:  # batch-norm statistics are averaged too (use_buffers)
        average = torch.optim.swa_utils.get_ema_multi_avg_fn(params.ema_decay)
        ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=average, use_buffers=True)
    generator = torch.Generator().manual_seed(params.seed)
    return _Run(
        epochs=params.epochs,
        model=model,
        forward=forward,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, params, steps),
        scaler=torch.amp.GradScaler(device.type, enabled=use_amp),
        generator=generator,
        augment_generator=generator
        if ranks.world == 1
        else torch.Generator().manual_seed(params.seed + 7919 * (ranks.rank + 1)),
        ranks=ranks,
        ema=ema,
    )


# Training and validation images are copied to the GPU once when they take at most this share of its
# free memory (MedMNIST's largest, 28³ volumes, is 100 MB); a batch is then an index on the GPU. Larger
# sets stay in pinned host memory and each batch travels without stopping the host.
DEVICE_SHARE = 0.25


def _staged(data: TrainData, device: torch.device) -> TrainData:
    """`data` where a CUDA step reads it without waiting for a copy: on the GPU, or pinned."""
    if device.type != "cuda":
        return data
    tensors = (data.train_images, data.train_labels, data.val_images)
    size = sum(t.element_size() * t.nelement() for t in tensors)
    free, _ = torch.cuda.mem_get_info(device)
    if size <= DEVICE_SHARE * free:
        moved = [t.to(device) for t in tensors]
    else:
        moved = [t.pin_memory() for t in tensors]
    return TrainData(moved[0], moved[1], moved[2], data.val_labels)


def _kept(run: _Run) -> torch.nn.Module:
    """The network that is validated and kept: the weights' moving average when there is one."""
    return run.ema.module if run.ema is not None else run.model


def _train_epoch(
    run: _Run,
    params: TrainParams,
    config: ModelConfig,
    data: TrainData,
    loss_fn: torch.nn.Module,
    augment: BatchAugment,
    device: torch.device,
    bar: tqdm,
) -> float:
    """One pass over the training set; returns the mean training loss."""
    run.model.train()
    # the loss is summed on the device: reading it every step would make the host wait for the GPU
    total, count = torch.zeros((), device=device), 0
    mean, std = float(config.mean), float(config.std)
    rank, world = run.ranks.rank, run.ranks.world
    order = epoch_order(data.train_labels.cpu(), params, run.generator).to(data.train_images.device)
    for batch in batches(order, params.batch_size, world):
        idx = batch[rank::world]  # this process's share of the batch (all of it in one process)
        images = augment(onto(data.train_images[idx], device), run.augment_generator)
        images = (images - mean) / std
        targets = smooth(onto(data.train_labels[idx], device), params.label_smoothing)
        images, targets = mixup(images, targets, params.augment.mixup_alpha, run.augment_generator)
        with torch.autocast(device.type, dtype=torch.float16, enabled=run.scaler.is_enabled()):
            loss = loss_fn(run.forward(images).reshape(-1).float(), targets)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        total, count = total + loss.detach() * len(idx), count + len(idx)
        bar.update(1)
    loss_sum, samples = distributed.sum_across([float(total), count], run.ranks, device)
    return loss_sum / max(samples, 1)


def _validate(
    model: torch.nn.Module, config: ModelConfig, data: TrainData, device: torch.device
) -> tuple[float, float]:
    """Unweighted BCE and ROC AUC on the validation split (NaN AUC when it holds one class)."""
    logits = predict_logits(model, data.val_images, flip_dims=config.tta_flip_dims)
    targets = torch.tensor(np.asarray(data.val_labels), dtype=torch.float32)
    loss = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, targets))
    if len(np.unique(data.val_labels)) < 2:
        return loss, float("nan")
    return loss, float(roc_auc_score(data.val_labels, logits.numpy()))


def _end_epoch(run: _Run, params: TrainParams, train_loss: float, val_loss: float, val_auc: float) -> None:
    """Record history, keep the best weights, count epochs without improvement, decide to stop."""
    run.epoch += 1
    lr = run.optimizer.param_groups[0]["lr"]
    run.history.append(
        {"epoch": run.epoch, "train_loss": train_loss, "val_loss": val_loss, "val_auc": val_auc, "lr": lr}
    )
    # with one class in val there is no AUC: the lowest validation loss decides instead
    score = val_auc if not math.isnan(val_auc) else -val_loss
    if score > run.best_auc or not run.best_state:
        run.best_auc, run.best_epoch, run.wait = score, run.epoch, 0
        run.best_state = _weights(_kept(run))
    else:
        run.wait += 1
    stop_early = run.wait >= params.patience and run.epoch >= params.min_epochs
    run.finished = run.epoch >= run.epochs or stop_early
    if params.select == "last" and run.best_epoch != run.epoch:
        run.best_state = _weights(_kept(run))


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def _rank_streams(run: _Run) -> dict[str, Any]:
    """This process's own random streams (augmentation, dropout), for a DDP checkpoint."""
    return {
        "augment": run.augment_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
    }


_COUNTERS = ("epochs", "epoch", "best_auc", "best_epoch", "wait", "finished", "seconds", "out_of_time")


def _state(run: _Run, fingerprint: str, streams: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The checkpoint: weights, optimiser, schedule, scaler, RNG states, counters and the fingerprint.

    `streams`: under DDP, every rank's own random streams, in rank order.
    """
    return {
        "fingerprint": fingerprint,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "generator": run.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "counters": {k: getattr(run, k) for k in _COUNTERS},
        "best_state": run.best_state,
        "history": run.history,
        "rank_streams": streams,
    }


def _restore(run: _Run, saved: dict[str, Any], params: TrainParams, steps: int) -> None:
    """Put a checkpoint's state back into a freshly built run."""
    run.model.load_state_dict(saved["model"])
    planned = saved["counters"].get("epochs", params.epochs)
    if planned != run.epochs:  # a shortened schedule; built before the optimiser's state (its rates) loads
        run.scheduler = make_scheduler(run.optimizer, params, steps, planned)
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    run.scaler.load_state_dict(saved["scaler"])
    if run.ema is not None:
        run.ema.load_state_dict(saved["ema"])
    run.generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    for key, value in saved["counters"].items():
        setattr(run, key, value)
    run.best_state, run.history = saved["best_state"], saved["history"]
    streams = saved.get("rank_streams")
    if run.ranks.world > 1 and streams:  # the fingerprint holds the process count: one entry per rank
        mine = streams[run.ranks.rank]
        run.augment_generator.set_state(mine["augment"])
        torch.set_rng_state(mine["torch_rng"])
        if mine["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(mine["cuda_rng"])
