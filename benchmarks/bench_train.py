"""Training throughput of radflow's loop (input pipeline, augmentation, validation, checkpoints
included) against a bare PyTorch loop over in-memory tensors with the same model and batch size.

    python benchmarks/bench_train.py [--network small_cnn --size 28 28 --samples 2048 --epochs 2]
    python benchmarks/bench_train.py --device cuda [--no-amp]   # on a GPU machine

Prints samples/s for both, side by side, and their ratio (target: at least 0.9), by wall clock
and by process CPU time (the fairer measure on a shared machine). Runs alternate A/B/A/B and the
best of each is kept, so a busy machine penalises both alike. On CUDA both loops use the same
mixed precision (float16 autocast and a GradScaler, unless --no-amp); the bare loop's tensors sit
on the GPU before its clock starts, and radflow's fit copies them there inside its clock (as in
training). Wall-clock figures are the ones that count there (CPU time is the host thread's).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radflow.config.train import TrainParams
from radflow.data.training import fingerprint, from_arrays
from radflow.models.fit import fit
from radflow.models.networks import build_network

AUGMENT = {
    "flip_axes": [1],
    "rotate_deg": 10,
    "scale": 0.1,
    "translate": 0.08,
    "noise_std": 0.02,
    "contrast": 0.1,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def radflow_loop(
    params: TrainParams, images: np.ndarray, labels: np.ndarray, workdir: Path, device: torch.device
) -> tuple[float, float]:
    """Samples/s (wall, CPU) of radflow.models.fit (from in-memory arrays, as after preloading)."""
    config, data = from_arrays(params, images, labels, images[:64], labels[:64])
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fit(params, config, data, device, workdir / "last.pt", fingerprint(params, config, data))
    _sync(device)
    n = params.epochs * len(labels)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def bare_loop(
    params: TrainParams, images: np.ndarray, labels: np.ndarray, device: torch.device, fused: bool = False
) -> tuple[float, float]:
    """Samples/s of the textbook loop: shuffle, slice, forward, BCE, backward, AdamW step (`fused`:
    the one-kernel AdamW that radflow uses on a GPU)."""
    from radflow.data.training import model_config

    torch.manual_seed(params.seed)
    model = build_network(model_config(params)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, fused=fused or None)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels.astype(np.float32)).to(device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    amp = params.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(params.epochs):
        for idx in torch.randperm(len(y), device=device).split(params.batch_size):
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss = loss_fn(model(x[idx]).reshape(-1).float(), y[idx])
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
    _sync(device)
    n = params.epochs * len(labels)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def main() -> None:
    """Alternate both loops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="small_cnn")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--size", type=int, nargs="+", default=[28, 28])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="full precision on CUDA")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = TrainParams(
        modalities=["CR"],
        spatial_size=args.size,
        network=args.network,
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        augment=AUGMENT,
        device=args.device,
        amp=args.amp,
        resume=False,
        patience=100,
    )
    rng = np.random.default_rng(0)
    images = rng.random((args.samples, 1, *args.size), dtype=np.float32)
    labels = (rng.random(args.samples) < 0.3).astype(np.int64)
    cuda = device.type == "cuda"
    ours, bare, bare_fused = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            ours.append(radflow_loop(params, images, labels, Path(tmp), device))
            bare.append(bare_loop(params, images, labels, device))
            if cuda:  # the baseline with radflow's optimiser: what the input pipeline alone costs
                bare_fused.append(bare_loop(params, images, labels, device, fused=True))
    best_ours = [max(r[i] for r in ours) for i in (0, 1)]
    rows = [("bare PyTorch (in-memory tensors)", "bare", bare)]
    if cuda:
        rows.append(("bare, fused AdamW", "bare fused", bare_fused))
    best = {short: [max(r[i] for r in runs) for i in (0, 1)] for _, short, runs in rows}
    print(f"{'loop':<34}{'samples/s wall':>16}{'samples/CPU-s':>16}")
    for name, short, _ in rows:
        print(f"{name:<34}{best[short][0]:>16.1f}{best[short][1]:>16.1f}")
    print(f"{'radflow fit (augment+val+ckpt)':<34}{best_ours[0]:>16.1f}{best_ours[1]:>16.1f}")
    for _, short, _ in rows:
        ratios = [o / b for o, b in zip(best_ours, best[short], strict=True)]
        print(f"{'ratio radflow / ' + short:<34}{ratios[0]:>16.3f}{ratios[1]:>16.3f}   (target >= 0.9)")
    print(
        f"network {args.network} width {args.width}, input {args.size}, batch {args.batch_size}, "
        f"{args.samples} samples x {args.epochs} epochs, torch threads {torch.get_num_threads()}, "
        f"device {_describe(device)}{', mixed precision' if args.amp and cuda else ''}"
    )


def _describe(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()
