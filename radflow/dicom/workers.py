"""A parallel map with a progress bar, for the clean stage's per-file and per-series work (and
ingest's header chunks on a cluster: `dask_map`).

It runs on a local process pool by default, and on a Dask cluster when `RADFLOW_DASK_ADDRESS`
names its scheduler (`tcp://host:8786`, or `tls://` with Dask's TLS settings). The cluster's
workers must have this radflow installed and see the same file system at the same paths: jobs
carry paths, not pixels, and write their part of each output array in place.
"""

from __future__ import annotations

import atexit
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from tqdm import tqdm

from radflow.errors import InputError

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DASK_ADDRESS",
    "close_clients",
    "dask_address",
    "dask_map",
    "parallel_map",
    "quiet",
    "worker_count",
]

DASK_ADDRESS = "RADFLOW_DASK_ADDRESS"
CONNECT_TIMEOUT_S = 20

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


def dask_address() -> str | None:
    """The Dask scheduler to run on, from RADFLOW_DASK_ADDRESS; None for the local process pool."""
    return os.environ.get(DASK_ADDRESS, "").strip() or None


_CLIENTS: dict[str, Client] = {}


def close_clients() -> None:
    """Close this process's connections to Dask schedulers (also done at exit)."""
    while _CLIENTS:
        _CLIENTS.popitem()[1].close()


atexit.register(close_clients)


def _client(address: str) -> Client:
    """One connection per process to the scheduler at ADDRESS, with at least one worker behind it."""
    if address in _CLIENTS:
        return _CLIENTS[address]
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError):
        raise InputError(
            f"Cannot reach the Dask scheduler at {address} ({DASK_ADDRESS}): start it, or unset "
            f"{DASK_ADDRESS} to use this machine's cores."
        ) from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise InputError(
            f"The Dask scheduler at {address} ({DASK_ADDRESS}) has no workers after "
            f"{CONNECT_TIMEOUT_S} s: start `dask worker {address}` on machines that share this file system."
        ) from None
    _CLIENTS[address] = client
    return client


def worker_count(workers: int, jobs: int, per_worker: int = 1) -> int:
    """Parallel slots to use, each with `per_worker` jobs or more; 1 = in-process.

    `workers` processes (0 = one per core) locally; on a Dask cluster, its workers' threads.
    """
    address = dask_address()
    if address is not None:
        wanted = sum(_client(address).nthreads().values())
    else:
        wanted = workers or os.cpu_count() or 1
    return max(1, min(wanted, jobs // max(1, per_worker)))


def _accessible(reads: Sequence[str], writes: Sequence[str]) -> bool:
    """On a worker: can it read every folder in READS and write every one in WRITES?"""
    return all(os.access(f, os.R_OK | os.X_OK) for f in reads) and all(
        os.access(f, os.W_OK | os.X_OK) for f in writes
    )


def _run_batch(fn: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    """On a Dask worker: one batch of jobs, as quiet as a pool worker (pydicom's messages quote PHI)."""
    with quiet():
        return [fn(item) for item in batch]


def dask_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    address: str,
    batch: int,
    bar: tqdm,
    reads: Sequence[str],
    writes: Sequence[str],
    size: Callable[[T], int] = lambda _: 1,
) -> list[R]:
    """`[fn(x) for x in items]` in order on the cluster, in batches of BATCH jobs, advancing BAR by
    each job's `size`; first, every worker must be able to read READS and write WRITES."""
    from distributed import as_completed

    client = _client(address)
    blind = sorted(w for w, ok in client.run(_accessible, list(reads), list(writes)).items() if not ok)
    if blind:
        raise InputError(
            f"{len(blind)} Dask worker(s) of {address} ({blind[0]}, ...) cannot read the input folder or "
            "write the output folder: the cluster's workers need this machine's files at the same paths "
            f"(a shared file system); unset {DASK_ADDRESS} to use this machine's cores."
        )
    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    futures = client.map(_run_batch, [fn] * len(batches), batches, pure=False)
    order = {future.key: k for k, future in enumerate(futures)}
    done: list[list[R]] = [[] for _ in batches]
    for future in as_completed(futures, loop=client.loop):
        k = order[future.key]
        done[k] = future.result()
        bar.update(sum(size(x) for x in batches[k]))
    return [result for part in done for result in part]


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    desc: str,
    per_worker: int = 1,
    reads: Sequence[str] = (),
    writes: Sequence[str] = (),
) -> list[R]:
    """`[fn(x) for x in items]` in order, in parallel when each slot gets `per_worker` items.

    On a Dask cluster the workers must be able to read the folders in READS and write those in
    WRITES (absolute paths); this is checked before any job is sent.
    """
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
        address = dask_address()
        if address is not None:
            return dask_map(fn, items, address, chunk, bar, reads, writes)
        with ProcessPoolExecutor(max_workers=n, initializer=_silence_worker) as pool:
            out = []
            for result in pool.map(fn, items, chunksize=chunk):
                out.append(result)
                bar.update()
            return out
    finally:
        bar.close()
