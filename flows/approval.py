"""A reviewer's sign-off before promotion (`register.promote: approve`).

A version that passes the gate is registered, then the run pauses: the Prefect UI shows it as
Paused with a Resume form (approve or decline, the reviewer's name, a note). Approved, the version
is assigned to the stage and the promotion tag names the reviewer; declined, or not answered within
`register.approval_timeout_h`, it stays registered and unpromoted. The pause happens after the
run's lock is released, so a waiting approval holds up no other run.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from radflow.config import RegisterParams, load_section
from radflow.registry import CARD_FILE, Assessment, approve

__all__ = ["Approval", "await_approval"]

POLL_SECONDS = 5


class Approval(RunInput):
    """The Resume form of a run whose model awaits approval."""

    approve: bool = Field(default=False, description="Promote this version to the stage.")
    reviewer: str = Field(
        min_length=1, max_length=100, description="Your name: the promotion tag records who approved it."
    )
    note: str = Field(default="", max_length=500, description="Why, in a sentence (kept in the tag).")


def _checks(n: int) -> str:
    return f"{n} check" if n == 1 else f"{n} checks"


def reviewable() -> bool:
    """Is this run on a Prefect server a reviewer can open? A temporary one (no PREFECT_API_URL) is not."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def _resume_unanswered() -> None:
    """Take the run out of its expired pause, so it ends as what it is: done, its version unpromoted.

    Prefect would fail any later transition out of an expired pause ("... never resumed"), though
    an unanswered approval is an outcome like a declined one, not a failed run.
    """
    from prefect import get_client
    from prefect.runtime import flow_run
    from prefect.states import Running

    run_id = flow_run.get_id()
    assert run_id is not None  # a pause only happens inside a flow run
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Running(), force=True)


@task(name="promote", task_run_name="promote", cache_policy=NO_CACHE, persist_result=False)
def promote_task(root: Path, assessment: Assessment, reviewer: str, note: str) -> str:
    """Assign the approved version to its stage; the promotion tag."""
    return approve(root, assessment, reviewer, note)


def await_approval(root: Path, workdir: Path, assessment: Assessment) -> dict[str, str | None]:
    """Pause for a reviewer, then promote or not; the run summary's registry fields that change."""
    logger = get_run_logger()
    params = load_section("register", RegisterParams, workdir / "params.yaml")
    tag, stage = assessment.tag, assessment.stage
    by_hand = f"gto assign {assessment.model} --version {assessment.version} --stage {stage}"
    if not reviewable():
        logger.warning(
            f"{tag} passed the gate and awaits approval, but this run's temporary Prefect server has no "
            f"UI a reviewer can reach (PREFECT_API_URL is unset): promote it with `{by_hand}`."
        )
        return {"registration": f"{assessment.describe()} (no Prefect server to ask: `{by_hand}`)"}
    hours = params.approval_timeout_h
    logger.info(f"{tag} passed the gate: waiting up to {hours:g} h for a reviewer (Resume in the Prefect UI)")
    card = (workdir.relative_to(root) / CARD_FILE).as_posix()
    form = Approval.with_initial_data(
        description=(
            f"**{tag}** passed radflow's gate ({_checks(len(assessment.gate.checks))}; see the `model-card` "
            f"artifact, or `{card}` in the project). Approve to promote it to **{stage}**; decline to "
            "leave it registered and unpromoted."
        ),
        approve=False,
    )
    try:
        decision = pause_flow_run(
            wait_for_input=form, timeout=round(hours * 3600), poll_interval=POLL_SECONDS, key="approval"
        )
    except FlowPauseTimeout:
        _resume_unanswered()
        logger.warning(f"nobody approved {tag} within {hours:g} h: it stays unpromoted (`{by_hand}`)")
        return {"registration": f"{tag}: gate passed, registered; nobody approved it within {hours:g} h"}
    reviewer, note = decision.reviewer.strip(), " ".join(decision.note.split())
    if decision.approve:
        stage_tag = promote_task(root, assessment, reviewer, note)
        logger.info(f"{tag} approved by {reviewer}: promoted to {stage} ({stage_tag})")
        line = f"{tag}: gate passed, approved by {reviewer}, promoted to {stage}"
        return {"registration": line, "promoted": stage_tag}
    why = f": {note}" if note else ""
    logger.info(f"{reviewer} declined promoting {tag} to {stage}{why}")
    line = f"{tag}: gate passed, registered; {reviewer} declined its promotion to {stage}{why}"
    return {"registration": line}
