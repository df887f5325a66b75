"""What Prefect costs on a run with nothing to do: `radflow run` against plain `dvc repro`, side by side.

Run from a project whose pipeline is already reproduced (e.g. after `make demo`):

    .venv/bin/python benchmarks/bench_flow.py --repeat 3

Rows: plain `dvc repro` (the baseline), an empty Prefect flow (the temporary server's start-up),
and `radflow run` (the retrain flow, every stage skipped). Ratios are against the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

EMPTY_FLOW = "from prefect import flow\nflow(name='empty')(lambda: None)()\n"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds one command takes, failing loudly if it fails."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # measure the temporary server, as `make demo` meets it
    py = sys.executable
    cases = {
        "dvc repro (baseline)": [py, "-m", "dvc", "repro"],
        "empty Prefect flow": [py, "-c", EMPTY_FLOW],
        "radflow run (no-op)": [py, "-m", "radflow.cli", "run"],
    }
    rows = {name: [timed(cmd, args.project, env) for _ in range(args.repeat)] for name, cmd in cases.items()}
    base = statistics.median(rows["dvc repro (baseline)"])
    print(f"{'case':<24} {'median s':>9} {'min s':>7} {'ratio':>6}   (load {os.getloadavg()[0]:.1f})")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:<24} {median:>9.2f} {min(times):>7.2f} {median / base:>6.1f}")


if __name__ == "__main__":
    main()
