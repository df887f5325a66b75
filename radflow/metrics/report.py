"""One self-contained HTML report a clinician can open: figures embedded as base64 PNG, inline CSS,
no scripts, no links, no external assets, and no per-patient identifiers (only aggregate counts;
Grad-CAM captions name the outcome and probability, never the patient or series).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radflow.metrics.binary import METRICS, confusion_counts, predict_labels
from radflow.metrics.evaluation import Evaluation
from radflow.metrics.gradcam import OUTCOMES
from radflow.metrics.report_text import glossary, limits_section, summary_sentence

NAMES = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "ece": "ECE",
    "auc_change": "AUC change",
    "n_positive": "positives",
    "lower": "bin from",
    "upper": "bin to",
    "count": "images",
    "mean_predicted": "mean predicted probability",
    "fraction_positive": "observed fraction positive",
}
ATTRIBUTES = {"site_key": "site", "manufacturer": "manufacturer", "sex": "sex", "age_band": "age band"}
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2430;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #d8dee8;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d8dee8;padding:.3em .6em;text-align:right}th{background:#eef2f7}
td.l,th.l{text-align:left}tr.flag td{background:#fff4d6}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs img{max-width:100%;border:1px solid #e4e8ee}
dt{font-weight:600;float:left;clear:left;width:7em}dd{margin-left:8em}
.note{background:#f4f7fb;border-left:4px solid #5b7db1;padding:.6em 1em}.muted{color:#5c6675;font-size:.9em}
"""


@dataclass(frozen=True)
class ReportContext:
    """What the report shows beyond the evaluation: data counts, model lineage and the figure files."""

    data_counts: pd.DataFrame
    model_info: dict[str, Any]
    figures: dict[str, Path]


