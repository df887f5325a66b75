"""What a retrain run produced, read from its files, and how it is told to people (terminal, artifacts)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

# The file contracts of docs/architecture.md: where a run's results are.
METRICS_FILE = Path("reports/metrics.json")
REPORT_FILE = Path("reports/report.html")
MODEL_FILE = Path("models/model.pt")
QUARANTINE_FILE = Path("data/clean/quarantine.csv")
SOURCE_FILE = Path("data/ingest/source.json")
LISTED_FILES = 500  # quarantined files listed in the UI; the CSV and HTML report have them all
HEADLINE = ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv")


class StageResult(BaseModel):
    """One DVC stage in one run."""

    name: str
    outcome: str  # ran, skipped, restored (from DVC's run cache) or failed
    seconds: float


class RunSummary(BaseModel):
    """The result of the retrain flow."""

    run_id: str
    flow_run_id: str | None = None
    workdir: str = Field(description="Where the stages ran, relative to the project ('.' = in place).")
    overrides: dict[str, Any] = {}
    stages: list[StageResult] = []
    test_metrics: dict[str, Any] | None = None
    report: str | None = None
    model: str | None = None
    lineage_ref: str | None = None
    registration: str | None = Field(default=None, description="What registration did, in one line.")
    model_version: str | None = Field(default=None, description="The version tag, e.g. radflow-model@v0.2.0.")
    promoted: str | None = Field(default=None, description="The promotion tag, e.g. radflow-model#prod#3.")
    model_card: str | None = None
    quarantine: dict[str, int] = {}
    quarantined_files: list[dict[str, str]] = Field(
        default=[], description="The first quarantined files (path, reason, detail) when paths are redacted."
    )

    def stage_line(self) -> str:
        """`ingest skipped, clean skipped, ...`."""
        return ", ".join(f"{s.name} {s.outcome}" for s in self.stages) or "no stages"

    def describe(self) -> str:
        """The few lines a person wants at the end of `radflow run`."""
        where = "in place" if self.workdir == "." else f"in {self.workdir}"
        lines = [f"run {self.run_id} ({where}): {self.stage_line()}"]
        if self.test_metrics:
            lines.append(
                f"test AUC {metric_text(self.test_metrics, 'auc')}, n={self.test_metrics.get('n', '?')}"
            )
        lines.append(f"report: {self.report or 'not written'}")
        lines.append(f"model:  {self.model or 'not written'}")
        if self.lineage_ref:
            lines.append(f"lineage: {self.lineage_ref}")
        if self.registration:
            lines.append(f"registry: {self.registration}")
        if self.model_card:
            lines.append(f"model card: {self.model_card}")
        return "\n".join(lines)


def metric_text(metrics: dict[str, Any], name: str) -> str:
    """`0.812 (95% CI 0.701-0.905)`, or the bare value when there is no interval."""
    value = metrics.get(name)
    if not isinstance(value, int | float):
        return "n/a"
    ci = (metrics.get("ci95") or {}).get(name)
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return f"{value:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
    return f"{value:.3f}"


def read_test_metrics(workdir: Path) -> dict[str, Any] | None:
    """The "test" object of reports/metrics.json, or None before evaluate has run."""
    path = workdir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        test = json.loads(path.read_text()).get("test")
    except (json.JSONDecodeError, AttributeError):
        return None
    return test if isinstance(test, dict) else None


def quarantine_counts(workdir: Path) -> dict[str, int]:
    """Quarantined files per reason code (counts only: no paths, nothing from a header)."""
    path = workdir / QUARANTINE_FILE
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        counts = Counter(row.get("reason") or "UNSPECIFIED" for row in csv.DictReader(fh))
    return dict(counts.most_common())


def quarantined_files(workdir: Path, limit: int = LISTED_FILES) -> list[dict[str, str]]:
    """The first `limit` quarantined files (path, reason, detail), only when ingest redacted the paths.

    With ingest.redact_paths off the paths are the source's own, which may name patients: then the
    UI gets the counts by reason only, and the files are in data/clean/quarantine.html.
    """
    path, source = workdir / QUARANTINE_FILE, workdir / SOURCE_FILE
    try:
        redacted = json.loads(source.read_text()).get("redact_paths") in (True, "all")
    except (OSError, ValueError, AttributeError):
        redacted = False
    if not redacted or not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [
            {"path": r.get("path", ""), "reason": r.get("reason", ""), "detail": r.get("detail", "")}
            for r in islice(csv.DictReader(fh), limit)
        ]


def metrics_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the metrics table artifact: metric, value, 95% CI."""
    ci95 = metrics.get("ci95") or {}
    rows = []
    for name in [*HEADLINE, *(k for k in metrics if k not in HEADLINE and k != "ci95")]:
        value = metrics.get(name)
        if isinstance(value, int | float):
            low, high = (ci95.get(name) or [None, None])[:2]
            rows.append({"metric": name, "value": round(value, 4), "ci95_low": low, "ci95_high": high})
    return rows


def markdown(summary: RunSummary) -> str:
    """The run summary artifact: stages, metrics with CIs, where the report and model are."""
    out = [f"# Retrain run `{summary.run_id}`", ""]
    out.append(f"Ran {'in place' if summary.workdir == '.' else f'in worktree `{summary.workdir}`'}.")
    if summary.overrides:
        out.append("Overrides: " + ", ".join(f"`{k}={v}`" for k, v in summary.overrides.items()) + ".")
    out += ["", "| stage | outcome | seconds |", "| --- | --- | ---: |"]
    out += [f"| {s.name} | {s.outcome} | {s.seconds:.1f} |" for s in summary.stages]
    if summary.test_metrics:
        out += ["", "## Test metrics", ""]
        out += [
            f"- {name}: {metric_text(summary.test_metrics, name)}"
            for name in HEADLINE
            if name in summary.test_metrics
        ]
    if summary.quarantine:
        out += ["", "## Quarantined files", ""]
        out += [f"- {reason}: {count}" for reason, count in summary.quarantine.items()]
    out += [
        "",
        f"Report: `{summary.report or 'not written'}`  ",
        f"Model: `{summary.model or 'not written'}`",
    ]
    if summary.lineage_ref:
        out.append(f"  \nLineage: `{summary.lineage_ref}` (`git checkout` it, then `dvc checkout`)")
    if summary.registration:
        out += ["", "## Registry", "", summary.registration]
    return "\n".join(out)
