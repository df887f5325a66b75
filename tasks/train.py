"""Train stage: a MONAI network on the labelled clean arrays, resumable, with per-epoch history.

Writes models/model.pt (weights, config, lineage) and reports/train/history.csv; per-epoch
checkpoints in checkpoints/train/ let a killed run continue where it stopped. With train.processes
> 1 the command relaunches itself under torchrun and trains with DDP (radflow.models.distributed).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from radflow.config import TrainParams, load_section
from radflow.data.training import fingerprint, load_training_data
from radflow.errors import ConfigError, user_errors
from radflow.metrics.calibration import fit_platt
from radflow.models import distributed
from radflow.models.checkpoint import load_checkpoint, save_model
from radflow.models.config import ModelConfig
from radflow.models.distributed import SINGLE, Ranks
from radflow.models.fit import FitResult, TrainData, fit
from radflow.models.networks import build_model
from radflow.models.predict import predict_logits

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_auc", "lr"]
# Under train.max_minutes, an ensemble network after the first is trained only when at least this
# fraction of its schedule fits (shortened to fit): one with fewer epochs than that would be a
# different model from the ones the recipe was tuned with, and could weaken the average.
MIN_SCHEDULE = 0.5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where the model went and how training went."""

    model_path: Path
    history_path: Path
    device: str
    n_train: int
    n_val: int
    processes: int
    epochs_run: int
    best_epoch: int
    best_val_auc: float
    resumed_from: int
    seconds: float
    out_of_time: bool = False  # train.max_minutes shortened or stopped a network, or left one untrained
    networks: int = 1  # ensemble networks trained
    ensemble: int = 1  # ensemble networks asked for (train.ensemble)

    def describe(self) -> str:
        """One line for people."""
        resumed = f", resumed after epoch {self.resumed_from}" if self.resumed_from else ""
        if self.networks < self.ensemble:
            resumed += f", {self.networks} of {self.ensemble} networks (train.max_minutes)"
        elif self.out_of_time:
            resumed += " (cut short by train.max_minutes)"
        where = self.device if self.processes == 1 else f"{self.processes} {self.device} processes (DDP)"
        return (
            f"train: {self.n_train} train / {self.n_val} val samples on {where}, "
            f"{self.epochs_run} epochs"
            f"{resumed}, best val AUC {self.best_val_auc:.4f} at epoch {self.best_epoch} "
            f"({self.seconds:.0f} s) → {self.model_path}"
        )


def run(
    params: TrainParams,
    clean_dir: Path,
    split_path: Path,
    out_dir: Path,
    checkpoints: Path = Path("checkpoints/train"),
    reports: Path = Path("reports/train"),
) -> TrainResult:
    """Fit the network(s) on train, select by validation AUC, write model.pt and history.csv.

    Under torchrun (train.processes > 1) every process calls this; rank 0 writes the outputs.
    """
    started = time.perf_counter()
    device = _device(params)
    ranks = SINGLE
    if distributed.launched():
        ranks = distributed.start(device.type)
        if device.type == "cuda":
            device = torch.device("cuda", ranks.local)
    elif params.processes > 1:
        log.warning(
            "train.processes = %d takes the stage command (python -m tasks.train) or torchrun; "
            "training in this one process",
            params.processes,
        )
    params = params.model_copy(update={"processes": ranks.world})  # what ran: in the fingerprint
    try:
        return _run(params, clean_dir, split_path, out_dir, checkpoints, reports, device, ranks, started)
    finally:
        distributed.stop()


