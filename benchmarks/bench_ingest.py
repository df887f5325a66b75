"""Ingest header-scan speed against a bare `pydicom.dcmread(stop_before_pixels=True)` loop.

    nice .venv/bin/python benchmarks/bench_ingest.py [FOLDER] [--copies 5] [--repeats 5]

Over the same files (default: ../shared/corpus/dicom, replicated --copies times into a temporary
folder with hard links so timings are long enough to be stable), prints one table, side by side:
(a) the bare loop on one core, (a2) the same loop split over 2 processes (what this machine's two
cores give a perfectly parallel job: the ceiling for (c)), (b) `tasks.ingest.run` with all
bookkeeping on 1 worker, (c) on 2 workers, (d) an incremental re-ingest after adding 1% new files,
as a fraction of a full ingest, and (d1) the same on 1 worker against (b): the new files are too few
for a pool, so (d) reads them on one core while (c) reads on two.
Each figure is the median of --repeats rounds; rounds interleave the variants so that load from
other processes hits them alike. Targets: (b) ≥ 0.9×, (c) ≥ 1.7×, (d) ≤ 5%.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dicom"


def replicate(src: Path, dst: Path, copies: int) -> list[Path]:
    """Hard-link (or copy) every file of `src` into dst/copy_<i>/...; return the files."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for i in range(copies):
        for p in files:
            target = dst / f"copy_{i}" / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(p, target)
            except OSError:
                shutil.copy2(p, target)
    return sorted(p for p in dst.rglob("*") if p.is_file())


