"""Write an Evaluation to files: metrics.json (DVC metrics), subgroups.json, robustness.json,
plots/*.csv (DVC plots), figures/*.png and report.html.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radflow.metrics import figures
from radflow.metrics.evaluation import Evaluation
from radflow.metrics.gradcam import OUTCOMES
from radflow.metrics.plots import write_plot_data
from radflow.metrics.report import ReportContext, write_report


@dataclass(frozen=True)
class OutputPaths:
    """Where each artefact of the stage was written."""

    metrics: Path
    subgroups: Path
    robustness: Path
    plots: dict[str, Path]
    figures: dict[str, Path]
    report: Path

    def all_files(self) -> list[Path]:
        """Every file written, for checks and logs."""
        return [
            self.metrics,
            self.subgroups,
            self.robustness,
            *self.plots.values(),
            *self.figures.values(),
            self.report,
        ]


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf as null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write indented, key-ordered-as-given JSON with a trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return path


def metrics_payload(ev: Evaluation) -> dict[str, Any]:
    """metrics.json: flat `test` and `val` objects (test.auc, test.ci95.auc, ...) and the operating point."""
    point = ev.operating_point
    return {
        "test": ev.test,
        "val": ev.val,
        # the rule's plain-language description lives in the report, keeping `dvc metrics show` narrow
        "operating_point": {"method": point.method, "threshold": point.threshold},
    }


def write_outputs(
    ev: Evaluation, out_dir: Path, data_counts: pd.DataFrame, model_info: dict[str, Any]
) -> OutputPaths:
    """Write every artefact of the evaluate stage under `out_dir`."""
    threshold = ev.operating_point.threshold
    metrics = write_json(out_dir / "metrics.json", metrics_payload(ev))
    subgroups = write_json(
        out_dir / "subgroups.json",
        {
            "threshold": threshold,
            "groups": ev.subgroups.to_dict("records"),
        },
    )
    robustness = write_json(
        out_dir / "robustness.json",
        {
            "threshold": threshold,
            "conditions": ev.robustness.to_dict("records"),
        },
    )
    plots = write_plot_data(out_dir / "plots", ev.test_labels, ev.test_probs, threshold, ev.calibration)
    pngs = write_figures(ev, out_dir / "figures")
    context = ReportContext(data_counts=data_counts, model_info=model_info, figures=pngs)
    report = write_report(out_dir / "report.html", ev, context)
    return OutputPaths(metrics, subgroups, robustness, plots, pngs, report)


def write_figures(ev: Evaluation, fig_dir: Path) -> dict[str, Path]:
    """All PNGs; the folder is emptied first so no stale Grad-CAM of an earlier run survives."""
    if fig_dir.exists():
        shutil.rmtree(fig_dir)
    y, p, t = ev.test_labels, ev.test_probs, ev.operating_point.threshold
    paths = {
        "roc": figures.save(figures.roc_figure(y, p, t, ev.test["auc"]), fig_dir / "roc.png"),
        "pr": figures.save(figures.pr_figure(y, p, t), fig_dir / "pr.png"),
        "confusion": figures.save(figures.confusion_figure(y, p, t), fig_dir / "confusion.png"),
        "calibration": figures.save(
            figures.calibration_figure(ev.calibration, ev.test["ece"]), fig_dir / "calibration.png"
        ),
    }
    for outcome, examples in ev.gradcam.items():
        if not examples:
            continue
        fig = figures.gradcam_figure(
            [e.image for e in examples],
            [e.cam for e in examples],
            [f"p = {e.probability:.2f}" for e in examples],
            f"{OUTCOMES[outcome]}s",
        )
        paths[f"gradcam_{outcome}"] = figures.save(fig, fig_dir / f"gradcam_{outcome}.png")
    return paths
