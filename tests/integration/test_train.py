"""The train stage on a small clean output: outputs, the evaluate API, and SIGKILL-safe resumption."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cleandata import write_clean_dir
from sklearn.metrics import roc_auc_score

from radflow.config import SplitParams, TrainParams
from radflow.data.dataset import ROW_COLUMNS, load_split_arrays
from radflow.models.checkpoint import load_model
from radflow.models.optim import batches
from radflow.models.predict import predict_proba
from tasks import split as split_stage
from tasks.train import HISTORY_COLUMNS, run

ROOT = Path(__file__).resolve().parents[2]
AUGMENT = {
    "flip_axes": [1],
    "rotate_deg": 10,
    "scale": 0.1,
    "translate": 0.05,
    "noise_std": 0.02,
    "contrast": 0.1,
}


def _split(tmp_path: Path, **kwargs: object) -> tuple[Path, Path]:
    clean, labels = write_clean_dir(tmp_path, **kwargs)  # type: ignore[arg-type]
    result = split_stage.run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "split")
    return clean, result.path


def test_train_writes_model_history_and_serves_evaluation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from flows.artifacts import stage_fraction

    caplog.set_level(logging.INFO, logger="radflow.models.fit")
    clean, split = _split(tmp_path, patients=36, studies_per_patient=2, size=16)
    params = TrainParams(
        modalities=["CR"],
        spatial_size=[16, 16],
        network="small_cnn",
        width=8,
        epochs=4,
        batch_size=16,
        learning_rate=0.01,
        augment=AUGMENT,
        tta_flip=True,
        device="cpu",  # type: ignore[arg-type]
    )
    result = run(params, clean, split, tmp_path / "models", tmp_path / "ck", tmp_path / "reports")
    history = pd.read_csv(result.history_path)
    assert list(history.columns) == HISTORY_COLUMNS and history["epoch"].tolist() == [1, 2, 3, 4]
    assert result.best_val_auc == history["val_auc"].max() and result.n_train == 24
    # no terminal here: one log line per epoch, which the flow's progress artifact reads
    lines = [r.getMessage() for r in caplog.records if r.name == "radflow.models.fit"]
    assert [stage_fraction(line) for line in lines] == [(k / 4, f"epoch {k}/4") for k in (1, 2, 3, 4)]
    model, config = load_model(result.model_path)
    assert config.spatial_size == (16, 16) and config.tta_flip_dims == (1,) and 0.2 < config.mean < 0.6
    images, labels, rows = load_split_arrays(clean, split, config, "test")
    assert images.shape == (24, 1, 16, 16) and labels.shape == (24,) and list(rows.columns) == ROW_COLUMNS
    proba = predict_proba(model, images)
    assert proba.shape == (24,) and np.all((proba >= 0) & (proba <= 1))
    assert proba[labels == 1].mean() > proba[labels == 0].mean()  # the blob is learnable


def test_train_3d_volumes(tmp_path: Path) -> None:
    clean, split = _split(tmp_path, patients=24, studies_per_patient=1, size=12, volumes=True, seed=1)
    params = TrainParams(
        modalities=["CT"],
        spatial_size=[8, 8, 8],
        ct_window=[-1000, 500],
        network="resnet10",
        width=4,
        epochs=2,
        batch_size=4,
        augment={"flip_axes": [0, 2], "rotate_deg": 10},
        device="cpu",  # type: ignore[arg-type]
    )
    result = run(params, clean, split, tmp_path / "models", tmp_path / "ck", tmp_path / "reports")
    model, config = load_model(result.model_path)
    assert config.spatial_dims == 3 and result.epochs_run == 2
    images, _, _ = load_split_arrays(clean, split, config, "val")
    assert predict_proba(model, images).shape == (8,)


def test_checkpoint_from_other_params_is_not_resumed(tmp_path: Path) -> None:
    clean, split = _split(tmp_path, patients=24, studies_per_patient=1, size=8, seed=1)
    base = {"modalities": ["CR"], "spatial_size": [8, 8], "width": 4, "batch_size": 4, "device": "cpu"}
    first = run(TrainParams(**base, epochs=2), clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    again = run(TrainParams(**base, epochs=2), clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    other = run(
        TrainParams(**base, epochs=2, seed=1), clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r"
    )
    assert first.resumed_from == 0 and again.resumed_from == 2 and other.resumed_from == 0


def _train_cmd(tmp_path: Path, clean: Path, split: Path, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tasks.train",
        "--clean",
        str(clean),
        "--split",
        str(split),
        "--out",
        str(tmp_path / name / "models"),
        "--params",
        str(tmp_path / "params.yaml"),
        "--checkpoints",
        str(tmp_path / name / "ck"),
        "--reports",
        str(tmp_path / name / "reports"),
    ]


def _workers_of(folder: Path) -> list[int]:
    """Live processes (DDP workers included) whose command line names `folder` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # not a process, or it ended while being read
            continue
        if str(folder).encode() in cmdline and state != "Z":  # a zombie has exited already
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2], ids=["one_process", "ddp_two_processes"])
def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path: Path, processes: int) -> None:
    """One process, or DDP on two CPU processes under torchrun (the stage relaunches itself)."""
    clean, split = _split(tmp_path, patients=150, studies_per_patient=2, size=16)
    (tmp_path / "params.yaml").write_text(
        "train:\n  modalities: [CR]\n  spatial_size: [32, 32]\n  width: 8\n  epochs: 8\n  batch_size: 8\n"
        "  dropout: 0.2\n  device: cpu\n  class_balance: sampler\n  patience: 10\n  ema_decay: 0.9\n"
        "  augment: {flip_axes: [1], rotate_deg: 10, noise_std: 0.02, contrast: 0.1, mixup_alpha: 0.3}\n"
        f"  processes: {processes}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        _train_cmd(tmp_path, clean, split, "whole"), cwd=ROOT, env=env, check=True, capture_output=True
    )

    killed = subprocess.Popen(_train_cmd(tmp_path, clean, split, "killed"), cwd=ROOT, env=env)
    checkpoint = tmp_path / "killed" / "ck" / "last.pt"
    while not checkpoint.exists() and killed.poll() is None:
        time.sleep(0.02)
    time.sleep(0.05)  # into the second epoch; 8 epochs leave ample margin before the end
    assert killed.poll() is None, "training ended before it could be killed; make the test data larger"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    deadline = time.monotonic() + 10
    while _workers_of(tmp_path / "killed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _workers_of(tmp_path / "killed"), "a training process outlived its killed launcher"
    assert not (tmp_path / "killed" / "models" / "model.pt").exists()
    rerun = subprocess.run(
        _train_cmd(tmp_path, clean, split, "killed"),
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "resumed after epoch" in rerun.stdout
    assert rerun.stdout.count("train: ") == 1  # one summary, from rank 0
    resumed_after = int(rerun.stdout.split("resumed after epoch ")[1].split(",")[0])
    epochs_logged = [line for line in rerun.stderr.splitlines() if line.startswith("train: epoch ")]
    assert len(epochs_logged) == 8 - resumed_after  # the epochs still to run, each logged once
    assert ("2 cpu processes (DDP)" in rerun.stdout) == (processes == 2)

    whole = torch.load(tmp_path / "whole" / "models" / "model.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "models" / "model.pt", weights_only=True)
    assert whole["lineage"] == resumed["lineage"] and whole["lineage"]["processes"] == processes
    for name, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole" / "reports" / "history.csv"),
        pd.read_csv(tmp_path / "killed" / "reports" / "history.csv"),
    )


def test_ensemble_members_are_saved_and_averaged(tmp_path: Path) -> None:
    clean, split = _split(tmp_path, patients=24, studies_per_patient=1, size=8, seed=1)
    params = TrainParams(
        modalities=["CR"], spatial_size=[8, 8], width=4, batch_size=4, epochs=2, ensemble=2, device="cpu"
    )
    result = run(params, clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    model, config = load_model(result.model_path)
    assert config.ensemble == 2 and len(model.members) == 2  # type: ignore[arg-type]
    assert (tmp_path / "ck" / "last_member1.pt").exists() and (
        tmp_path / "r" / "history_member1.csv"
    ).exists()
    images, _, _ = load_split_arrays(clean, split, config, "val")
    with torch.no_grad():
        members = torch.stack([m(torch.from_numpy(images)) for m in model.members]).mean(0)  # type: ignore[union-attr]
    np.testing.assert_allclose(
        predict_proba(model, images, calibrated=False), torch.sigmoid(members).reshape(-1).numpy(), rtol=1e-5
    )


def test_probabilities_are_platt_scaled_on_val_and_none_keeps_the_networks(tmp_path: Path) -> None:
    clean, split = _split(tmp_path, patients=36, studies_per_patient=2, size=16)
    params = TrainParams(
        modalities=["CR"], spatial_size=[16, 16], network="small_cnn", width=8, epochs=4, batch_size=16,
        learning_rate=0.01, augment=AUGMENT, device="cpu",  # type: ignore[arg-type]
    )  # fmt: skip
    result = run(params, clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    model, config = load_model(result.model_path)
    assert torch.load(result.model_path, weights_only=True)["lineage"]["calibration"] == "platt"
    scale, shift = config.calibration
    assert scale > 0 and (scale, shift) != (1.0, 0.0)
    images, labels, _ = load_split_arrays(clean, split, config, "val")
    scaled, raw = predict_proba(model, images), predict_proba(model, images, calibrated=False)
    logits = np.log(raw / (1 - raw))
    np.testing.assert_allclose(scaled, 1 / (1 + np.exp(-(scale * logits + shift))), rtol=1e-6)
    assert roc_auc_score(labels, scaled) == roc_auc_score(labels, raw)
    # fitted to val: the scaled probabilities sum to Platt's smoothed targets there
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    smoothed = n_pos * (n_pos + 1) / (n_pos + 2) + n_neg / (n_neg + 2)
    assert scaled.sum() == pytest.approx(smoothed, abs=1e-3) and raw.sum() != pytest.approx(smoothed, abs=0.1)

    # calibration is not in the checkpoints' fingerprint: `none` reuses the trained networks
    plain = run(
        params.model_copy(update={"calibration": "none"}), clean, split, tmp_path / "m2", tmp_path / "ck",
        tmp_path / "r2",
    )  # fmt: skip
    assert plain.resumed_from == 4
    model2, config2 = load_model(plain.model_path)
    assert config2.calibration == (1.0, 0.0)
    assert torch.load(plain.model_path, weights_only=True)["lineage"]["calibration"] == "none"
    np.testing.assert_array_equal(predict_proba(model2, images), raw)


@pytest.mark.parametrize("select", ["best", "last"])
def test_select_keeps_the_best_or_the_last_epoch(tmp_path: Path, select: str) -> None:
    clean, split = _split(tmp_path, patients=24, studies_per_patient=1, size=8, seed=2)
    params = TrainParams(
        modalities=["CR"], spatial_size=[8, 8], width=4, batch_size=4, epochs=4, patience=4,
        learning_rate=0.05, select=select, device="cpu",  # type: ignore[arg-type]
    )  # fmt: skip
    result = run(params, clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    history = pd.read_csv(result.history_path)
    saved = torch.load(tmp_path / "m" / "model.pt", weights_only=True)["state_dict"]
    last = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)["model"]
    same_as_last = all(torch.equal(saved[k], last[k]) for k in last)
    if select == "last":
        assert same_as_last and result.best_epoch == 4
        assert result.best_val_auc == pytest.approx(history["val_auc"].iloc[-1])
    else:
        assert result.best_val_auc == pytest.approx(history["val_auc"].max())
        assert result.best_epoch == int(history["val_auc"].idxmax()) + 1
        assert same_as_last == (result.best_epoch == 4)


def test_ema_keeps_the_moving_average_of_the_weights(tmp_path: Path) -> None:
    clean, split = _split(tmp_path, patients=24, studies_per_patient=1, size=8, seed=3)
    params = TrainParams(
        modalities=["CR"], spatial_size=[8, 8], width=4, batch_size=4, epochs=3, select="last",
        learning_rate=0.05, ema_decay=0.8, device="cpu",
    )  # fmt: skip
    result = run(params, clean, split, tmp_path / "m", tmp_path / "ck", tmp_path / "r")
    saved = torch.load(result.model_path, weights_only=True)["state_dict"]
    last = torch.load(tmp_path / "ck" / "last.pt", weights_only=False)
    average = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert average.keys() == saved.keys() == last["model"].keys()
    assert all(torch.equal(saved[k], average[k]) for k in saved)  # the average is what is kept
    assert not all(torch.equal(saved[k], last["model"][k]) for k in saved)  # not the raw weights
    _, config = load_model(result.model_path)
    train_images, _, _ = load_split_arrays(clean, split, config, "train")
    steps = len(batches(torch.arange(len(train_images)), 4))
    assert int(last["ema"]["n_averaged"]) == 3 * steps  # updated after every optimiser step
