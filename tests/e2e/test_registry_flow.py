"""Registration at the end of the retrain flow, on the toy project: GTO tags, the card, the gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_retrain_flow import completed
from toyproject import sh

from flows.summary import RunSummary
from radflow.registry.versions import in_stage

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def tags(root: Path) -> list[str]:
    return sh(root, "git", "tag", "--list").split()


def at(root: Path, rev: str, path: str) -> str:
    return sh(root, "git", "show", f"{rev}:{path}")


def test_a_run_registers_its_model_on_its_lineage_commit_and_a_rerun_adds_nothing(toy_project: Path) -> None:
    first = completed(toy_project)  # the toy's test AUC is 0.52: below the default floor of 0.75

    assert first.model_version == "radflow-model@v0.1.0" and first.promoted is None
    assert tags(toy_project) == ["radflow-model@v0.1.0"]
    tagged = sh(toy_project, "git", "rev-parse", "radflow-model@v0.1.0^{commit}").strip()
    assert tagged == sh(toy_project, "git", "rev-parse", str(first.lineage_ref)).strip()
    card = at(toy_project, "radflow-model@v0.1.0", "reports/model_card.md")
    assert "# Model card: radflow-model v0.1.0" in card and "not promoted to prod" in card
    assert "| test auc | >= 0.750 (register.min_auc) | 0.520 | FAIL |" in card
    assert "`models/model.pt` (md5)" in card and "git checkout radflow-model@v0.1.0" in card
    record = json.loads(at(toy_project, "radflow-model@v0.1.0", "reports/registration.json"))
    assert record["promote"] is False and record["gate"]["passed"] is False
    message = sh(toy_project, "git", "tag", "-l", "--format=%(contents)", "radflow-model@v0.1.0")
    assert "FAIL  test auc: 0.520" in message

    second = completed(toy_project)

    assert second.model_version is None and "model unchanged" in str(second.registration)
    assert tags(toy_project) == ["radflow-model@v0.1.0"]
    # the new run's record carries the card of the version whose weights it has
    assert at(toy_project, str(second.lineage_ref), "reports/model_card.md") == card


def test_the_gate_promotes_a_good_first_model_and_fails_closed_when_it_cannot_compare(
    toy_project: Path,
) -> None:
    good = completed(toy_project, "train.epochs=30")  # toy AUC 0.80

    assert good.model_version == "radflow-model@v0.1.0" and good.promoted == "radflow-model#prod#1"
    assert "gate passed, promoted to prod" in str(good.registration)
    assert in_stage(toy_project, "radflow-model", "prod").name == "v0.1.0"  # type: ignore[union-attr]

    # A better toy AUC, but the toy's model files are not networks: the production model cannot be
    # scored on this run's test split, so there is no evidence it is no worse, and no promotion.
    better = completed(toy_project, "train.epochs=40")

    assert better.model_version == "radflow-model@v0.2.0" and better.promoted is None
    assert "AUC minus v0.1.0's: not scored: the weights of v0.1.0 are not a model file" in str(
        better.registration
    )
    assert in_stage(toy_project, "radflow-model", "prod").name == "v0.1.0"  # type: ignore[union-attr]
    card = at(toy_project, "radflow-model@v0.2.0", "reports/model_card.md")
    assert "against v0.1.0, the version in prod" in card


def test_promote_never_registers_without_promoting(toy_project: Path) -> None:
    summary = completed(toy_project, "train.epochs=30", "register.promote=never", "register.model=toy-net")

    assert summary.model_version == "toy-net@v0.1.0" and summary.promoted is None
    assert "register.promote is 'never'" in str(summary.registration)
    assert tags(toy_project) == ["toy-net@v0.1.0"]


def paused_then_answered(root: Path, answer: dict[str, object], *overrides: str) -> RunSummary:
    """Run the flow in a thread; once it pauses for approval, answer its Resume form as the UI does."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType

    done: dict[str, RunSummary] = {}
    runner = threading.Thread(target=lambda: done.setdefault("summary", completed(root, *overrides)))
    runner.start()
    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"])))
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 300
        while not (runs := client.read_flow_runs(flow_run_filter=paused)):
            assert runner.is_alive() and time.monotonic() < deadline, "the run never paused for approval"
            time.sleep(1)
        assert len(runs) == 1
        # what the reviewer reads above the form
        keyset = runs[0].state.state_details.run_input_keyset  # type: ignore[union-attr]
        assert keyset is not None
        description = client.read_flow_run_input(runs[0].id, keyset["description"])
        assert "passed radflow's gate" in description and "model-card" in description
        assert not tags(root)[1:], "nothing may be promoted before the answer"
        client.resume_flow_run(runs[0].id, run_input=answer)
    runner.join(timeout=300)
    return done["summary"]


