"""Stored values to meaningful numbers: modality LUT (units), CT padding to air, radiograph VOI to [0, 1].

Every function takes the dataset and an array from `radflow.dicom.pixels.decode_frames` and works on
whole arrays in float32 (no per-pixel Python). Window/level follows PS3.3 C.11.2.1.2 exactly — the
same results as pydicom's `apply_windowing` (a test compares them) — but in one float32 pass and
without pydicom's habit of rewriting the dataset's BitsStored/RescaleSlope attributes; VOI LUT
Sequences use pydicom's `apply_voi` as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi

from radflow.dicom.pixel_error import FAILED, DecodeError

__all__ = ["AIR_HU", "modality_lut", "pad_to_air", "radiograph_to_unit", "rescale_per_frame", "window"]

AIR_HU = -1024.0


def _first(value: Any) -> Any:
    """The first value of a multi-valued attribute (window centres often come in pairs)."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value[0] if len(value) else None
    return value


def _float(value: Any, keyword: str) -> float | None:
    """A decimal attribute as float; None when absent or empty, DecodeError when malformed."""
    value = _first(value)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise DecodeError(FAILED, f"{keyword} is not a finite number.")
    return number


def _item(seq: Any, index: int = 0) -> Dataset | None:
    """Item `index` of a sequence attribute, or None."""
    return seq[index] if seq is not None and len(seq) > index else None


def _frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """A functional-group macro for one frame: the per-frame item, else the shared one (enhanced IODs)."""
    per_frame = _item(ds.get("PerFrameFunctionalGroupsSequence"), frame)
    item = _item(per_frame.get(sequence)) if per_frame is not None else None
    if item is None:
        shared = _item(ds.get("SharedFunctionalGroupsSequence"))
        item = _item(shared.get(sequence)) if shared is not None else None
    return item


def _rescale(item: Dataset | None, default: tuple[float, float]) -> tuple[float, float]:
    """(slope, intercept) from an item holding Rescale Slope/Intercept, falling back to `default`."""
    if item is None:
        return default
    slope = _float(item.get("RescaleSlope"), "RescaleSlope (0028,1053)")
    intercept = _float(item.get("RescaleIntercept"), "RescaleIntercept (0028,1052)")
    return (default[0] if slope is None else slope, default[1] if intercept is None else intercept)


def rescale_per_frame(ds: Dataset, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """RescaleSlope and RescaleIntercept for each frame: functional groups first, then the top level."""
    top = _rescale(ds, (1.0, 0.0))
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        pairs = [
            _rescale(_frame_item(ds, k, "PixelValueTransformationSequence"), top) for k in range(n_frames)
        ]
    else:
        pairs = [top] * n_frames
    slopes, intercepts = (np.array(v, np.float64) for v in zip(*pairs, strict=True))
    if np.any(slopes == 0):
        raise DecodeError(FAILED, "RescaleSlope (0028,1053) is 0, which would erase the image.")
    return slopes, intercepts


def modality_lut(ds: Dataset, frames: np.ndarray, first: int = 0) -> np.ndarray:
    """Stored values (frames, rows, cols) to modality units (CT: HU) as float32, frame by frame.

    `first` is the dataset frame number of frames[0], for callers that pass a slice of a multi-frame image.
    """
    if ds.get("ModalityLUTSequence"):
        # A lookup table replaces rescaling (PS3.3 C.11.1); pydicom reads its descriptor and data.
        return np.asarray(apply_modality_lut(frames, ds), dtype=np.float32)
    slopes, intercepts = (v[first:] for v in rescale_per_frame(ds, first + frames.shape[0]))
    out = frames.astype(np.float32)
    if np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]):
        if slopes[0] != 1.0:
            out *= np.float32(slopes[0])
        if intercepts[0] != 0.0:
            out += np.float32(intercepts[0])
        return out
    shape = (-1,) + (1,) * (frames.ndim - 1)
    out *= slopes.astype(np.float32).reshape(shape)
    out += intercepts.astype(np.float32).reshape(shape)
    return out


def _as_stored(value: Any, dtype: np.dtype) -> int:
    """A US/SS header value in the stored dtype's signedness (tools often write SS values as US)."""
    number = int(value)
    if dtype.kind == "i" and 2**15 <= number < 2**16:
        return number - 2**16
    if dtype.kind == "u" and number < 0:
        return number + 2**16
    return number