class Clock:
    """Wall seconds and CPU seconds (this process and its finished children) of a block."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, _cpu() - self._cpu


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bare_loop(files: list[Path]) -> Clock:
    """Time of the baseline: read every header, nothing else."""
    import pydicom

    from radflow.dicom.scan_pool import quiet_pydicom

    with Clock() as clock, quiet_pydicom():  # the scan's pydicom settings: only the bookkeeping differs
        for p in files:
            with contextlib.suppress(Exception):  # non-DICOM files fail fast, as they would in any loop
                pydicom.dcmread(p, stop_before_pixels=True)
    return clock


def _bare_chunk(files: list[Path]) -> None:
    bare_loop(files)


def bare_loop_2(files: list[Path]) -> Clock:
    """The bare loop over strided halves of the files in 2 processes, pool start-up included."""
    from concurrent.futures import ProcessPoolExecutor

    with Clock() as clock, ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_bare_chunk, [files[0::2], files[1::2]]))
    return clock


def ingest(tree: Path, out: Path, workers: int, redact: bool, fresh: bool = True) -> Clock:
    """Time of tasks.ingest.run (a full scan when `fresh`, else incremental over `out`)."""
    from radflow.config import IngestParams
    from tasks.ingest import run

    if fresh:
        shutil.rmtree(out, ignore_errors=True)
    with Clock() as clock:
        run(IngestParams(source=tree, workers=workers, redact_paths=redact), tree, out)
    return clock


def add_new_files(tree: Path, files: list[Path], fraction: float, round_: int) -> int:
    """Copy `fraction` of the files (new inodes, new mtimes) into tree/added_<round>/.

    Every k-th file from an offset that moves each round: the median over rounds is then an
    average 1%, not the same few files (header sizes vary tenfold across the corpus).
    """
    step = max(1, round(1 / fraction))
    picked = files[(round_ * 37) % step :: step]
    for i, p in enumerate(picked):
        target = tree / f"added_{round_}" / f"{i:06d}_{p.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    return len(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=5, help="Times the folder is replicated.")
    parser.add_argument("--repeats", type=int, default=5, help="Rounds; each figure is their median.")
    parser.add_argument(
        "--paths",
        choices=["default", "redacted", "real"],
        default="default",
        help="ingest.redact_paths for (b)-(d): the params default, on, or off.",
    )
    args = parser.parse_args()
    from radflow.config import IngestParams

    redact = {"redacted": True, "real": False}.get(args.paths, IngestParams().redact_paths)
    if not args.folder.is_dir():
        sys.exit(f"{args.folder} is not a folder; pass a folder of DICOM files.")
    os.environ.setdefault("RADFLOW_DEID_KEY", secrets.token_hex(16))  # never touch a real key file
    sys.path.insert(0, str(ROOT))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        tree, work = Path(tmp) / "tree", Path(tmp) / "work"
        files = replicate(args.folder, tree, args.copies)
        bare_loop(files)  # warm the page cache and imports
        clocks: dict[str, list[Clock]] = {"a": [], "a2": [], "b": [], "c": [], "d": [], "d1": []}
        added = 0
        for r in range(args.repeats):
            clocks["a"].append(bare_loop(files))
            clocks["a2"].append(bare_loop_2(files))
            clocks["b"].append(ingest(tree, work / "b", 1, redact))
            clocks["c"].append(ingest(tree, work / "c", 2, redact))
            added = add_new_files(tree, files, 0.01, r)
            clocks["d"].append(ingest(tree, work / "c", 2, redact, fresh=False))
            shutil.rmtree(tree / f"added_{r}")
            add_new_files(tree, files, 0.01, r)  # the same files again, on (b)'s 1-worker output
            clocks["d1"].append(ingest(tree, work / "b", 1, redact, fresh=False))
            shutil.rmtree(tree / f"added_{r}")
    wall = {k: statistics.median(c.wall for c in v) for k, v in clocks.items()}
    cpu = {k: statistics.median(c.cpu for c in v) for k, v in clocks.items()}
    print(f"\npaths {'redacted' if redact else 'real'} (ingest.redact_paths: {str(redact).lower()})", end="")
    report(len(files), added, wall, cpu, (load_before, os.getloadavg()[0]))


def report(
    n: int, added: int, wall: dict[str, float], cpu: dict[str, float], load: tuple[float, float]
) -> None:
    """The table: files/s and ratios to the bare loop; the incremental run as a fraction of a full one."""
    rows = [
        ("(a) bare dcmread(stop_before_pixels) loop, 1 core", "a", "1.00×", "baseline"),
        ("(a2) bare loop, 2 processes: this machine's ceiling", "a2", f"{wall['a'] / wall['a2']:.2f}×", "—"),
        ("(b) ingest, all bookkeeping, 1 worker", "b", f"{wall['a'] / wall['b']:.2f}×", "≥ 0.90×"),
        ("(c) ingest, all bookkeeping, 2 workers", "c", f"{wall['a'] / wall['c']:.2f}×", "≥ 1.70×"),
        (f"(d) re-ingest after adding {added} files (1%), 2 workers", "d",
         f"{wall['d'] / wall['c']:.1%} of (c)", "≤ 5%"),
        ("(d1) the same re-ingest, 1 worker, against (b)", "d1", f"{wall['d1'] / wall['b']:.1%} of (b)", "—"),
    ]  # fmt: skip
    print(f"\n{n} files, median of the rounds; {len(os.sched_getaffinity(0))} cores shared with other work")
    print(
        f"load average (1 min) before {load[0]:.1f}, after {load[1]:.1f}: with other load, (c) cannot scale"
    )
    head = f"{'variant':58} {'wall s':>7} {'files/s':>8} {'ratio':>13}  {'target':8}"
    print(f"{head} {'CPU s':>6} {'CPU ratio':>9}")
    for name, k, ratio, target in rows:
        rate = f"{n / wall[k]:8.0f}" if not k.startswith("d") else f"{'':8}"
        cpu_ratio = f"{cpu['a'] / cpu[k]:8.2f}×" if k in ("a", "b") else f"{'':9}"
        print(f"{name:58} {wall[k]:7.3f} {rate} {ratio:>13}  {target:8} {cpu[k]:6.2f} {cpu_ratio}")
    print("CPU s counts this process and its pool workers; CPU ratio is files per CPU-second against (a).")
    bound = 2 * cpu["a"] / cpu["c"]
    extra = cpu["c"] / cpu["b"] - 1
    print(f"(c) spent {extra:+.0%} CPU against (b): on 2 idle cores it can reach at most {bound:.2f}× (a).")
    print(
        f"(c) reaches {wall['a2'] / wall['c']:.0%} of (a2), the bare loop's own 2-process speed-up here; "
        f"(a2) spent {cpu['a2'] / cpu['a'] - 1:+.0%} CPU against (a) (shared or contended cores)."
    )


if __name__ == "__main__":
    main()
