"""Training across processes: PyTorch DDP launched by torchrun, one process per GPU (or CPU share).

`train.processes` > 1 makes the train stage's command (`python -m tasks.train ...`, what DVC runs)
replace itself with `torchrun --standalone --nproc-per-node N -m tasks.train ...`; a multi-node run
is started with torchrun directly and joins through its environment (RANK, WORLD_SIZE, LOCAL_RANK).
Each process trains on its share of every batch (strided over the batch's indices) and DDP averages
the gradients, so a global batch of `train.batch_size` is one optimiser step, as in one process.
Rank 0 validates, checkpoints and writes outputs; the others take its verdicts by broadcast, so
every rank makes the same early-stopping decision.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist

__all__ = [
    "SINGLE",
    "Ranks",
    "all_gather",
    "broadcast",
    "launched",
    "processes_wanted",
    "relaunch_under_torchrun",
    "start",
    "stop",
    "sum_across",
]


@dataclass(frozen=True)
class Ranks:
    """Which process of the training job this is: global rank, how many, rank on this machine."""

    rank: int
    world: int
    local: int

    @property
    def main(self) -> bool:
        """The process that validates, checkpoints and writes (rank 0)."""
        return self.rank == 0


SINGLE = Ranks(0, 1, 0)


def launched() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


def processes_wanted(processes: int, device: str) -> int:
    """train.processes resolved: 0 means one per visible CUDA GPU (one on CPU)."""
    if processes:
        return processes
    if device != "cpu" and torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return 1


def relaunch_under_torchrun(processes: int, module: str, argv: Sequence[str]) -> NoReturn:
    """Replace this process with torchrun running `python -m module argv` in `processes` processes.

    exec, not a child: the process DVC or Prefect started (and may cancel) is the launcher itself.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        module,
        *argv,
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _die_with_launcher() -> None:
    """Ask Linux to SIGKILL this worker when its launcher dies, so a killed run leaves no orphans."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: torchrun's own shutdown still stops the workers
        return
    if os.getppid() == 1:  # the launcher was gone before the request took effect
        os._exit(1)


def start(device_type: str) -> Ranks:
    """Join the process group torchrun set up (NCCL on CUDA, Gloo on CPU); this process's ranks."""
    _die_with_launcher()
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if device_type == "cuda":
        torch.cuda.set_device(ranks.local)
    else:  # the machine's cores shared between its processes (torchrun leaves each one thread)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return ranks


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(values: list[Any], ranks: Ranks) -> list[Any]:
    """Rank 0's `values` on every rank (picklable objects)."""
    if ranks.world == 1:
        return values
    box = list(values)
    dist.broadcast_object_list(box, src=0)
    return box


def all_gather(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    if ranks.world == 1:
        return [value]
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, value)
    return out


def sum_across(values: Sequence[float], ranks: Ranks, device: torch.device) -> list[float]:
    """Element-wise sums of `values` over the ranks."""
    if ranks.world == 1:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]
