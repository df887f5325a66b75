"""A process pool map with a progress bar, for the clean stage's per-file and per-series work."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

__all__ = ["parallel_map", "quiet", "worker_count"]

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def quiet() -> Iterator[None]:
    """Silence pydicom's warnings and log lines: they quote header values (UIDs, names), which are PHI."""
    from pydicom import config

    logger = logging.getLogger("pydicom")
    level, mode = logger.level, config.settings.reading_validation_mode
    logger.setLevel(logging.CRITICAL)
    # Value validation only feeds those silenced warnings; skipping it saves ~10% of a header read.
    config.settings.reading_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        config.settings.reading_validation_mode = mode


def _silence_worker() -> None:
    """Pool initializer: a worker process only ever runs our jobs, so it stays quiet for life."""
    from pydicom import config

    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    config.settings.reading_validation_mode = config.IGNORE
    warnings.simplefilter("ignore")


def worker_count(workers: int, jobs: int, per_worker: int = 1) -> int:
    """Processes to use: `workers` (0 = one per core), each with `per_worker` jobs or more; 1 = in-process."""
    wanted = workers or os.cpu_count() or 1
    return max(1, min(wanted, jobs // max(1, per_worker)))


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str, per_worker: int = 1
) -> list[R]:
    """`[fn(x) for x in items]` in order, over a process pool when each process gets `per_worker` items."""
    n = worker_count(workers, len(items), per_worker)
    bar = tqdm(
        total=len(items), desc=desc, unit="", disable=None, leave=False
    )  # disable=None: only on a terminal
    try:
        if n == 1:
            out = []
            with quiet():
                for item in items:
                    out.append(fn(item))
                    bar.update()
            return out
        # Chunks amortise pickling for many small jobs (headers) yet keep big jobs (series) balanced.
        chunk = max(1, min(64, len(items) // (n * 8)))
        with ProcessPoolExecutor(max_workers=n, initializer=_silence_worker) as pool:
            out = []
            for result in pool.map(fn, items, chunksize=chunk):
                out.append(result)
                bar.update()
            return out
    finally:
        bar.close()
