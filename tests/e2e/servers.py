"""Real servers the e2e tests start on loopback: `prefect server start` (SQLite), optionally with its UI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(home: Path, ui: bool = False) -> Iterator[str]:
    """A `prefect server start` on a free local port, its SQLite database under HOME; yields the API URL."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env |= {"PREFECT_UI_API_URL": api, "PREFECT_SERVER_UI_API_URL": api}  # the UI asks this server
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, *([] if ui else ["--no-ui"])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so stopping it stops uvicorn too
    )
    try:
        wait_for_health(api, server, timeout=180)
        yield api
    finally:
        stop(server)


@contextmanager
def served_deployments(project: Path, api: str) -> Iterator[subprocess.Popen[bytes]]:
    """`radflow serve` in PROJECT against the server at API (both deployments), until the block ends."""
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(project.parent / "serve-home")}
    served = subprocess.Popen(
        [sys.executable, "-m", "radflow.cli", "serve"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield served
    finally:
        stop(served)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def api_post(url: str, payload: object, timeout: float = 30) -> httpx.Response:
    """POST to the Prefect API as Prefect's own client does: a 503 is the server's "database busy, try
    again" (SQLite locked while `radflow serve` and a run write), so it is retried, not reported."""
    for attempt in range(8):
        response = httpx.post(url, json=payload, timeout=timeout)
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2**attempt)
    response.raise_for_status()
    return response


def deployment_id(api: str, name: str, served: subprocess.Popen[bytes]) -> str:
    """The id of deployment NAME once `radflow serve` has registered it."""
    deadline = time.monotonic() + 240  # a loaded 2-core machine takes a while to import and register
    while time.monotonic() < deadline:
        assert served.poll() is None, "radflow serve exited early"
        for deployment in api_post(f"{api}/deployments/filter", {}).json():
            if deployment["name"] == name:
                return str(deployment["id"])
        time.sleep(0.5)
    pytest.fail(f"radflow serve did not register the {name} deployment within 240 s")


def final_state(api: str, served: subprocess.Popen[bytes], run_id: str | None = None) -> dict[str, object]:
    """The flow run (RUN_ID, or the only one) once it has finished."""
    return state_reached(api, served, FINAL, run_id)


def state_reached(
    api: str, served: subprocess.Popen[bytes], types: tuple[str, ...], run_id: str | None = None
) -> dict[str, object]:
    """The flow run (RUN_ID, or the only one) once its state type is one of TYPES."""
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        assert served.poll() is None, "radflow serve exited during the run"
        runs = api_post(f"{api}/flow_runs/filter", {}).json()
        for run in runs:
            if (run_id is None or run["id"] == run_id) and run["state_type"] in types:
                return dict(run)
        time.sleep(1)
    pytest.fail(f"the deployment's run did not reach {' or '.join(types)} within 420 s")


FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
