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


def test_a_run_started_from_the_served_deployment_uses_its_form_values(
    prefect_api: str, toy_project: Path
) -> None:
    """What the UI's Run button does: create a run of retrain/nightly with parameters; `radflow serve`
    picks it up and runs it with those overrides (in a worktree), then registers the model."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(toy_project.parent / "home")}
    served = subprocess.Popen(
        [sys.executable, "-m", "radflow.cli", "serve"],
        cwd=toy_project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deployment = _wait_for_deployment(prefect_api, "nightly", served)
        created = httpx.post(
            f"{prefect_api}/deployments/{deployment}/create_flow_run",
            json={"parameters": {"params": {"train_epochs": 30}}},
            timeout=30,
        )
        created.raise_for_status()
        run = _wait_for_final_state(prefect_api, created.json()["id"], served)
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        served.wait(timeout=30)

    assert run["state_type"] == "COMPLETED", run["state"]
    tags = subprocess.run(
        ["git", "tag", "-l"], cwd=toy_project, capture_output=True, text=True
    ).stdout.split()
    assert tags == ["radflow-model#prod#1", "radflow-model@v0.1.0"]  # AUC 0.80 with 30 epochs: promoted
    message = subprocess.run(
        ["git", "tag", "-l", "--format=%(contents)", "radflow-model@v0.1.0"],
        cwd=toy_project,
        capture_output=True,
        text=True,
    ).stdout
    assert "pass  test auc: 0.800" in message


def _wait_for_deployment(api: str, name: str, served: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert served.poll() is None, "radflow serve exited early"
        found = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
        for deployment in found:
            if deployment["name"] == name:
                return str(deployment["id"])
        time.sleep(0.5)
    pytest.fail(f"radflow serve did not register the {name} deployment within 120 s")


def _wait_for_final_state(api: str, run_id: str, served: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert served.poll() is None, "radflow serve exited during the run"
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return dict(run)
        time.sleep(1)
    pytest.fail("the deployment's run did not finish within 240 s")
