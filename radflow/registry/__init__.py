"""Model registration: decide a run's version, gate its promotion, write its card, tag it (GTO).

`assess` runs before the run's lineage commit and writes reports/model_card.md and
reports/registration.json, so both are part of what the version tags; `record` then tags that commit.
No Prefect here: the retrain flow and `python -m tasks.register` call these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radflow.config import RegisterParams
from radflow.errors import InputError, RadflowError
from radflow.registry import versions
from radflow.registry.card import CardInputs, render
from radflow.registry.files import json_object, read_json, read_text
from radflow.registry.gate import Gate, comparison_check, floor_checks, unscorable_check

CARD_FILE = Path("reports/model_card.md")
RECORD_FILE = Path("reports/registration.json")
CLEAN_DIR = Path("data/clean")
SPLIT_FILE = Path("data/split/split.parquet")
METRICS_FILE = Path("reports/metrics.json")
INPUT_KEYS = ("modalities", "spatial_size")  # train.* settings that change what the model takes as input


@dataclass
class Assessment:
    """What registration will do with a run's model, and why."""

    model: str
    stage: str
    version: str | None  # the version this run's model becomes; None when its weights are already registered
    same_as: str | None = None  # the registered version with the very same weights
    model_md5: str | None = None
    gate: Gate = field(default_factory=Gate)
    promote: bool = False
    awaiting_approval: bool = False  # passed the gate; promote: approve leaves the promotion to a reviewer
    reasons: list[str] = field(default_factory=list)  # why it is not promoted

    @property
    def tag(self) -> str:
        return f"{self.model}@{self.version}"

    def describe(self) -> str:
        """One line for logs and the terminal."""
        if self.version is None:
            return f"model unchanged: its weights are {self.model}@{self.same_as}; nothing new to register"
        if self.promote:
            return f"{self.model}@{self.version}: gate passed, promoted to {self.stage}"
        if self.awaiting_approval:
            return f"{self.tag}: gate passed, registered; promotion to {self.stage} awaits approval"
        why = "; ".join(self.reasons)
        return f"{self.model}@{self.version}: registered, not promoted to {self.stage} ({why})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stage": self.stage,
            "version": self.version,
            "same_as": self.same_as,
            "model_md5": self.model_md5,
            "promote": self.promote,
            "awaiting_approval": self.awaiting_approval,
            "reasons": self.reasons,
            "gate": self.gate.to_dict(),
        }


@dataclass(frozen=True)
class Registration:
    """The tags written for a run."""

    version_tag: str | None
    stage_tag: str | None


def assess(project: Path, workdir: Path, params: RegisterParams, code_commit: str | None) -> Assessment:
    """Pick the version, run the gate against the model in `params.stage`, write the card and record."""
    md5 = versions.locked_md5(read_text(workdir / "dvc.lock"))
    if md5 is None:
        raise InputError(f"{workdir / 'dvc.lock'} records no {versions.MODEL_OUT}; run the pipeline first.")
    registry = versions.snapshot(project, params.model)
    for old in registry.versions:
        if versions.locked_md5(versions.show_file(project, old.commit, "dvc.lock")) == md5:
            _restore(project, old.commit, workdir)
            return Assessment(params.model, params.stage, None, same_as=old.name, model_md5=md5)
    previous = registry.latest
    major = previous is not None and _inputs(
        versions.show_file(project, previous.commit, "params.yaml")
    ) != _inputs(read_text(workdir / "params.yaml"))
    assessment = Assessment(
        params.model,
        params.stage,
        versions.next_version(previous.name if previous else None, major),
        model_md5=md5,
        gate=_gate(project, workdir, params, registry.in_stage(params.stage)),
    )
    assessment.promote = params.promote == "gate" and assessment.gate.passed
    assessment.awaiting_approval = params.promote == "approve" and assessment.gate.passed
    assessment.reasons = assessment.gate.failures()
    if params.promote == "never":
        assessment.reasons.append("register.promote is 'never'")
    _write(workdir, params, assessment, code_commit)
    return assessment


def record(project: Path, commit: str, assessment: Assessment) -> Registration:
    """Tag COMMIT (the run's lineage commit) as the new version and, if it passed, promote it."""
    if assessment.version is None:
        return Registration(None, None)
    tag = versions.register(project, assessment.model, commit, assessment.version, _message(assessment))
    stage_tag = None
    if assessment.promote:
        checks = len(assessment.gate.checks)
        note = f"promoted by radflow's gate: {checks} of {checks} checks passed"
        stage_tag = versions.assign(project, assessment.model, assessment.stage, assessment.version, note)
    return Registration(tag, stage_tag)


