"""The retrain flow on a tiny DVC project: DVC decides what reruns, overrides stay out of the user's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from toyproject import sh, stage_runs

from flows.parameters import RetrainParameters
from flows.retrain import main, retrain
from flows.summary import RunSummary
from radflow.errors import ConfigError

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def run_flow(root: Path, *overrides: str, force: bool = False) -> Any:
    """Run the flow in ROOT and return its final state."""
    params = RetrainParameters(set=list(overrides), force=force)
    return retrain(params=params, project=str(root), return_state=True)


def completed(root: Path, *overrides: str) -> RunSummary:
    state = run_flow(root, *overrides)
    assert state.is_completed(), state.message
    summary = state.result()
    assert isinstance(summary, RunSummary)
    return summary


def outcomes(summary: RunSummary) -> dict[str, str]:
    return {s.name: s.outcome for s in summary.stages}


def git_state(root: Path) -> tuple[str, str, str]:
    """HEAD, the branch it is on, and `git status` — what a run must never change."""
    status = sh(root, "git", "status", "--porcelain", "--ignored=no")
    return sh(root, "git", "rev-parse", "HEAD"), sh(root, "git", "symbolic-ref", "HEAD"), status


def test_stages_run_in_order_then_a_second_run_skips_all(toy_project: Path) -> None:
    first = completed(toy_project)
    assert [s.name for s in first.stages] == ["ingest", "train", "evaluate"]
    assert set(outcomes(first).values()) == {"ran"}
    assert stage_runs(toy_project) == ["ingest", "train", "evaluate"]
    assert first.test_metrics is not None and first.test_metrics["auc"] == pytest.approx(0.52)
    assert (first.report, first.model) == ("reports/report.html", "models/model.pt")

    second = completed(toy_project)
    assert set(outcomes(second).values()) == {"skipped"}
    assert stage_runs(toy_project) == []


def test_changing_a_train_param_reruns_only_train_and_evaluate(toy_project: Path) -> None:
    completed(toy_project)
    stage_runs(toy_project)
    params = toy_project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 2", "epochs: 3"))

    summary = completed(toy_project)

    assert outcomes(summary) == {"ingest": "skipped", "train": "ran", "evaluate": "ran"}
    assert stage_runs(toy_project) == ["train", "evaluate"]


def test_overrides_run_in_a_worktree_and_leave_the_user_files_alone(toy_project: Path) -> None:
    completed(toy_project)  # in place: the shared cache now holds ingest's outputs
    before_params = (toy_project / "params.yaml").read_bytes()
    before_git = git_state(toy_project)
    stage_runs(toy_project)

    summary = completed(toy_project, "train.epochs=7")

    assert (toy_project / "params.yaml").read_bytes() == before_params
    assert git_state(toy_project) == before_git
    assert stage_runs(toy_project) == []  # nothing ran in the user's tree
    assert outcomes(summary) == {"ingest": "skipped", "train": "ran", "evaluate": "ran"}
    assert summary.workdir == f".radflow/runs/{summary.run_id}"
    assert summary.test_metrics is not None and summary.test_metrics["auc"] == pytest.approx(0.57)
    assert (toy_project / summary.workdir / "models/model.pt").read_text().startswith("epochs=7")
    # Unchanged outputs come from the shared DVC cache as links, not as a second copy of the data.
    assert (toy_project / summary.workdir / "data/ingest/manifest.txt").stat().st_nlink > 1
    # The lineage commit holds the run's params, lock and metrics, on top of the user's HEAD.
    ref = summary.lineage_ref
    assert ref == f"refs/radflow/runs/{summary.run_id}"
    assert "epochs: 7" in sh(toy_project, "git", "show", f"{ref}:params.yaml")
    assert '"auc": 0.57' in sh(toy_project, "git", "show", f"{ref}:reports/metrics.json")
    assert sh(toy_project, "git", "rev-parse", f"{ref}^") == before_git[0]  # HEAD, branch untouched
    files = sh(toy_project, "git", "ls-tree", "-r", "--name-only", ref).split()
    assert "dvc.lock" in files and not any(f.startswith(("inputs", "data/")) for f in files)


def test_a_misspelled_override_fails_in_one_sentence_before_anything_runs(toy_project: Path) -> None:
    with pytest.raises(ConfigError) as err:
        main(["train.epochz=3"])
    message = str(err.value)
    assert "'train.epochz' is not a known key" in message and "\n" not in message
    assert not (toy_project / "dvc.lock").exists() and stage_runs(toy_project) == []

    state = run_flow(toy_project, "train.epochz=3")  # the same check guards UI and scheduled runs
    assert state.is_failed() and "'train.epochz' is not a known key" in (state.message or "")
    assert stage_runs(toy_project) == []


def test_a_failing_stage_stops_the_run_with_its_sentence(toy_project: Path) -> None:
    state = run_flow(toy_project, "train.epochs=101")

    assert state.is_failed()
    assert state.message == "stage 'train' failed: train.epochs is too large for this toy; use 100 or fewer."
    assert not list((toy_project / ".radflow" / "runs").glob("*/reports/metrics.json"))


def test_artifacts_record_metrics_quarantine_summary_and_progress(toy_project: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    summary = completed(toy_project)

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[summary.flow_run_id]))
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) >= {
        "retrain-test-metrics",
        "retrain-summary",
        "retrain-quarantine",
        "retrain-quarantined-files",
        "retrain-progress",
    }
    metrics = by_key["retrain-test-metrics"].data
    assert isinstance(metrics, str) and '"metric": "auc"' in metrics and "0.42" in metrics
    quarantine = by_key["retrain-quarantine"].data
    assert '"reason": "NOT_DICOM", "files": 2' in str(quarantine)
    listed = str(by_key["retrain-quarantined-files"].data)  # the toy's paths count as redacted
    assert '"path": "b/3", "reason": "LOCALIZER"' in listed and "all 3" in str(
        by_key["retrain-quarantined-files"].description
    )
    markdown = str(by_key["retrain-summary"].data)
    assert "| train | ran |" in markdown and "auc: 0.520 (95% CI 0.420-0.570)" in markdown
    assert by_key["retrain-progress"].data == 100.0


def test_training_epochs_move_the_progress_artifact_within_the_stage() -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    from flows.artifacts import PROGRESS_KEY, StageProgress

    @flow
    def a_run(lines: list[str]) -> str:
        progress = StageProgress(4)
        progress.advance("ingest", "ran")
        for line in lines:
            progress.within("train", line)
        return str(flow_run.get_id())

    run_id = a_run(
        [
            "train: 109 train / 38 val samples",  # not an epoch line: nothing moves
            "train: epoch 1/3 (network 2 of 2) done: train loss 0.5, ...",
        ]
    )
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    progress = next(a for a in found if a.key == PROGRESS_KEY)
    # one stage of four done, then the second network's first epoch of three: (1 + (1 + 1/3) / 2) / 4
    assert progress.data == pytest.approx(100 * (1 + (1 + 1 / 3) / 2) / 4)
    assert progress.description == "1 of 4 DVC stages done; train: epoch 1/3 of network 2/2"


def test_main_prints_the_auc_and_where_the_report_and_model_are(
    toy_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([])

    out = capsys.readouterr().out
    assert "test AUC 0.520 (95% CI 0.420-0.570), n=20" in out
    assert "report: reports/report.html" in out and "model:  models/model.pt" in out


def test_ingest_is_retried_after_a_transient_failure(
    toy_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.retrain

    monkeypatch.setattr(flows.retrain, "RETRY_DELAY_SECONDS", 0)
    (toy_project / "fail-once").touch()

    summary = completed(toy_project)

    assert outcomes(summary)["ingest"] == "ran" and not (toy_project / "fail-once").exists()
    assert stage_runs(toy_project) == ["ingest", "train", "evaluate"]
