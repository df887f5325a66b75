"""The quarantine report for people: quarantine.csv and a self-contained quarantine.html.

Rows come from dispositions.parquet, which holds paths relative to the source, reason codes and
sentences written without header values, so the report carries no PHI by construction.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

__all__ = ["REASONS", "write_quarantine"]

REASONS: dict[str, str] = {
    "NOT_DICOM": "Files that are not DICOM (text, PDF, NIfTI, gzip).",
    "UNREADABLE": "DICOM files whose header could not be parsed.",
    "NON_IMAGE_SOP": "Non-image objects: reports, waveforms, RT, SEG, presentation states, DICOMDIR.",
    "NO_PIXEL_DATA": "Image objects without pixel data.",
    "MODALITY_EXCLUDED": "Modalities not listed in clean.modalities.",
    "DUPLICATE_CONFLICT": "Several files with one SOP Instance UID but different pixels.",
    "LOCALIZER": "Localizer/scout and projection images, and small odd-orientation groups.",
    "DERIVED": "Secondary captures and DERIVED\\SECONDARY images.",
    "BURNED_IN": "Images that may carry burned-in text.",
    "FOR_PROCESSING": "Raw FOR PROCESSING radiographs (clean.keep_for_processing is off).",
    "COLOR_UNSUPPORTED": "Colour images; the pipeline uses grayscale only.",
    "MOSAIC_UNSUPPORTED": "Siemens mosaics whose CSA header lacks the slice count or normal (cannot unpack).",
    "MISSING_GEOMETRY": "Images without usable position, orientation or pixel spacing.",
    "ORIENTATION_INCONSISTENT": "Series mixing orientations with no stack large enough to keep.",
    "NOT_A_VOLUME": "Stacks whose repeated positions are not a whole number of time points.",
    "TOO_FEW_SLICES": "Stacks with fewer than clean.min_slices slices.",
    "GANTRY_TILT": "Tilted (sheared) stacks; set clean.gantry_tilt: deshear to resample them.",
    "MISSING_SLICES": "Stacks with gaps that are whole multiples of the slice spacing.",
    "SPACING_NONUNIFORM": "Stacks with irregular slice spacing.",
    "DECODE_UNSUPPORTED_TS": "Pixel data in a transfer syntax no installed decoder reads.",
    "DECODE_FAILED": "Pixel data that failed to decode or has the wrong size.",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;width:100%;margin-bottom:1.5em}"
    "td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;font-size:.9em}"
    "th{background:#f3f3f3}code{background:#f6f6f6;padding:0 .2em}"
)


def write_quarantine(dispositions: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Write quarantine.csv and quarantine.html; returns the quarantined rows."""
    cols = ["path", "reason", "detail", "series_key"]
    rows = dispositions[dispositions["disposition"] == "quarantined"][cols].sort_values(["reason", "path"])
    rows.to_csv(out / "quarantine.csv", index=False)
    (out / "quarantine.html").write_text(_html(dispositions, rows), encoding="utf-8")
    return rows


def _summary(dispositions: pd.DataFrame) -> str:
    """One line per disposition with its count."""
    counts = dispositions["disposition"].value_counts()
    items = "".join(f"<li>{html.escape(str(k))}: {int(v)}</li>" for k, v in counts.items())
    return f"<p>{len(dispositions)} input files.</p><ul>{items}</ul>"


def _section(reason: str, group: pd.DataFrame) -> str:
    """A heading with the reason's count and meaning, then one table row per file."""
    e = html.escape
    body = "".join(
        f"<tr><td><code>{e(str(p))}</code></td><td>{e(str(d))}</td></tr>"
        for p, d in zip(group["path"], group["detail"], strict=True)
    )
    return (
        f"<h2 id='{e(reason)}'>{e(reason)} — {len(group)} file(s)</h2><p>{e(REASONS.get(reason, ''))}</p>"
        f"<table><tr><th>file (relative to the source)</th><th>detail</th></tr>{body}</table>"
    )


def _html(dispositions: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The whole page: summary, table of contents by reason, one section per reason."""
    groups = sorted(rows.groupby("reason"), key=lambda kv: (-len(kv[1]), kv[0]))
    toc = "".join(f"<li><a href='#{html.escape(r)}'>{html.escape(r)}</a>: {len(g)}</li>" for r, g in groups)
    sections = "".join(_section(str(r), g) for r, g in groups)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>radflow quarantine report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Quarantine report</h1>{_summary(dispositions)}"
        f"<h2>Quarantined by reason</h2><ul>{toc or '<li>none</li>'}</ul>{sections}</body></html>"
    )
