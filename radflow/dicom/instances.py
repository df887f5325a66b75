"""Header records: what the clean stage needs from one file, frame by frame, read once.

A classic file is one slice; an enhanced multi-frame file (CT/MR) is many, each with its own
position, orientation and dimension indices from the per-frame functional groups. Records hold raw
UIDs so series can be grouped; they stay in memory and never reach an output (only pseudonyms do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from radflow.dicom.diffusion import weighting
from radflow.dicom.header import HeaderLike
from radflow.dicom.stored import PixelRecipe

__all__ = ["Instance", "Slice", "frame_slices", "image_type", "mosaic_slices", "to_floats"]

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX"})
MR_TYPES = {
    "M": "M",
    "MAGNITUDE": "M",
    "P": "P",
    "PHASE": "P",
    "R": "R",
    "REAL": "R",
    "I": "I",
    "IMAGINARY": "I",
}


@dataclass(frozen=True)
class Slice:
    """One 2D frame: its geometry, its stack-splitting key and its order within a time series."""

    row: int  # the manifest row of the file it comes from
    frame: int  # frame index within that file (0 for a single-frame file)
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    instance_number: int | None
    split_key: tuple[str, ...]  # echo, magnitude/phase, temporal/stack, diffusion: one stack each
    time_key: tuple[float, ...]  # orders repeated positions into time points


@dataclass(frozen=True)
class Instance:
    """One readable image file, with the header facts triage and grouping need."""

    row: int
    sop_uid: str
    study_uid: str
    series_uid: str
    series_number: str
    modality: str
    rows: int
    columns: int
    image_type: tuple[str, ...]
    slices: tuple[Slice, ...]
    recipe: PixelRecipe | None = None  # a direct read of plain native pixels, when the file allows one
    mosaic: tuple[int, int] | None = None  # Siemens mosaic: (tiles per side, slices), each slice a frame

    @property
    def is_radiograph(self) -> bool:
        """CR/DX single-frame images are 2D outputs, exempt from the slice rules."""
        return self.modality in RADIOGRAPH_MODALITIES


def to_floats(value: Any, n: int) -> tuple[float, ...] | None:
    """`n` finite floats from a DICOM multi-value, or None when absent or malformed."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(out) != n or any(v != v or abs(v) == float("inf") for v in out):
        return None
    return out


def image_type(ds: HeaderLike) -> tuple[str, ...]:
    """ImageType values, upper-case and stripped."""
    value = ds.get("ImageType") or ()
    if isinstance(value, str):
        value = value.split("\\")
    return tuple(str(v).strip().upper() for v in value)


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any, default: float = -1.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _mr_type(types: tuple[str, ...]) -> str:
    """'M'/'P'/'R'/'I' from an ImageType or FrameType's third value and beyond, '' when absent."""
    return next((MR_TYPES[t] for t in types[2:] if t in MR_TYPES), "")


def _classic_slice(ds: HeaderLike, row: int) -> Slice:
    """The one slice of a classic single-frame file."""
    is_mr = str(ds.get("Modality", "")).upper() == "MR"
    split = (
        (
            str(_int(ds.get("EchoNumbers")) or ""),
            _mr_type(image_type(ds)),
            str(_int(ds.get("TemporalPositionIdentifier")) or ""),
            *weighting(ds),
        )
        if is_mr
        else ()
    )
    # Time order at one position: explicit indices first, then cardiac phase, then clock times.
    time = (
        _float(ds.get("TemporalPositionIdentifier")),
        _float(ds.get("AcquisitionNumber")),
        _float(ds.get("TriggerTime")),
        _float(ds.get("AcquisitionTime")),
        _float(ds.get("ContentTime")),
    )
    return Slice(
        row=row,
        frame=0,
        position=to_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=to_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=to_floats(ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing"), 2),  # type: ignore[arg-type]
        instance_number=_int(ds.get("InstanceNumber")),
        split_key=split,
        time_key=time,
    )


def _group(item: Dataset | None, shared: Dataset | None, seq: str) -> Dataset | None:
    """The first item of a functional-group sequence, per-frame first, shared otherwise."""
    for source in (item, shared):
        if source is not None and seq in source and len(source[seq].value):
            return source[seq].value[0]
    return None


def _enhanced_slice(
    ds: HeaderLike, row: int, frame: int, item: Dataset | None, shared: Dataset | None
) -> Slice:
    """Frame `frame` of an enhanced multi-frame file, from its functional groups."""
    pos = _group(item, shared, "PlanePositionSequence")
    ori = _group(item, shared, "PlaneOrientationSequence")
    meas = _group(item, shared, "PixelMeasuresSequence")
    content = _group(item, shared, "FrameContentSequence")
    echo = _group(item, shared, "MREchoSequence")
    ftype = _group(item, shared, "MRImageFrameTypeSequence") or _group(
        item, shared, "CTImageFrameTypeSequence"
    )
    types = tuple(str(v).strip().upper() for v in (ftype.get("FrameType") or ())) if ftype is not None else ()
    # Enhanced MR names the component in ComplexImageComponent; FrameType's third value is the contrast.
    component = str(ftype.get("ComplexImageComponent", "") or "").strip().upper() if ftype is not None else ""
    temporal = _float(content.get("TemporalPositionIndex")) if content is not None else -1.0
    split = (
        str(_float(echo.get("EffectiveEchoTime"))) if echo is not None else "",
        MR_TYPES.get(component, component) or _mr_type(types),
        str(content.get("StackID", "")) if content is not None else "",
        str(int(temporal)) if temporal >= 0 else "",
        *weighting(_group(item, shared, "MRDiffusionSequence")),
    )
    return Slice(
        row=row,
        frame=frame,
        position=to_floats(pos.get("ImagePositionPatient"), 3) if pos is not None else None,  # type: ignore[arg-type]
        orientation=to_floats(ori.get("ImageOrientationPatient"), 6) if ori is not None else None,
        pixel_spacing=to_floats(meas.get("PixelSpacing"), 2) if meas is not None else None,  # type: ignore[arg-type]
        instance_number=frame,
        split_key=split,
        time_key=(temporal, float(frame)),
    )


def frame_slices(ds: HeaderLike, row: int) -> tuple[Slice, ...]:
    """Every frame of a file as a Slice: per-frame functional groups when present, else the classic tags."""
    n = _int(ds.get("NumberOfFrames")) or 1
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if per_frame is None and shared is None:
        base = _classic_slice(ds, row)
        # A classic multi-frame file (e.g. old NM/US) has one position for all frames.
        return tuple(Slice(**{**base.__dict__, "frame": f}) for f in range(n))
    items = list(per_frame or [])
    return tuple(_enhanced_slice(ds, row, f, items[f] if f < len(items) else None, shared) for f in range(n))


def mosaic_slices(
    ds: HeaderLike, row: int, positions: tuple[tuple[float, float, float], ...]
) -> tuple[Slice, ...]:
    """The tiles of a mosaic as slices (frame = tile index) at their unpacked positions."""
    base = _classic_slice(ds, row)
    return tuple(Slice(**{**base.__dict__, "frame": k, "position": p}) for k, p in enumerate(positions))
