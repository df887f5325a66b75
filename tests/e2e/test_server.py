"""`radflow run` against a real `prefect server start`: the flow run and its tasks are recorded there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """A `prefect server start` on a free local port, with its SQLite database under tmp_path."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so stopping it stops uvicorn too
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_health(api, server, timeout=180)
        yield api
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_for_health(api: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "prefect server start exited early"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server did not answer {api}/health within {timeout:.0f} s")


def test_radflow_run_is_recorded_on_a_running_server(prefect_api: str, toy_project: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    proc = subprocess.run(
        [sys.executable, "-m", "radflow.cli", "run", "--set", "train.epochs=4"],
        cwd=toy_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test AUC 0.540" in proc.stdout
    assert "Starting temporary server" not in proc.stderr + proc.stdout  # it used ours

    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={}).json()
    assert [(r["state_type"], r["parameters"]["params"]["set"]) for r in runs] == [
        ("COMPLETED", ["train.epochs=4"])
    ]
    tasks = httpx.post(
        f"{prefect_api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [runs[0]["id"]]}}}
    ).json()
    assert sorted(t["name"] for t in tasks) == ["evaluate", "ingest", "register", "train"]
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