def _run(
    params: TrainParams,
    clean_dir: Path,
    split_path: Path,
    out_dir: Path,
    checkpoints: Path,
    reports: Path,
    device: torch.device,
    ranks: Ranks,
    started: float,
) -> TrainResult:
    """The stage proper, in one process or in each of a DDP job's."""
    if device.type == "cpu":
        # same seed, same bytes on CPU; on CUDA speed wins (cuDNN autotuning)
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
    config, data = load_training_data(clean_dir, split_path, params)
    results: list[FitResult] = []
    for member in range(params.ensemble):
        budget = _time_left(params, results)
        short = (
            budget is not None and member > 0 and budget < MIN_SCHEDULE * _network_seconds(params, results[0])
        )
        if short and not _trained(member, params, config, data, checkpoints):  # a trained one costs nothing
            if ranks.main:
                log.warning(_skipped_line(params, results, budget or 0.0))
            break
        results.append(_fit_member(member, params, config, data, device, checkpoints, reports, ranks, budget))
    skipped = params.ensemble - len(results)
    if skipped:  # the model is the networks that were trained
        config = replace(config, ensemble=len(results))
    calibration = "none"
    if ranks.main:
        state, val_auc, val_logits = _combine(results, config, data, device)
        config, calibration = _calibrate(params, config, data.val_labels, val_logits)
    else:
        state, val_auc = {}, float("nan")
    lineage = {
        "seed": params.seed,
        "ensemble": len(results),
        "processes": ranks.world,
        "epochs_run": sum(r.epochs_run for r in results),
        "epochs_planned": _each([r.planned_epochs for r in results]),
        "best_epoch": _each([r.best_epoch for r in results]),
        "best_val_auc": val_auc,
        "n_train": len(data.train_labels),
        "n_val": len(data.val_labels),
        "max_minutes": params.max_minutes,
        "out_of_time": _each([r.out_of_time for r in results]),
        "networks_skipped": skipped,
        "calibration": calibration,
    }
    model_path = out_dir / "model.pt"
    if ranks.main:
        save_model(model_path, state, config, lineage)
    return TrainResult(
        model_path,
        reports / "history.csv",
        device.type,
        len(data.train_labels),
        len(data.val_labels),
        ranks.world,
        results[0].epochs_run,
        results[0].best_epoch,
        val_auc,
        results[0].resumed_from,
        time.perf_counter() - started,
        any(r.out_of_time for r in results) or skipped > 0,
        len(results),
        params.ensemble,
    )


def _each(values: list[Any]) -> Any:
    """One network's value, or every network's."""
    return values[0] if len(values) == 1 else values


def _time_left(params: TrainParams, done: list[FitResult]) -> float | None:
    """What train.max_minutes leaves the next network, in seconds (None: no limit).

    Networks are trained one after another, each to its full schedule while the time lasts, or to a
    shortened one when only part fits (fit re-plans it after its first epoch); a network after the
    first is left out when less than MIN_SCHEDULE of its schedule fits. A member whose schedule
    completes is worth more than several cut off at a high learning rate, which is what equal
    shares of too little time gave.
    """
    if params.max_minutes is None:
        return None
    return max(0.0, params.max_minutes * 60 - sum(r.seconds for r in done))


def _network_seconds(params: TrainParams, first: FitResult) -> float:
    """A whole network's expected time: train.epochs at the first network's mean epoch time."""
    return first.seconds / max(first.epochs_run, 1) * params.epochs


def _skipped_line(params: TrainParams, done: list[FitResult], left_s: float) -> str:
    """The warning when train.max_minutes leaves no time for the rest of the ensemble."""
    first, n = len(done) + 1, params.ensemble
    which = f"network {n} of {n} is" if first == n else f"networks {first}-{n} of {n} are"
    kept = "the first network alone" if len(done) == 1 else f"the average of the {len(done)} trained"
    return (
        f"train: {which} not trained: a network takes ~{_network_seconds(params, done[0]):.0f} s "
        f"({params.epochs} epochs) and train.max_minutes = {params.max_minutes:g} leaves {left_s:.0f} s, "
        f"under {MIN_SCHEDULE:.0%} of that; the model is {kept}. Raise train.max_minutes to train all {n}."
    )


def _fit_member(
    member: int,
    params: TrainParams,
    config: ModelConfig,
    data: TrainData,
    device: torch.device,
    checkpoints: Path,
    reports: Path,
    ranks: Ranks = SINGLE,
    budget_s: float | None = None,
) -> FitResult:
    """Train ensemble member `member` from seed params.seed + member, with its own checkpoint and history."""
    member_params, checkpoint, history = _member_files(member, params, checkpoints, reports)
    result = fit(
        member_params,
        config,
        data,
        device,
        checkpoint,
        fingerprint(member_params, config, data),
        lambda h: write_history(h, history),
        ranks,
        (member + 1, params.ensemble),
        budget_s,
    )
    if ranks.main:
        write_history(result.history, history)
    return result


