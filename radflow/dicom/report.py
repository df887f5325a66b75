"""The quarantine report for people: quarantine.csv and a self-contained quarantine.html.

Rows are the stage's dispositions, which hold paths relative to the source, reason codes and
sentences written without header values, so the report carries no PHI by construction.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from radflow.dicom.tables import Disposition, fresh

__all__ = ["REASONS", "write_quarantine"]

REASONS: dict[str, str] = {
    "NOT_DICOM": "Files that are not DICOM (text, PDF, NIfTI, gzip).",
    "UNREADABLE": "Files or folders that could not be opened, and DICOM headers that could not be parsed.",
    "NON_IMAGE_SOP": "Non-image objects: reports, waveforms, RT, SEG, presentation states, DICOMDIR.",
    "NO_PIXEL_DATA": "Image objects without pixel data.",
    "MODALITY_EXCLUDED": "Modalities not listed in clean.modalities.",
    "DUPLICATE_CONFLICT": "Several files with one SOP Instance UID but different pixels.",
    "LOCALIZER": "Localizer/scout and projection images, small odd-orientation groups, and series of up "
    "to three orientations each too small for a volume.",
    "DERIVED": "Secondary captures and DERIVED\\SECONDARY images.",
    "BURNED_IN": "Images that may carry burned-in text.",
    "FOR_PROCESSING": "Raw FOR PROCESSING radiographs (clean.keep_for_processing is off).",
    "COLOR_UNSUPPORTED": "Colour images; the pipeline uses grayscale only.",
    "MOSAIC_UNSUPPORTED": "Siemens mosaics whose CSA header lacks the slice count or normal (cannot unpack).",
    "MISSING_GEOMETRY": "Images without usable position, orientation or pixel spacing.",
    "ORIENTATION_INCONSISTENT": "Series mixing more than three orientations, none large enough to keep.",
    "NOT_A_VOLUME": "Stacks whose repeated positions are not a whole number of time points.",
    "TOO_FEW_SLICES": "Stacks with fewer than clean.min_slices slices.",
    "GANTRY_TILT": "Tilted (sheared) stacks; set clean.gantry_tilt: deshear to resample them.",
    "MISSING_SLICES": "Stacks with gaps that are whole multiples of the slice spacing.",
    "SPACING_NONUNIFORM": "Irregularly spaced stacks; set clean.irregular_spacing: resample to keep them.",
    "DECODE_UNSUPPORTED_TS": "Pixel data in a transfer syntax no installed decoder reads.",
    "DECODE_FAILED": "Pixel data that failed to decode or has the wrong size.",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "table{border-collapse:collapse;width:100%;margin-bottom:1.5em}"
    "td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;font-size:.9em}"
    "th{background:#f3f3f3}code{background:#f6f6f6;padding:0 .2em}"
)


def write_quarantine(dispositions: Sequence[Disposition], out: Path) -> list[Disposition]:
    """Write quarantine.csv and quarantine.html; returns the quarantined rows by reason, then path."""
    rows = sorted(
        (d for d in dispositions if d.disposition == "quarantined"), key=lambda d: (d.reason, d.path)
    )
    with open(fresh(out / "quarantine.csv"), "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "reason", "detail", "series_key"])
        writer.writerows((d.path, d.reason, d.detail, d.series_key) for d in rows)
    fresh(out / "quarantine.html").write_text(_html(dispositions, rows), encoding="utf-8")
    return rows


def _summary(dispositions: Sequence[Disposition]) -> str:
    """One line per disposition with its count."""
    counts = Counter(d.disposition for d in dispositions).most_common()
    items = "".join(f"<li>{html.escape(str(k))}: {v}</li>" for k, v in counts)
    return f"<p>{len(dispositions)} input files.</p><ul>{items}</ul>"


def _section(reason: str, group: Sequence[Disposition]) -> str:
    """A heading with the reason's count and meaning, then one table row per file."""
    e = html.escape
    body = "".join(f"<tr><td><code>{e(d.path)}</code></td><td>{e(d.detail)}</td></tr>" for d in group)
    return (
        f"<h2 id='{e(reason)}'>{e(reason)} — {len(group)} file(s)</h2><p>{e(REASONS.get(reason, ''))}</p>"
        f"<table><tr><th>file (relative to the source)</th><th>detail</th></tr>{body}</table>"
    )


def _html(dispositions: Sequence[Disposition], rows: Sequence[Disposition]) -> str:
    """The whole page: summary, table of contents by reason, one section per reason."""
    by_reason = [(r, list(g)) for r, g in groupby(rows, key=lambda d: d.reason)]  # rows come sorted by reason
    groups = sorted(by_reason, key=lambda kv: (-len(kv[1]), kv[0]))
    toc = "".join(f"<li><a href='#{html.escape(r)}'>{html.escape(r)}</a>: {len(g)}</li>" for r, g in groups)
    sections = "".join(_section(r, g) for r, g in groups)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>radflow quarantine report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Quarantine report</h1>{_summary(dispositions)}"
        f"<h2>Quarantined by reason</h2><ul>{toc or '<li>none</li>'}</ul>{sections}</body></html>"
    )
