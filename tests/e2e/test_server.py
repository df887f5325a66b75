"""`radflow run` against a real `prefect server start`: the flow run and its tasks are recorded there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import api_post, deployment_id, final_state, prefect_server, served_deployments

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """A `prefect server start` on a free local port, with its SQLite database under tmp_path."""
    with prefect_server(tmp_path / "prefect-home") as api:
        yield api


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

    runs = api_post(f"{prefect_api}/flow_runs/filter", {}).json()
    assert [(r["state_type"], r["parameters"]["params"]["set"]) for r in runs] == [
        ("COMPLETED", ["train.epochs=4"])
    ]
    tasks = api_post(
        f"{prefect_api}/task_runs/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}}
    ).json()
    assert sorted(t["name"] for t in tasks) == ["evaluate", "ingest", "register", "train"]
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}


def test_a_run_started_from_the_served_deployment_uses_its_form_values(
    prefect_api: str, toy_project: Path
) -> None:
    """What the UI's Run button does: create a run of retrain/nightly with parameters; `radflow serve`
    picks it up and runs it with those overrides (in a worktree), then registers the model."""
    with served_deployments(toy_project, prefect_api) as served:
        deployment = deployment_id(prefect_api, "nightly", served)
        created = api_post(
            f"{prefect_api}/deployments/{deployment}/create_flow_run",
            {"parameters": {"params": {"train_epochs": 30}}},
        )
        run = final_state(prefect_api, served, created.json()["id"])

    assert run["state_type"] == "COMPLETED", run["state"]
    assert_promoted_with_30_epochs(toy_project)


def assert_promoted_with_30_epochs(project: Path) -> None:
    """The toy's AUC with 30 epochs is 0.80: registered as v0.1.0 and promoted to prod."""
    tags = subprocess.run(["git", "tag", "-l"], cwd=project, capture_output=True, text=True).stdout.split()
    assert tags == ["radflow-model#prod#1", "radflow-model@v0.1.0"]
    message = subprocess.run(
        ["git", "tag", "-l", "--format=%(contents)", "radflow-model@v0.1.0"],
        cwd=project,
        capture_output=True,
        text=True,
    ).stdout
    assert "pass  test auc: 0.800" in message
