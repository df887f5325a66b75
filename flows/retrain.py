"""The `retrain` flow: one Prefect task per DVC stage, so DVC decides what reruns.

`radflow run` and `radflow demo` call `main()`. With no server configured, Prefect starts a temporary
one for the run; with PREFECT_API_URL set, the run is recorded on that server.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run
from prefect.states import Failed, State

from flows.approval import await_approval
from flows.artifacts import PullProgress, StageProgress, publish, publish_card
from flows.lineage import isolated_workdir, record_lineage
from flows.parameters import RetrainParameters, parameters_from, validated_overrides
from flows.pipeline import read_pipeline, repro_stage, up_to_date
from flows.summary import (
    MODEL_FILE,
    REPORT_FILE,
    RunSummary,
    StageResult,
    quarantine_counts,
    quarantined_files,
    read_test_metrics,
)
from flows.workspace import git, run_lock
from radflow.config import load_params
from radflow.errors import RadflowError
from radflow.registry import CARD_FILE, Assessment
from radflow.registry.versions import is_git_repo
from tasks.register import record as record_version
from tasks.register import run as assess_model

USER_ERROR = "UserError"  # the state name of a stage that failed on bad input: retrying will not help
RETRIED_STAGES = {"ingest": 2}  # ingest reads a network share or PACS export: worth a second try
RETRY_DELAY_SECONDS = 10
DEFAULTS = RetrainParameters()  # no overrides: the project's params.yaml as it is


class RunFailed(RadflowError):
    """The retrain flow did not complete; the message is its failed stage's sentence."""


@task(name="dvc-stage", task_run_name="{stage}", cache_policy=NO_CACHE, persist_result=False)
def dvc_stage(
    stage: str,
    workdir: Path,
    force: bool = False,
    unchanged: bool = False,
    progress: StageProgress | None = None,
) -> StageResult | State[Any]:
    """Run one DVC stage with `dvc repro --single-item`, streaming its output into the run's log
    (and, from lines that tell how far the stage is, into the run's progress artifact)."""
    if unchanged:  # DVC's status already found it and everything before it unchanged
        get_run_logger().info(f"Stage '{stage}' didn't change, skipping (DVC status)")
        return StageResult(name=stage, outcome="skipped", seconds=0.0)
    logger = get_run_logger()

    def on_line(line: str) -> None:
        logger.info(line)
        if progress is not None:
            progress.within(stage, line)

    run = repro_stage(workdir, stage, force=force, on_line=on_line)
    if run.outcome == "failed":
        user_error = any(line.startswith("error: ") for line in run.lines)
        return Failed(message=run.error, name=USER_ERROR if user_error else "Failed")
    return StageResult(name=stage, outcome=run.outcome, seconds=round(run.seconds, 2))


