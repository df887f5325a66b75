"""The CUDA path with mixed precision: runs only where a GPU is present (skipped on CPU machines).

The DDP test needs two GPUs (DDP on CPU processes is tested in test_train.py).

On a GPU machine: `.venv/bin/pytest tests/integration/test_train_cuda.py`. It trains with AMP on
CUDA, checks that mixed precision was really used (a live GradScaler in the checkpoint), that the
saved model loads and predicts on a CPU-only host, and that a restart resumes from the checkpoint.
It passed on one NVIDIA H200 (torch 2.11, 2026-12-04; the DDP test skipped), twice: before and
after the data moved onto the GPU and AdamW became the fused one; the noise drawn on the GPU came
after both runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cleandata import write_clean_dir

from radflow.config import SplitParams, TrainParams
from radflow.data.dataset import load_split_arrays
from radflow.models.checkpoint import load_model
from radflow.models.predict import predict_proba
from tasks import split as split_stage
from tasks.train import run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _params(epochs: int, **overrides: object) -> TrainParams:
    return TrainParams(
        modalities=["CR"],
        spatial_size=[16, 16],
        network="resnet18",
        width=8,
        epochs=epochs,
        batch_size=16,
        learning_rate=0.01,
        augment={"flip_axes": [1], "rotate_deg": 10, "noise_std": 0.02},
        device="cuda",  # type: ignore[arg-type]
        amp=True,
        **overrides,  # type: ignore[arg-type]
    )


def test_cuda_amp_trains_resumes_and_serves_on_cpu(tmp_path: Path) -> None:
    clean, labels = write_clean_dir(tmp_path, patients=48, studies_per_patient=2, size=16)
    split = split_stage.run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "split").path
    ck, reports = tmp_path / "ck", tmp_path / "reports"
    first = run(_params(2), clean, split, tmp_path / "m1", ck, reports)
    assert first.device == "cuda" and first.epochs_run == 2
    saved = torch.load(ck / "last.pt", map_location="cpu", weights_only=False)
    assert saved["scaler"], "the GradScaler was disabled: training did not use mixed precision"
    assert saved["scaler"]["scale"] > 0 and saved["cuda_rng"]
    # The same params again: the CUDA checkpoint (scaler, CUDA RNG) restores and nothing is retrained.
    again = run(_params(2), clean, split, tmp_path / "m2", ck, reports)
    assert again.resumed_from == 2 and again.epochs_run == 2
    history = pd.read_csv(first.history_path)
    assert np.isfinite(history["train_loss"]).all() and history["epoch"].tolist() == [1, 2]
    model, config = load_model(first.model_path)  # loads onto the CPU
    images, y, _ = load_split_arrays(clean, split, config, "test")
    proba = predict_proba(model, images)
    assert np.isfinite(proba).all() and proba[y == 1].mean() > proba[y == 0].mean()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_ddp_on_two_gpus_through_the_stage_command(tmp_path: Path) -> None:
    """`python -m tasks.train` with train.processes 2 relaunches under torchrun: NCCL, one GPU each."""
    import os
    import subprocess
    import sys

    clean, labels = write_clean_dir(tmp_path, patients=48, studies_per_patient=2, size=16)
    split = split_stage.run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "split").path
    (tmp_path / "params.yaml").write_text(
        "train:\n  modalities: [CR]\n  spatial_size: [16, 16]\n  network: resnet18\n  width: 8\n"
        "  epochs: 2\n  batch_size: 16\n  device: cuda\n  amp: true\n  processes: 2\n"
    )
    root = Path(__file__).resolve().parents[2]
    args = {
        "--clean": clean,
        "--split": split,
        "--out": tmp_path / "m",
        "--params": tmp_path / "params.yaml",
        "--checkpoints": tmp_path / "ck",
        "--reports": tmp_path / "reports",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tasks.train", *(str(v) for kv in args.items() for v in kv)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 cuda processes (DDP)" in done.stdout
    saved = torch.load(tmp_path / "m" / "model.pt", map_location="cpu", weights_only=True)
    assert saved["lineage"]["processes"] == 2
    model, _ = load_model(tmp_path / "m" / "model.pt")  # SyncBatchNorm's weights load into plain BN
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
