"""Training throughput of radflow's loop (input pipeline, augmentation, validation, checkpoints
included) against a bare PyTorch loop over in-memory tensors with the same model and batch size.

    python benchmarks/bench_train.py [--network small_cnn --size 28 28 --samples 2048 --epochs 2]

Prints samples/s for both, side by side, and their ratio (target: at least 0.9), by wall clock
and by process CPU time (the fairer measure on a shared machine). Runs alternate A/B/A/B and the
best of each is kept, so a busy machine penalises both alike.
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


def radflow_loop(
    params: TrainParams, images: np.ndarray, labels: np.ndarray, workdir: Path
) -> tuple[float, float]:
    """Samples/s (wall, CPU) of radflow.models.fit (from in-memory arrays, as after preloading)."""
    config, data = from_arrays(params, images, labels, images[:64], labels[:64])
    wall, cpu = time.perf_counter(), time.process_time()
    fit(params, config, data, torch.device("cpu"), workdir / "last.pt", fingerprint(params, config, data))
    n = params.epochs * len(labels)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def bare_loop(params: TrainParams, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Samples/s of the textbook loop: shuffle, slice, forward, BCE, backward, AdamW step."""
    from radflow.data.training import model_config

    torch.manual_seed(params.seed)
    model = build_network(model_config(params)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.float32))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(params.epochs):
        for idx in torch.randperm(len(y)).split(params.batch_size):
            optimizer.zero_grad()
            loss_fn(model(x[idx]).reshape(-1), y[idx]).backward()
            optimizer.step()
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
    args = parser.parse_args()
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
        device="cpu",
        resume=False,
        patience=100,
    )
    rng = np.random.default_rng(0)
    images = rng.random((args.samples, 1, *args.size), dtype=np.float32)
    labels = (rng.random(args.samples) < 0.3).astype(np.int64)
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            ours.append(radflow_loop(params, images, labels, Path(tmp)))
            bare.append(bare_loop(params, images, labels))
    best_ours = [max(r[i] for r in ours) for i in (0, 1)]
    best_bare = [max(r[i] for r in bare) for i in (0, 1)]
    print(f"{'loop':<34}{'samples/s wall':>16}{'samples/CPU-s':>16}")
    print(f"{'bare PyTorch (in-memory tensors)':<34}{best_bare[0]:>16.1f}{best_bare[1]:>16.1f}")
    print(f"{'radflow fit (augment+val+ckpt)':<34}{best_ours[0]:>16.1f}{best_ours[1]:>16.1f}")
    ratios = [o / b for o, b in zip(best_ours, best_bare, strict=True)]
    print(f"{'ratio radflow / bare':<34}{ratios[0]:>16.3f}{ratios[1]:>16.3f}   (target >= 0.9)")
    print(
        f"network {args.network} width {args.width}, input {args.size}, batch {args.batch_size}, "
        f"{args.samples} samples x {args.epochs} epochs, torch threads {torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
