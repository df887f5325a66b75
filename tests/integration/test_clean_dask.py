"""The clean stage and ingest's header scan on a real Dask cluster (a LocalCluster of worker
processes on loopback).

The cluster's workers are other processes with their own working directory and a different
RADFLOW_DEID_KEY in their environment: the outputs must still equal an in-process clean's, byte for
byte, which shows that jobs carry absolute paths and the stage's own key.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_clean import build, ct_series

import tasks.clean as stage
from radflow.config import CleanParams, IngestParams
from radflow.dicom import workers
from radflow.errors import InputError
from tasks.ingest import run as ingest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two single-threaded worker processes behind a scheduler on 127.0.0.1; yields its address."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env={"RADFLOW_DEID_KEY": "a-key-the-workers-must-not-use"},
    ) as running:
        yield running.scheduler_address
        workers.close_clients()


def _tasks_run(address: str) -> int:
    """How many of radflow's batches the scheduler has seen finish."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        counts = client.run_on_scheduler(
            lambda dask_scheduler: {
                name: prefix.state_counts["memory"] for name, prefix in dask_scheduler.task_prefixes.items()
            }
        )
    return int(counts.get("run_batch", 0))  # Dask names a task's prefix without leading underscores


def test_a_dask_cluster_writes_what_one_process_writes(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative folders, as under `dvc repro`; the workers' cwd is elsewhere
    src = Path("src")
    expect = build(src)  # every defect the stage knows, once
    ct_series(src / "long", [1.5 * k for k in range(40)], value=300)  # decoded in several chunks
    ingest(IngestParams(source=src, workers=1), src, Path("ingest"))
    local = stage.run(CleanParams(workers=1), Path("ingest"), Path("local"))

    monkeypatch.setenv(workers.DASK_ADDRESS, cluster)
    monkeypatch.setattr(stage, "HEADERS_PER_WORKER", 1)  # small as it is, send all of it to the cluster
    monkeypatch.setattr(stage, "VOXELS_PER_WORKER", 1)
    before = _tasks_run(cluster)
    remote = stage.run(CleanParams(workers=1), Path("ingest"), Path("dask"))

    assert _tasks_run(cluster) - before >= 4  # headers and decoding both ran there, in batches
    assert (remote.files, remote.accepted, remote.quarantined) == (
        local.files,
        local.accepted,
        local.quarantined,
    )
    assert remote.files == len(expect) + 40
    for name in ("series.parquet", "dispositions.parquet"):
        expected = pd.read_parquet(tmp_path / "local" / name)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask" / name), expected)
    names = sorted(p.name for p in (tmp_path / "local" / "arrays").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "dask" / "arrays").iterdir())
    for name in names:
        np.testing.assert_array_equal(
            np.load(tmp_path / "dask" / "arrays" / name), np.load(tmp_path / "local" / "arrays" / name)
        )


@pytest.mark.parametrize("redact", [True, False], ids=["redacted_paths", "real_paths"])
def test_ingest_on_a_dask_cluster_writes_the_manifest_one_process_writes(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redact: bool
) -> None:
    import pyarrow.parquet as pq

    from radflow.dicom import scan_pool

    monkeypatch.chdir(tmp_path)  # a relative source, as under `dvc repro`
    src = Path("src")
    build(src / "Zyxwv_Planted")  # a folder named after the planted patient: redacted or not
    ct_series(src / "long", [1.5 * k for k in range(40)], value=300)
    params = IngestParams(source=src, workers=1, redact_paths=redact)
    ingest(params, src, Path("local"))
    monkeypatch.setenv(workers.DASK_ADDRESS, cluster)
    monkeypatch.setattr(scan_pool, "IN_PROCESS_BELOW", 1)  # small as it is, send it to the cluster
    before = _tasks_run(cluster)
    result = ingest(params, src, Path("dask"))
    assert _tasks_run(cluster) - before >= 2 and result.read == result.files
    local, remote = (pq.read_table(Path(d) / "manifest.parquet") for d in ("local", "dask"))
    assert remote.equals(local)
    paths = remote.column("path").to_pylist()
    assert any("Zyxwv" in p for p in paths) != redact  # the workers' digests reached the redaction


def test_workers_that_cannot_see_the_folders_are_refused_before_any_job(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(workers.DASK_ADDRESS, cluster)
    before = _tasks_run(cluster)
    with pytest.raises(InputError, match=r"2 Dask worker\(s\) .* cannot read the input folder"):
        workers.parallel_map(str, list(range(10)), 0, "x", reads=[str(tmp_path / "not-shared")])
    assert _tasks_run(cluster) == before


def test_an_unreachable_scheduler_is_one_sentence_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    monkeypatch.chdir(tmp_path)
    ct_series(Path("src"), [0, 2, 4, 6])
    ingest(IngestParams(source=Path("src"), workers=1), Path("src"), Path("ingest"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    address = f"tcp://127.0.0.1:{port}"
    monkeypatch.setenv(workers.DASK_ADDRESS, "")  # restored after the test: `--dask` sets it
    monkeypatch.setattr(workers, "CONNECT_TIMEOUT_S", 2)
    done = CliRunner().invoke(app, ["clean", "ingest", "--out", "clean", "--dask", address])
    assert done.exit_code == 2
    expected = f"error: Cannot reach the Dask scheduler at {address} ({workers.DASK_ADDRESS})"
    assert done.output.startswith(expected)
    assert done.output.count("\n") == 1
    assert not (tmp_path / "clean" / "dispositions.parquet").exists()