def approve(project: Path, assessment: Assessment, reviewer: str, note: str) -> str:
    """A reviewer approved ASSESSMENT's version: assign it to the stage, the tag naming them; the tag."""
    assert assessment.version is not None and assessment.awaiting_approval
    checks = len(assessment.gate.checks)
    why = f": {note}" if note else ""
    message = f"approved by {reviewer}{why} (radflow's gate: {checks} of {checks} checks passed)"
    return versions.assign(project, assessment.model, assessment.stage, assessment.version, message)


def listing(project: Path, model: str) -> list[dict[str, Any]]:
    """Every version of MODEL, newest first: its stages now, test AUC and gate verdict (from its commit)."""
    rows = []
    for version in versions.snapshot(project, model).rows:
        commit = version["commit_hexsha"]
        test = json_object(versions.show_file(project, commit, METRICS_FILE.as_posix())).get("test") or {}
        gate = (json_object(versions.show_file(project, commit, RECORD_FILE.as_posix())).get("gate")) or {}
        stages = [s["stage"] for s in version.get("stages") or [] if s.get("is_active")]
        created = version.get("created_at")
        rows.append(
            {
                "version": version["version"],
                "stages": ", ".join(stages),
                "registered": f"{created:%Y-%m-%d %H:%M}" if created else "",
                "test AUC": f"{test['auc']:.3f}" if isinstance(test.get("auc"), int | float) else "n/a",
                "gate": "passed" if gate.get("passed") else ("not passed" if gate else "n/a"),
                "commit": commit[:10],
            }
        )
    return rows


def _gate(project: Path, workdir: Path, params: RegisterParams, current: versions.Version | None) -> Gate:
    """Floors on this run's test metrics; then, when CURRENT holds the stage, the comparison with it."""
    metrics = read_json(workdir / METRICS_FILE)
    test = metrics.get("test")
    if not isinstance(test, dict):
        raise InputError(f"{workdir / METRICS_FILE} has no test metrics; run the evaluate stage first.")
    gate = Gate(checks=floor_checks(test, params))
    if current is None:
        return gate  # the first model of this stage: the floors alone decide
    gate.reference = current.name
    try:
        from radflow.registry.score import compare_on_test

        weights = versions.model_bytes(project, current.commit)
        diff = compare_on_test(
            workdir / versions.MODEL_OUT,
            weights,
            current.name,
            workdir / CLEAN_DIR,
            workdir / SPLIT_FILE,
            params.bootstrap,
            params.seed,
        )
    except RadflowError as err:
        gate.checks.append(unscorable_check(current.name, f"not scored: {err}"))
    except Exception as err:  # a model file this code cannot read: no evidence, no promotion
        gate.checks.append(
            unscorable_check(current.name, f"not scored: {type(err).__name__}: {str(err)[:200]}")
        )
    else:
        gate.comparison = diff
        gate.checks.append(comparison_check(diff, current.name, params))
    return gate


def _write(workdir: Path, params: RegisterParams, assessment: Assessment, code_commit: str | None) -> None:
    assert assessment.version is not None
    if assessment.promote:
        status = f"promoted to {assessment.stage} by the gate"
    elif assessment.awaiting_approval:
        status = (
            f"gate passed; promotion to {assessment.stage} awaits a reviewer's approval (the promotion "
            f"tag {assessment.model}#{assessment.stage}#N names who approved it)"
        )
    else:
        status = f"registered, not promoted to {assessment.stage}: {'; '.join(assessment.reasons)}"
    card = render(
        assessment.model,
        assessment.version,
        status,
        params.intended_use,
        {**assessment.gate.to_dict(), "stage": assessment.stage},
        CardInputs.read(workdir, code_commit),
    )
    (workdir / CARD_FILE).parent.mkdir(parents=True, exist_ok=True)
    (workdir / CARD_FILE).write_text(card, encoding="utf-8")
    (workdir / RECORD_FILE).write_text(json.dumps(assessment.to_dict(), indent=2) + "\n", encoding="utf-8")


def _restore(project: Path, commit: str, workdir: Path) -> None:
    """The card and gate record of the version with these weights, in place of whatever is there."""
    for rel in (CARD_FILE, RECORD_FILE):
        text = versions.show_file(project, commit, rel.as_posix())
        if text is None:
            (workdir / rel).unlink(missing_ok=True)
        else:
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_text(text, encoding="utf-8")


def _message(assessment: Assessment) -> str:
    """The annotated tag's message: the decision and the gate's checks, one per line."""
    lines = [assessment.describe(), ""]
    lines += [
        f"{'pass' if c.passed else 'FAIL'}  {c.name}: {c.achieved} (required {c.required})"
        for c in assessment.gate.checks
    ]
    return "\n".join(lines)


def _inputs(params_text: str | None) -> tuple[Any, ...]:
    train = (yaml.safe_load(params_text or "") or {}).get("train") or {}
    return tuple(json.dumps(train.get(k)) for k in INPUT_KEYS)