def render_report(evaluation: Evaluation, context: ReportContext) -> str:
    """The complete HTML document as a string."""
    body = "\n".join(
        [
            "<h1>Model evaluation report</h1>",
            '<p class="muted">Binary classifier; test split held out from training and from choosing the '
            "threshold. All identifiers are pseudonymised; this report lists no individual patient.</p>",
            _headline(evaluation),
            _operating_point(evaluation),
            _curves(context),
            _calibration(evaluation, context),
            _subgroups(evaluation),
            _robustness(evaluation),
            _gradcam(evaluation, context),
            _data(evaluation, context),
            _lineage(context),
            limits_section(evaluation),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>radflow evaluation report</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(path: Path, evaluation: Evaluation, context: ReportContext) -> Path:
    """Render and write the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(evaluation, context), encoding="utf-8")
    return path


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: fixed digits, 'n/a' for undefined values."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def table(frame: pd.DataFrame, left: tuple[str, ...] = (), flag_column: str | None = None) -> str:
    """An HTML table of a frame; `left` columns are left-aligned; rows with a non-empty flag are shaded."""
    head = "".join(
        f'<th class="{"l" if c in left else ""}">{html.escape(NAMES.get(c, c))}</th>' for c in frame
    )
    rows = []
    for record in frame.to_dict("records"):
        cls = ' class="flag"' if flag_column and record.get(flag_column) else ""
        cells = "".join(f'<td class="{"l" if c in left else ""}">{fmt(record[c])}</td>' for c in frame)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def image_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG embedded as a base64 data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _headline(ev: Evaluation) -> str:
    rows = [
        {
            "metric": NAMES[m],
            "test": ev.test[m],
            "95% CI": _ci(ev.test["ci95"].get(m)),
            "validation": ev.val[m],
        }
        for m in METRICS
    ]
    undefined = "".join(f"<li>{html.escape(r)}</li>" for r in ev.test.get("undefined", {}).values())
    return (
        "<h2>Headline results (test split)</h2>"
        f'<p class="note">{html.escape(summary_sentence(ev))}</p>'
        + table(pd.DataFrame(rows), left=("metric", "95% CI"))
        + f'<p class="muted">95% CIs: {html.escape(ci_method(ev))}.</p>'
        + (f"<ul>{undefined}</ul>" if undefined else "")
        + glossary()
    )


def ci_method(ev: Evaluation) -> str:
    """How the test intervals were obtained, in words."""
    unit, n = ev.test["ci_unit"], ev.test["n_patients"] if ev.test["ci_unit"] == "patient" else ev.test["n"]
    return (
        f"percentile bootstrap over {ev.test['ci_resamples']} resamples, resampling {n} {unit}s with "
        "replacement (all images of a resampled patient together), at the fixed threshold"
    )


def _with_ci(value: float | None, interval: list[float] | None) -> str:
    """'0.800 (0.376 to 0.964)' for a subgroup cell; 'n/a' when undefined."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} ({_ci(interval)})" if interval else f"{value:.3f}"


def _ci(interval: list[float] | None) -> str:
    return "n/a" if interval is None else f"{interval[0]:.3f} to {interval[1]:.3f}"


def _operating_point(ev: Evaluation) -> str:
    tn, fp, fn, tp = confusion_counts(
        ev.test_labels, predict_labels(ev.test_probs, ev.operating_point.threshold)
    )
    counts = pd.DataFrame(
        [
            {"": "reference positive", "called positive": tp, "called negative": fn},
            {"": "reference negative", "called positive": fp, "called negative": tn},
        ]
    )
    return (
        "<h2>Operating point</h2>"
        f"<p>{html.escape(ev.operating_point.description)} The same threshold is applied unchanged to the "
        "test split; it was never tuned on test.</p>" + table(counts, left=("",))
    )


def _figures(context: ReportContext, names: list[str]) -> str:
    tags = [image_tag(context.figures[n], n) for n in names if n in context.figures]
    return f'<div class="figs">{"".join(tags)}</div>'


def _curves(context: ReportContext) -> str:
    return "<h2>Discrimination</h2>" + _figures(context, ["roc", "pr", "confusion"])


def _calibration(ev: Evaluation, context: ReportContext) -> str:
    return (
        "<h2>Calibration</h2>"
        f"<p>Expected calibration error (ECE) {fmt(ev.test['ece'])}; Brier score {fmt(ev.test['brier'])}. "
        "ECE is the average gap between the predicted probability and how often the finding was actually "
        f"present, over {len(ev.calibration)} non-empty probability bins; 0 is perfect.</p>"
        + _scaling(ev)
        + _figures(context, ["calibration"])
        + table(ev.calibration[["lower", "upper", "count", "mean_predicted", "fraction_positive"]])
    )


def _scaling(ev: Evaluation) -> str:
    """What the model's Platt scaling (fitted on validation at training) did to the test ECE."""
    raw = ev.test.get("ece_uncalibrated")
    if raw is None:
        return "<p>The probabilities are the network's own (no calibration fitted).</p>"
    return (
        "<p>The probabilities were Platt-scaled on the validation split when the model was trained "
        "(a monotone map of the network's score: the ranking and the AUC are unchanged, and the "
        f"threshold was chosen on the scaled values); the network's raw probabilities had a test ECE of "
        f"{fmt(raw)}.</p>"
    )


def _subgroups(ev: Evaluation) -> str:
    if ev.subgroups.empty:
        return "<h2>Subgroups</h2><p>No subgroup attributes were configured.</p>"
    frame = ev.subgroups
    shown = frame.assign(
        attribute=frame["attribute"].map(lambda a: ATTRIBUTES.get(a, a)),
        sensitivity=[
            _with_ci(*pair) for pair in zip(frame["sensitivity"], frame["sensitivity_ci95"], strict=True)
        ],
        specificity=[
            _with_ci(*pair) for pair in zip(frame["specificity"], frame["specificity_ci95"], strict=True)
        ],
    ).drop(columns=["sensitivity_ci95", "specificity_ci95"])
    return (
        "<h2>Subgroups (test split)</h2><p>Metrics at the same threshold for each site, scanner "
        "manufacturer, sex and age band, with Wilson 95% intervals for sensitivity and specificity. "
        "Shaded rows are flagged: too few images or only one class, "
        "so their figures are not reliable; they are shown, not hidden.</p>"
        + table(shown, left=("attribute", "group", "flag"), flag_column="flag")
    )


def _robustness(ev: Evaluation) -> str:
    return (
        "<h2>Robustness</h2><p>The test images degraded on purpose and scored again at the same threshold: "
        "Gaussian noise (SD as a fraction of the images' intensity SD), contrast (gamma within each image's "
        "range) and resolution (downsampled by the factor, then resampled back).</p>"
        + table(ev.robustness, left=("perturbation",))
    )


def _gradcam(ev: Evaluation, context: ReportContext) -> str:
    if not ev.gradcam:
        return "<h2>Where the model looked (Grad-CAM)</h2><p>Grad-CAM was disabled.</p>"
    empty = [OUTCOMES[o].lower() + "s" for o, examples in ev.gradcam.items() if not examples]
    missing = f"<p>No {', '.join(empty)} in the test split at this threshold.</p>" if empty else ""
    how = "as configured" if ev.gradcam_layer_configured else "found as the last layer with a spatial output"
    return (
        "<h2>Where the model looked (Grad-CAM)</h2><p>Warm colours mark the regions that most raised the "
        f"model's score for the finding (layer <code>{html.escape(ev.gradcam_layer or '')}</code>, {how}). "
        "A random sample per outcome, not the most striking cases; 3D images show their middle slice. "
        "Grad-CAM is coarse and shows where evidence was weighted, not that the reasoning was right.</p>"
        + _figures(context, [f"gradcam_{o}" for o in OUTCOMES])
        + missing
    )


def _data(ev: Evaluation, context: ReportContext) -> str:
    evaluated = pd.DataFrame(
        [
            {
                "split": "val",
                "images": ev.val["n"],
                "positive images": ev.val["n_positive"],
                "patients": ev.val["n_patients"],
            },
            {
                "split": "test",
                "images": ev.test["n"],
                "positive images": ev.test["n_positive"],
                "patients": ev.test["n_patients"],
            },
        ]
    )
    return (
        "<h2>Data</h2><p>Labelled studies per split (patients never cross splits):</p>"
        + table(context.data_counts, left=("split",))
        + "<p>Images evaluated (series of the model's modalities):</p>"
        + table(evaluated, left=("split",))
    )


def _lineage(context: ReportContext) -> str:
    frame = pd.DataFrame([{"item": k, "value": v} for k, v in context.model_info.items()])
    return "<h2>Model lineage</h2>" + table(frame, left=("item", "value"))
