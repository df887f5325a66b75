"""Prefect artifacts of a retrain run: progress per stage (and per epoch in training), the test
metrics table, a markdown summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.summary import RunSummary, markdown, metric_text, metrics_table

# Keyed artifacts: the UI shows each key's history across runs.
PROGRESS_KEY = "retrain-progress"
METRICS_KEY = "retrain-test-metrics"
SUMMARY_KEY = "retrain-summary"
QUARANTINE_KEY = "retrain-quarantine"
QUARANTINED_FILES_KEY = "retrain-quarantined-files"
MODEL_CARD_KEY = "model-card"
PULL_KEY = "pacs-pull-progress"


# The train stage's log line per epoch (radflow.models.fit): "train: epoch 4/20 (network 2 of 3) done: ..."
_EPOCH = re.compile(r"^train: epoch (\d+)/(\d+)(?: \(network (\d+) of (\d+)\))? done")


def stage_fraction(line: str) -> tuple[float, str] | None:
    """How far a stage is, from one line of its output, and what to show; None for other lines."""
    found = _EPOCH.match(line)
    if found is None:
        return None
    epoch, epochs = int(found[1]), max(1, int(found[2]))
    network, networks = int(found[3] or 1), max(1, int(found[4] or 1))
    fraction = min(1.0, ((network - 1) + min(epoch, epochs) / epochs) / networks)
    of = f" of network {network}/{networks}" if networks > 1 else ""
    return fraction, f"epoch {epoch}/{epochs}{of}"


class StageProgress:
    """A progress artifact moved forward as each DVC stage finishes, and within training per epoch."""

    def __init__(self, stages: int) -> None:
        self.stages = max(stages, 1)
        self.done = 0
        self.artifact_id = cast(
            UUID,
            create_progress_artifact(0.0, key=PROGRESS_KEY, description=f"0 of {stages} DVC stages done"),
        )

    def within(self, stage: str, line: str) -> None:
        """Move within the running stage when its output line tells how far it is (training epochs)."""
        found = stage_fraction(line)
        if found is None:
            return
        fraction, where = found
        update_progress_artifact(
            self.artifact_id,
            100.0 * (self.done + fraction) / self.stages,
            description=f"{self.done} of {self.stages} DVC stages done; {stage}: {where}",
        )

    def advance(self, stage: str, outcome: str) -> None:
        """Record one more finished stage."""
        self.done += 1
        update_progress_artifact(
            self.artifact_id,
            100.0 * self.done / self.stages,
            description=f"{self.done} of {self.stages} DVC stages done (last: {stage} {outcome})",
        )


class PullProgress:
    """A progress artifact over the studies a PACS pull goes through (created on the first study)."""

    EVERY = 20  # studies between updates: a pull of thousands of studies must not flood the API

    def __init__(self) -> None:
        self.artifact_id: UUID | None = None

    def update(self, done: int, total: int) -> None:
        if done % self.EVERY and done != total:
            return
        percent, text = 100.0 * done / max(total, 1), f"{done} of {total} studies checked or fetched"
        if self.artifact_id is None:
            self.artifact_id = cast(UUID, create_progress_artifact(percent, key=PULL_KEY, description=text))
        else:
            update_progress_artifact(self.artifact_id, percent, description=text)


def publish(summary: RunSummary) -> None:
    """The metrics table, the quarantine counts and the markdown summary of a finished run."""
    if summary.test_metrics:
        create_table_artifact(
            metrics_table(summary.test_metrics),
            key=METRICS_KEY,
            description=f"Test metrics of run {summary.run_id}: "
            f"AUC {metric_text(summary.test_metrics, 'auc')}",
        )
    if summary.quarantine:
        create_table_artifact(
            [{"reason": reason, "files": count} for reason, count in summary.quarantine.items()],
            key=QUARANTINE_KEY,
            description=f"Files quarantined by the clean stage in run {summary.run_id}, by reason",
        )
    if summary.quarantined_files:
        total, shown = sum(summary.quarantine.values()), len(summary.quarantined_files)
        first = f"the first {shown} of {total}" if shown < total else f"all {total}"
        create_table_artifact(
            summary.quarantined_files,
            key=QUARANTINED_FILES_KEY,
            description=f"Quarantined files of run {summary.run_id} ({first}; paths redacted): "
            "`radflow locate data/ingest PATH` finds the real file",
        )
    create_markdown_artifact(markdown(summary), key=SUMMARY_KEY, description=f"Retrain run {summary.run_id}")


def publish_card(card: Path, decision: str) -> None:
    """The new version's model card, as markdown (its history is the registry's in the UI)."""
    create_markdown_artifact(card.read_text(encoding="utf-8"), key=MODEL_CARD_KEY, description=decision)
