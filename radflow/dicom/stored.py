"""Stored pixel values for the clean stage: a direct path for plain native data, pixels.py otherwise.

Uncompressed little-endian grayscale is the bulk of CT and MR; its bytes are the values, up to
masking the unused high bits and sign extension from HighBit. pydicom's generic native decoder
spends ~2 ms a 512×512 slice copying them, more than reading the file, so the clean stage
takes this path for that case and hands everything else (compressed, big endian, odd lengths,
missing attributes) to `radflow.dicom.pixels.decode_frames` with its checks and error codes.

A `PixelRecipe`, taken while the header is read, goes further for single-frame CT/MR slices: it
records where the pixel bytes start and the rescale and padding to apply, so the decode pass reads
the values straight from the file instead of parsing the header a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radflow.dicom.header import HeaderLike, HeaderView

__all__ = ["PixelRecipe", "pixel_recipe", "stored_values"]

NATIVE_LITTLE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


def _plain_layout(ds: Dataset) -> tuple[int, int, int, int, int, bool] | None:
    """(frames, rows, cols, allocated, stored, signed) when the fast path applies, else None."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    elem = ds.get("PixelData")
    if ts not in NATIVE_LITTLE or not isinstance(elem, bytes) or ds["PixelData"].is_undefined_length:
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        allocated, stored, high = int(ds.BitsAllocated), int(ds.BitsStored), int(ds.HighBit)
        signed, samples = int(ds.PixelRepresentation) == 1, int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16, 32) or high != stored - 1 or not 0 < stored <= allocated:
        return None
    expected = rows * cols * frames * allocated // 8
    if min(rows, cols, frames) < 1 or len(elem) not in (expected, expected + 1):  # +1: odd-length padding
        return None
    return frames, rows, cols, allocated, stored, signed


def _fast(ds: Dataset, layout: tuple[int, int, int, int, int, bool]) -> NDArray[Any]:
    """The native bytes viewed as values, high bits masked or sign-extended."""
    frames, rows, cols, allocated, stored, signed = layout
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    arr = np.frombuffer(ds.PixelData, dtype, count=frames * rows * cols).reshape(frames, rows, cols)
    if stored == allocated:
        return arr
    spare = allocated - stored
    if signed:  # shift the sign bit to the top, then back arithmetically
        return (arr << spare) >> spare
    return arr & dtype.type((1 << stored) - 1)


def stored_values(ds: Dataset) -> NDArray[Any]:
    """Stored values (frames, rows, cols[, samples]) in an integer dtype, as pixels.decode_frames gives."""
    layout = _plain_layout(ds)
    if layout is not None:
        return _fast(ds, layout)
    from radflow.dicom import pixels

    return np.asarray(pixels.decode_frames(ds))


@dataclass(frozen=True)
class PixelRecipe:
    """How to turn one plain native slice's bytes into modality values without pydicom."""

    offset: int  # file offset of the first pixel byte
    dtype: str  # numpy dtype of the stored words, e.g. '<i2'
    allocated: int
    stored: int
    rows: int
    cols: int
    slope: float
    intercept: float
    padding: tuple[int, int] | None  # inclusive stored-value range set to air (CT only)

    def values(self, path: str, out: NDArray[np.float32]) -> None:
        """Read the slice from `path` and write modality values into `out` (rows, cols)."""
        from radflow.dicom import lut

        size = self.rows * self.cols * (self.allocated // 8)
        with open(path, "rb", buffering=0) as fh:  # one read of exactly the pixels, no buffer copy
            fh.seek(self.offset)
            raw = fh.read(size)
        if len(raw) != size:
            raise ValueError("pixel data shorter than the header says")
        arr = np.frombuffer(raw, self.dtype).reshape(self.rows, self.cols)
        spare = self.allocated - self.stored
        if spare:
            arr = (
                (arr << spare) >> spare
                if arr.dtype.kind == "i"
                else arr & arr.dtype.type((1 << self.stored) - 1)
            )
        # Cast, then scale in place: float32 throughout, as lut.modality_lut computes, and each
        # step a plain vectorised pass (a mixed int16 × float32 ufunc runs a slower casting loop).
        np.copyto(out, arr, casting="unsafe")
        if self.slope != 1.0:
            out *= np.float32(self.slope)
        if self.intercept:
            out += np.float32(self.intercept)
        if self.padding is not None:
            low, high = self.padding
            mask = arr == low if low == high else (arr >= low) & (arr <= high)
            np.copyto(out, np.float32(lut.AIR_HU), where=mask)


def _pixel_element(fp: BinaryIO, implicit: bool) -> tuple[int, int] | None:
    """Offset and length of the Pixel Data value when `fp` sits at a defined-length (7FE0,0010) element."""
    start = fp.tell()
    head = fp.read(8 if implicit else 12)
    if head[:4] != b"\xe0\x7f\x10\x00":
        return None
    if implicit:
        length = int.from_bytes(head[4:8], "little")
    elif head[4:6] in (b"OW", b"OB"):
        length = int.from_bytes(head[8:12], "little")
    else:
        return None
    return None if length == 0xFFFFFFFF else (start + len(head), length)


def _padding(ds: HeaderLike, dtype: np.dtype[Any]) -> tuple[int, int] | None:
    """PixelPaddingValue (and range limit) read in the stored words' signedness, as radflow.dicom.lut does."""

    def word(value: Any) -> int | None:
        value = value[0] if isinstance(value, list | tuple) else value
        if value is None or value == "":
            return None
        return int(np.array(int(value) & 0xFFFF, np.uint16).astype(dtype))

    pad = word(ds.get("PixelPaddingValue"))
    if pad is None:
        return None
    limit = word(ds.get("PixelPaddingRangeLimit"))
    return (pad, pad) if limit is None else (min(pad, limit), max(pad, limit))


def pixel_recipe(ds: Dataset | HeaderView, fp: BinaryIO) -> PixelRecipe | None:
    """A recipe for a header read with stop_before_pixels from `fp` (left at Pixel Data), or None."""
    from radflow.dicom import lut

    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    modality = str(ds.get("Modality", "")).upper()
    if ts not in NATIVE_LITTLE or modality not in ("CT", "MR") or ds.get("ModalityLUTSequence"):
        return None
    if "NumberOfFrames" in ds or "PerFrameFunctionalGroupsSequence" in ds:
        return None
    try:
        element = _pixel_element(fp, ts == ImplicitVRLittleEndian)
        rows, cols = int(ds.Rows), int(ds.Columns)
        allocated, stored, high = int(ds.BitsAllocated), int(ds.BitsStored), int(ds.HighBit)
        signed, samples = int(ds.PixelRepresentation) == 1, int(ds.get("SamplesPerPixel", 1) or 1)
        # The view answers lut's get/`in` calls from the raw bytes, several times faster than a Dataset.
        slopes, intercepts = lut.rescale_per_frame(cast(Dataset, ds), 1)
    except Exception:  # anything unusual takes the checked path, which names the problem
        return None
    if (
        element is None
        or samples != 1
        or allocated not in (8, 16)
        or high != stored - 1
        or not 0 < stored <= allocated
    ):
        return None
    offset, length = element
    if length not in (
        rows * cols * allocated // 8,
        rows * cols * allocated // 8 + 1,
    ):  # +1: odd-length padding
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    padding = _padding(ds, dtype) if modality == "CT" else None
    return PixelRecipe(
        offset, dtype.str, allocated, stored, rows, cols, float(slopes[0]), float(intercepts[0]), padding
    )
