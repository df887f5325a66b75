"""Header reads across processes, in chunks, with a progress bar on a terminal.

Per-file inter-process messages cost about as much as a header read, so files travel in
chunks (one message per chunk each way). A chunk takes every k-th file rather than a contiguous
run: files sorted by path cluster by source (one scanner's large headers together), and strided
chunks cost alike, so no core idles at the end waiting for the one chunk of heavy files. Few
files are read in-process, where a pool's start-up would cost more than the reads. With
RADFLOW_DASK_ADDRESS set, the chunks go to that Dask cluster instead (radflow.dicom.workers).
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from pydicom import config as pydicom_config
from tqdm import tqdm

from radflow.dicom.scan import Header, KeyMaker, read_header
from radflow.dicom.scan_walk import Stat

__all__ = ["cpu_count", "paused_gc", "quiet_pydicom", "read_headers"]

IN_PROCESS_BELOW = 256  # files; below this a process pool costs more than it saves
MAX_CHUNK = 256


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a scan allocates ~30 tracked objects per file and none
    in a cycle (reference counting frees them all), yet each full collection walks every object the
    process holds: pauses of 60 ms and more in an incremental run that otherwise takes ~90."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's per-file warnings (odd VRs, bad values): they are noise, and may quote values."""
    logger = logging.getLogger("pydicom")
    mode, level = pydicom_config.settings.reading_validation_mode, logger.level
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_config.settings.reading_validation_mode = mode
        logger.setLevel(level)


def read_chunk(
    root: str, key: bytes, chunk: Sequence[Stat], collect: bool = False
) -> tuple[list[Header], set[str]]:
    """Read a chunk's headers under `root` (in a worker); with `collect`, also its path-token digests."""
    keys = KeyMaker(key, collect_path_ids=collect)
    with paused_gc():
        return _read(root, keys, chunk), keys.path_digests or set()


def _read(root: str, keys: KeyMaker, chunk: Sequence[Stat]) -> list[Header]:
    """Read a chunk of files with pydicom quiet; `keys` may be shared across chunks."""
    join = os.path.join
    with quiet_pydicom():
        return [read_header(join(root, path), path, size, mtime_ns, keys) for path, size, mtime_ns in chunk]


def read_headers(
    root: str, files: Sequence[Stat], key: bytes, workers: int, digests: set[str] | None = None
) -> list[Header]:
    """Read every file's header, in `workers` processes (0 = one per core), in input order.

    On a Dask cluster (RADFLOW_DASK_ADDRESS) its worker threads read instead, whatever `workers` says.
    When `digests` is given, the path-token digests of the headers' identifiers are added to it.
    """
    from radflow.dicom.workers import dask_address, worker_count

    address = dask_address() if len(files) >= IN_PROCESS_BELOW else None
    workers = cpu_count() if workers == 0 else workers
    with tqdm(total=len(files), unit="file", desc="ingest", disable=None, leave=False) as bar:
        if address is None and (workers <= 1 or len(files) < IN_PROCESS_BELOW):
            chunk = MAX_CHUNK  # contiguous: the bar moves, and a series' keys stay memoised
            chunks = [files[i : i + chunk] for i in range(0, len(files), chunk)]
            return _in_process(root, key, chunks, bar, digests)
        slots = workers if address is None else worker_count(0, len(files))  # a cluster: its threads
        count = _chunk_count(len(files), slots)
        strided = [files[i::count] for i in range(count)]
        if address is None:
            rows = _in_pool(root, key, strided, min(workers, count), bar, digests)
        else:
            rows = _on_cluster(root, key, strided, address, bar, digests)
        return [rows[i][j] for j in range(len(strided[0])) for i in range(count) if j < len(rows[i])]


def _chunk_count(n: int, workers: int) -> int:
    """Several chunks per worker, each at most MAX_CHUNK files (messages stay amortised), and a
    multiple of `workers`: strided chunks cost alike, so every worker gets the same number and
    none idles through the last chunk of another (15 chunks on 2 workers left one idle ~5%)."""
    per_worker = max(4, math.ceil(n / (MAX_CHUNK * workers)))
    return per_worker * workers


def _in_process(
    root: str, key: bytes, chunks: list[Sequence[Stat]], bar: tqdm, digests: set[str] | None = None
) -> list[Header]:
    out: list[Header] = []
    keys = KeyMaker(key, digests is not None)  # shared by all chunks: a study's files often span several
    for chunk in chunks:
        out.extend(_read(root, keys, chunk))
        bar.update(len(chunk))
    if digests is not None and keys.path_digests:
        digests |= keys.path_digests
    return out


def _on_cluster(
    root: str,
    key: bytes,
    chunks: list[Sequence[Stat]],
    address: str,
    bar: tqdm,
    digests: set[str] | None = None,
) -> list[list[Header]]:
    """Each chunk's rows read on the Dask cluster, in chunk order (jobs carry absolute paths and the key)."""
    from radflow.dicom.workers import dask_map

    folder = os.path.abspath(root)  # a worker's cwd is its own
    job = functools.partial(read_chunk, folder, key, collect=digests is not None)
    results = dask_map(job, chunks, address, 1, bar, reads=[folder], writes=[], size=len)
    out: list[list[Header]] = []
    for rows, found in results:
        out.append(rows)
        if digests is not None:
            digests |= found
    return out


def _in_pool(
    root: str,
    key: bytes,
    chunks: list[Sequence[Stat]],
    workers: int,
    bar: tqdm,
    digests: set[str] | None = None,
) -> list[list[Header]]:
    """Each chunk's rows, in chunk order; each chunk's path-token digests added to `digests`."""
    results: list[list[Header]] = [[] for _ in chunks]
    collect = digests is not None
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(read_chunk, root, key, c, collect): i for i, c in enumerate(chunks)}
        for done in as_completed(futures):
            results[futures[done]], found = done.result()
            if digests is not None:
                digests |= found
            bar.update(len(chunks[futures[done]]))
    return results