def _member_files(
    member: int, params: TrainParams, checkpoints: Path, reports: Path = Path()
) -> tuple[TrainParams, Path, Path]:
    """Ensemble member `member`'s params (seed params.seed + member), checkpoint and history file."""
    name = "" if member == 0 else f"_member{member}"
    checkpoint = checkpoints / ("last.pt" if member == 0 else f"last{name}.pt")
    return (
        params.model_copy(update={"seed": params.seed + member}),
        checkpoint,
        reports / f"history{name}.csv",
    )


def _trained(
    member: int, params: TrainParams, config: ModelConfig, data: TrainData, checkpoints: Path
) -> bool:
    """Whether member `member` has a finished checkpoint of these params and data (fit would only load it)."""
    member_params, checkpoint, _ = _member_files(member, params, checkpoints)
    saved = load_checkpoint(checkpoint, fingerprint(member_params, config, data)) if params.resume else None
    return bool(saved and saved["counters"]["finished"])


def _combine(
    results: list[FitResult], config: ModelConfig, data: TrainData, device: torch.device
) -> tuple[dict[str, torch.Tensor], float, np.ndarray]:
    """The saved state dict (one network, or the ensemble's members), its validation AUC and logits."""
    if len(results) == 1:
        state = results[0].state_dict
    else:
        state = {f"members.{m}.{k}": v for m, r in enumerate(results) for k, v in r.state_dict.items()}
    model = build_model(config).to(device)
    model.load_state_dict(state)
    logits = predict_logits(model, data.val_images, flip_dims=config.tta_flip_dims).numpy()
    if len(results) == 1:
        return state, results[0].best_auc, logits
    if len(np.unique(data.val_labels)) < 2:
        return state, float("nan"), logits
    return state, float(roc_auc_score(data.val_labels, logits)), logits


def _calibrate(
    params: TrainParams, config: ModelConfig, val_labels: np.ndarray, val_logits: np.ndarray
) -> tuple[ModelConfig, str]:
    """The config with train.calibration's Platt scaling fitted to the validation logits, and its name."""
    if params.calibration == "none":
        return config, "none"
    platt = fit_platt(val_labels, val_logits)
    if platt is None:
        log.warning(
            "train: probabilities left uncalibrated: Platt scaling on the %d val samples found no "
            "rising map from the network's score to the label (one label only, or scores that do not "
            "rise with it there); check the split and the validation AUC, or set train.calibration: none.",
            len(val_labels),
        )
        return config, "none"
    log.info(
        "train: probabilities Platt-scaled on %d val samples: sigmoid(%.4g * logit %+.4g)",
        len(val_labels),
        platt.scale,
        platt.shift,
    )
    return replace(config, calibration=(platt.scale, platt.shift)), "platt"


def _device(params: TrainParams) -> torch.device:
    if params.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device is 'cuda' but no CUDA GPU is available; set train.device to auto or cpu."
        )
    if params.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(params.device)


def write_history(rows: list[dict[str, float]], path: Path) -> None:
    """reports/train/history.csv (the DVC plot), rewritten whole and atomically each epoch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows({k: row[k] for k in HISTORY_COLUMNS} for row in rows)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    """DVC entry point: python -m tasks.train --clean C --split S --out models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="The clean stage's output folder.")
    parser.add_argument("--split", type=Path, required=True, help="split.parquet from the split stage.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for model.pt.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml to read.")
    parser.add_argument(
        "--checkpoints", type=Path, default=Path("checkpoints/train"), help="Resumable checkpoints."
    )
    parser.add_argument("--reports", type=Path, default=Path("reports/train"), help="Folder for history.csv.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with user_errors():
        params = load_section("train", TrainParams, args.params)
        processes = distributed.processes_wanted(params.processes, params.device)
        if processes > 1 and not distributed.launched():
            distributed.relaunch_under_torchrun(
                processes, "tasks.train", sys.argv[1:] if argv is None else list(argv)
            )
        result = run(
            params.model_copy(update={"processes": processes}),
            args.clean,
            args.split,
            args.out,
            args.checkpoints,
            args.reports,
        )
    if not distributed.launched() or os.environ.get("RANK") == "0":
        print(result.describe())


if __name__ == "__main__":
    main()