def padding_mask(ds: Dataset, stored: np.ndarray) -> np.ndarray | None:
    """Where stored values are PixelPaddingValue (or within PixelPaddingRangeLimit); None without padding."""
    value = _first(ds.get("PixelPaddingValue"))
    if value is None or value == "" or stored.dtype.kind not in "iu":
        return None
    pad = _as_stored(value, stored.dtype)
    limit = _first(ds.get("PixelPaddingRangeLimit"))
    if limit is None or limit == "":
        return stored == pad
    lo, hi = sorted((pad, _as_stored(limit, stored.dtype)))
    return (stored >= lo) & (stored <= hi)


def pad_to_air(ds: Dataset, stored: np.ndarray, values: np.ndarray, air: float = AIR_HU) -> np.ndarray:
    """Set padding pixels (judged on stored values) to air in `values`, in place; returns `values`."""
    mask = padding_mask(ds, stored)
    if mask is not None:
        np.copyto(values, np.asarray(air, values.dtype), where=mask)
    return values


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray | None:
    """PS3.3 C.11.2.1.2 window to [0, 1] in float32; None when the width is invalid for the function."""
    function = function.strip().upper() or "LINEAR"
    if function == "LINEAR":
        if width < 1:
            return None
        if width == 1:  # a step: the standard's two thresholds meet at center - 0.5
            return (values > center - 0.5).astype(np.float32)
        out = (values - np.float32(center - 0.5)) / np.float32(width - 1) + np.float32(0.5)
        return np.clip(out, 0.0, 1.0, out=out)
    if width <= 0:
        return None
    if function == "LINEAR_EXACT":
        out = (values - np.float32(center)) / np.float32(width) + np.float32(0.5)
        return np.clip(out, 0.0, 1.0, out=out)
    if function == "SIGMOID":
        out = (values - np.float32(center)) * np.float32(-4.0 / width)
        np.clip(out, -80.0, 80.0, out=out)  # exp(80) fits float32; beyond it the curve is flat anyway
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)
    return None


def _voi_item(ds: Dataset, frame: int) -> Dataset:
    """Where the VOI attributes of a frame live: the top level, else FrameVOILUTSequence (enhanced DX/MG)."""
    if "WindowCenter" in ds or ds.get("VOILUTSequence"):
        return ds
    return _frame_item(ds, frame, "FrameVOILUTSequence") or ds


def _apply_voi_sequence(ds: Dataset, values: np.ndarray) -> np.ndarray:
    """A VOI LUT Sequence's first table applied to modality values, scaled to [0, 1] by the table's range."""
    item = ds.VOILUTSequence[0]
    entries, first = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
    table = apply_voi(np.arange(first, first + entries, dtype=np.int32), ds).astype(np.float32)
    lo, hi = float(table.min()), float(table.max())
    index = np.clip(np.rint(values), first, first + entries - 1).astype(np.int32) - first
    out = table[index]
    return (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)


def _apply_window(voi: Dataset, values: np.ndarray) -> np.ndarray | None:
    """The first WindowCenter/WindowWidth pair with its VOILUTFunction; None when absent or unusable."""
    try:
        center = _float(voi.get("WindowCenter"), "WindowCenter (0028,1050)")
        width = _float(voi.get("WindowWidth"), "WindowWidth (0028,1051)")
    except DecodeError:  # a malformed window is no reason to drop the image: fall back to its range
        return None
    if center is None or width is None:
        return None
    return window(values, center, width, str(voi.get("VOILUTFunction") or "LINEAR"))


def _min_max(values: np.ndarray) -> np.ndarray:
    """The image's own range to [0, 1], for images with no VOI attributes."""
    lo, hi = float(values.min()), float(values.max())
    return (values - np.float32(lo)) / np.float32(hi - lo) if hi > lo else np.zeros_like(values)


def radiograph_to_unit(ds: Dataset, stored_frame: np.ndarray, frame: int = 0) -> np.ndarray:
    """A radiograph frame to [0, 1] float32, bright = dense: modality LUT, VOI, MONOCHROME1 inverted."""
    values = modality_lut(ds, stored_frame[np.newaxis], first=frame)[0]
    voi = _voi_item(ds, frame)
    out = _apply_voi_sequence(voi, values) if voi.get("VOILUTSequence") else _apply_window(voi, values)
    if out is None:
        out = _min_max(values)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    # MONOCHROME1 shows low values bright; an INVERSE presentation LUT says the same (PS3.3 C.8.11.6.1.2).
    if photometric == "MONOCHROME1" or shape == "INVERSE":
        np.subtract(1.0, out, out=out)
    return out.astype(np.float32, copy=False)