def test_promote_approve_waits_for_a_reviewer_and_names_them_in_the_promotion(toy_project: Path) -> None:
    approve = {"approve": True, "reviewer": "Dr Ada Reviewer", "note": "card\nchecked"}
    summary = paused_then_answered(toy_project, approve, "train.epochs=30", "register.promote=approve")

    assert summary.model_version == "radflow-model@v0.1.0" and summary.promoted == "radflow-model#prod#1"
    expected = "radflow-model@v0.1.0: gate passed, approved by Dr Ada Reviewer, promoted to prod"
    assert summary.registration == expected
    assert tags(toy_project) == ["radflow-model#prod#1", "radflow-model@v0.1.0"]
    message = sh(toy_project, "git", "tag", "-l", "--format=%(contents)", "radflow-model#prod#1")
    assert "approved by Dr Ada Reviewer: card checked (radflow's gate: 1 of 1 checks passed)" in message
    card = at(toy_project, "radflow-model@v0.1.0", "reports/model_card.md")
    assert "promotion to prod awaits a reviewer's approval" in card


def test_a_declined_version_stays_registered_and_unpromoted(toy_project: Path) -> None:
    decline = {"approve": False, "reviewer": "Dr Ada Reviewer", "note": "site B sensitivity too low"}
    summary = paused_then_answered(toy_project, decline, "train.epochs=30", "register.promote=approve")

    assert summary.model_version == "radflow-model@v0.1.0" and summary.promoted is None
    assert "Dr Ada Reviewer declined its promotion to prod: site B sensitivity too low" in str(
        summary.registration
    )
    assert tags(toy_project) == ["radflow-model@v0.1.0"]


def test_a_version_nobody_approves_in_time_stays_unpromoted_and_the_run_says_so(toy_project: Path) -> None:
    summary = completed(
        toy_project, "train.epochs=30", "register.promote=approve", "register.approval_timeout_h=0.003"
    )

    assert summary.model_version == "radflow-model@v0.1.0" and summary.promoted is None
    assert "nobody approved it within 0.003 h" in str(summary.registration)
    assert tags(toy_project) == ["radflow-model@v0.1.0"]


def test_approve_on_a_temporary_server_does_not_wait_for_a_reviewer_who_cannot_come(
    toy_project: Path, tmp_path: Path
) -> None:
    """`radflow run` with no PREFECT_API_URL: nobody can open the temporary server's UI, so no pause."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    command = ["radflow.cli", "run", "--set=train.epochs=30", "--set=register.promote=approve"]
    proc = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=toy_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no Prefect server to ask: `gto assign radflow-model --version v0.1.0 --stage prod`" in proc.stdout
    assert tags(toy_project) == ["radflow-model@v0.1.0"]


def test_radflow_models_lists_versions_with_stage_auc_and_gate(toy_project: Path) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    runner = CliRunner()
    assert "no version of radflow-model is registered yet" in runner.invoke(app, ["models"]).output
    completed(toy_project)  # v0.1.0: AUC 0.52, below the floor
    completed(toy_project, "train.epochs=30")  # v0.2.0: AUC 0.80, promoted

    result = runner.invoke(app, ["models"], terminal_width=200)

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "v0." in line]
    assert len(lines) == 2
    assert "v0.2.0" in lines[0] and "prod" in lines[0] and "0.800" in lines[0] and "passed" in lines[0]
    assert "v0.1.0" in lines[1] and "0.520" in lines[1] and "not passed" in lines[1]


def test_the_dry_run_says_what_the_gate_would_decide_and_tags_nothing(
    toy_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    from tasks.register import main

    completed(toy_project)
    main([])
    assert "model unchanged: its weights are radflow-model@v0.1.0" in capsys.readouterr().out

    params = toy_project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 2", "epochs: 30"))
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=toy_project, check=True)
    main([])

    out = capsys.readouterr().out
    assert "register (dry run): radflow-model@v0.2.0: gate passed" in out and "promoted to prod" in out
    assert tags(toy_project) == ["radflow-model@v0.1.0"]
    assert "radflow-model v0.2.0" in (toy_project / "reports/model_card.md").read_text()
