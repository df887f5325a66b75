"""Duplicate instances: one SOP Instance UID in several files.

Identical pixels (byte for byte, or decoded equal when only the transfer syntax differs) keep the
first copy by path and mark the rest `deduplicated`; copies whose pixels differ are all
`DUPLICATE_CONFLICT`, since nothing says which one is right. A copy that does not decode at all
(truncated) is `DECODE_FAILED` on its own and does not stop its intact twins from being kept.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pydicom

from radflow.dicom.triage import Verdict

__all__ = ["resolve_duplicates"]


def _pixel_digest(path: Path) -> str:
    """SHA-256 of the raw Pixel Data bytes ('' when there are none)."""
    ds = pydicom.dcmread(path, force=True)
    data = ds.get("PixelData")
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else ""


def _decoded(path: Path) -> np.ndarray | None:
    """Stored values of a copy, or None when it does not decode (truncated, corrupt)."""
    from radflow.dicom import pixels

    try:
        return np.asarray(pixels.decode_frames(pydicom.dcmread(path, force=True)))
    except Exception:  # an undecodable copy is judged on its own, not compared
        return None


def _content_classes(paths: list[Path]) -> tuple[list[list[int]], list[int]]:
    """Copies grouped by identical content (raw bytes, else decoded values), and the undecodable ones."""
    try:
        if len({_pixel_digest(p) for p in paths}) == 1:
            return [list(range(len(paths)))], []
    except Exception:  # a copy that cannot even be read is compared by decoding below
        pass
    classes: list[tuple[np.ndarray, list[int]]] = []
    broken: list[int] = []
    for i, p in enumerate(paths):
        arr = _decoded(p)
        if arr is None:
            broken.append(i)
            continue
        home = next((c for a, c in classes if a.shape == arr.shape and np.array_equal(a, arr)), None)
        if home is None:
            classes.append((arr, [i]))
        else:
            home.append(i)
    return [c for _, c in classes], broken


def resolve_duplicates(
    rows: Iterable[tuple[int, str, str]], root: Path
) -> tuple[dict[int, int], dict[int, Verdict]]:
    """From (manifest row, SOP instance key, path): deduplicated row → kept row, and rows set apart."""
    by_sop: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row, sop, path in rows:
        if sop:
            by_sop[sop].append((path, row))
    dropped: dict[int, int] = {}
    verdicts: dict[int, Verdict] = {}
    for copies in by_sop.values():
        if len(copies) < 2:
            continue
        copies.sort()
        classes, broken = _content_classes([root / p for p, _ in copies])
        for i in broken:
            verdicts[copies[i][1]] = Verdict(
                "DECODE_FAILED",
                f"One of {len(copies)} copies of an instance whose pixel data does not decode.",
            )
        if len(classes) == 1:
            keep = copies[classes[0][0]][1]
            dropped.update({copies[i][1]: keep for i in classes[0][1:]})
        elif classes:
            v = Verdict(
                "DUPLICATE_CONFLICT",
                f"{len(copies)} files share one SOP Instance UID but hold {len(classes)} different images.",
            )
            verdicts.update({copies[i][1]: v for c in classes for i in c})
    return dropped, verdicts