def _transient(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed stage unless it failed on the user's input (config, missing files)."""
    return state.name != USER_ERROR


@flow(name="retrain", validate_parameters=True)
def retrain(params: RetrainParameters = DEFAULTS, project: str = ".") -> RunSummary | State[Any]:
    """Retrain: validate overrides, run every DVC stage as a task, record lineage, publish artifacts.

    Args:
        params: Parameter overrides for this run only (they never edit params.yaml) and `force`.
        project: The radflow project folder (params.yaml, dvc.yaml), on the machine that runs the flow.
    """
    try:
        return _retrain(params, Path(project).resolve())
    except RadflowError as err:  # one sentence in the run's state, not a traceback
        get_run_logger().error(str(err))
        return Failed(message=str(err))


def _retrain(params: RetrainParameters, root: Path) -> RunSummary | State[Any]:
    logger = get_run_logger()
    overrides = validated_overrides(root / "params.yaml", params)
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{(flow_run.get_id() or 'local')[:8]}"
    with run_lock(root, logger.info):
        run_params = load_params(root / "params.yaml", overrides)
        if run_params.pacs.url is not None:  # the pull target must exist before a worktree links it
            (root / run_params.ingest.source).mkdir(parents=True, exist_ok=True)
        workdir = isolated_workdir(root, run_id, overrides, logger.info) if overrides else root
        if run_params.pacs.url is not None:
            pulled = _pull(workdir)
            if not pulled.is_completed():
                return Failed(message=pulled.message or "the PACS pull did not complete.")
        stages = read_pipeline(workdir).stages
        unchanged = set() if params.force else up_to_date(workdir, [s.name for s in stages])
        progress = StageProgress(len(stages))
        results: list[StageResult] = []
        for stage in stages:
            retries = RETRIED_STAGES.get(stage.name, 0)
            runner = dvc_stage.with_options(
                retries=retries, retry_delay_seconds=RETRY_DELAY_SECONDS, retry_condition_fn=_transient
            )
            state = runner(
                stage.name, workdir, params.force, stage.name in unchanged, progress, return_state=True
            )
            if not state.is_completed():
                return Failed(message=state.message or f"stage '{stage.name}' did not complete.")
            results.append(cast(StageResult, state.result()))
            progress.advance(stage.name, results[-1].outcome)
        summary = _summarise(root, workdir, run_id, overrides, results)
        fields, awaiting = register_run(root, workdir, summary)
        summary = summary.model_copy(update=fields)
    if awaiting is not None:  # after the lock: a reviewer may take hours, other runs need not wait
        summary = summary.model_copy(update=await_approval(root, workdir, awaiting))
    publish(summary)
    return summary


def _pull(workdir: Path) -> State[Any]:
    """The pull task, retried like ingest when the PACS drops out (never when it refuses us)."""
    runner = pull_task.with_options(
        retries=RETRIED_STAGES["ingest"],
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        retry_condition_fn=_transient,
    )
    return cast(State[Any], runner(workdir, return_state=True))


@task(name="pull", task_run_name="pull", cache_policy=NO_CACHE, persist_result=False)
def pull_task(workdir: Path) -> str | State[Any]:
    """Fetch the PACS studies (params pacs.*) not yet whole in ingest.source, before DVC looks at it."""
    from radflow.dicom.dicomweb import CredentialsRefused, pull

    params = load_params(workdir / "params.yaml")
    progress = PullProgress()
    try:
        result = pull(params.pacs, workdir / params.ingest.source, on_progress=progress.update)
    except CredentialsRefused as err:
        return Failed(message=str(err), name=USER_ERROR)
    for failure in sorted(set(result.failures)):
        get_run_logger().warning(failure)
    get_run_logger().info(result.describe())
    return result.describe()


@task(name="register", task_run_name="register", cache_policy=NO_CACHE, persist_result=False)
def register_run(
    root: Path, workdir: Path, summary: RunSummary
) -> tuple[dict[str, str | None], Assessment | None]:
    """Gate and card, the run's lineage commit (which holds them), then the version tags (GTO).

    Returns the summary's registry fields (lineage_ref, registration, model_version, promoted,
    model_card), and the assessment when its promotion awaits a reviewer (register.promote: approve).
    """
    logger = get_run_logger()
    if not is_git_repo(root):
        logger.warning(
            f"{root.name} is not a git repository: the run is not recorded and its model not registered"
        )
        return {}, None
    try:
        assessment = assess_model(root, workdir)
    finally:  # the run is recorded even when registration cannot proceed
        lineage_ref = record_lineage(root, workdir, summary.run_id, _commit_message(summary))
    assert lineage_ref is not None
    registration = record_version(root, git(root, "rev-parse", lineage_ref), assessment)
    logger.info(f"register: {assessment.describe()}")
    card = None
    if assessment.version is not None:
        card = (workdir.relative_to(root) / CARD_FILE).as_posix()
        publish_card(workdir / CARD_FILE, assessment.describe())
    fields = {
        "lineage_ref": lineage_ref,
        "registration": assessment.describe(),
        "model_version": registration.version_tag,
        "promoted": registration.stage_tag,
        "model_card": card,
    }
    return fields, assessment if assessment.awaiting_approval else None


def _summarise(
    root: Path, workdir: Path, run_id: str, overrides: dict[str, Any], results: list[StageResult]
) -> RunSummary:
    """What the run produced, with paths relative to the project."""
    rel = workdir.relative_to(root)
    return RunSummary(
        run_id=run_id,
        flow_run_id=flow_run.get_id(),
        workdir=rel.as_posix(),
        overrides=overrides,
        stages=results,
        test_metrics=read_test_metrics(workdir),
        report=(rel / REPORT_FILE).as_posix() if (workdir / REPORT_FILE).is_file() else None,
        model=(rel / MODEL_FILE).as_posix() if (workdir / MODEL_FILE).is_file() else None,
        quarantine=quarantine_counts(workdir),
        quarantined_files=quarantined_files(workdir),
    )


def _commit_message(summary: RunSummary) -> str:
    overrides = " ".join(f"{k}={v}" for k, v in summary.overrides.items()) or "none"
    return (
        f"radflow run {summary.run_id}\n\nstages: {summary.stage_line()}\noverrides: {overrides}\n"
        f"prefect-flow-run: {summary.flow_run_id}\n"
    )


def main(overrides: list[str], force: bool = False) -> None:
    """`radflow run --set k=v`: check overrides, run the flow, print the test AUC and where results are."""
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    root = Path.cwd()
    parameters = parameters_from(overrides, force=force)
    validated_overrides(Path("params.yaml"), parameters)  # a bad key stops here, before any server starts
    _check_server()
    settings: dict[Any, Any] = {}
    if "PREFECT_SERVER_ANALYTICS_ENABLED" not in os.environ:
        settings[PREFECT_SERVER_ANALYTICS_ENABLED] = False  # hospitals: no calls home
    if "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" not in os.environ:
        # a busy 2-core machine can take longer than the default 20 s to start the temporary server
        settings[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = 120
    # A stage that fails returns a Failed state, not an exception: Prefect's "retries exhausted" log
    # line then asks for a traceback that does not exist and prints "NoneType: None" under it.
    logging.getLogger("prefect.task_runs").addFilter(_no_empty_traceback)
    with temporary_settings(updates=settings):
        state = retrain(params=parameters, project=str(root), return_state=True)
    if not state.is_completed():
        raise RunFailed(state.message or "the retrain flow did not complete; see its log above.")
    summary = state.result()
    assert isinstance(summary, RunSummary)
    print(summary.describe())


def _check_server() -> None:
    """With PREFECT_API_URL set, fail in one sentence when nothing answers there."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return  # Prefect starts a temporary server for this run
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError:
        raise RunFailed(
            f"no Prefect server answers at PREFECT_API_URL={url}; run `prefect server start` or unset it."
        ) from None


def _no_empty_traceback(record: logging.LogRecord) -> bool:
    """Keep the record; drop an exc_info that holds no exception."""
    if record.exc_info and record.exc_info[0] is None:
        record.exc_info = None
    return True
