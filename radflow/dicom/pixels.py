"""Decode a DICOM dataset's Pixel Data to stored values, whatever its transfer syntax.

`decode_frames` returns stored values shaped (frames, rows, cols) — or (frames, rows, cols, samples)
for colour — in an integer dtype, with the unused high bits above BitsStored masked and signed
values sign-extended from HighBit (so 12-bit signed data gives negative numbers). pydicom 3 does the
masking and sign extension for native, RLE and JPEG data, and matches JPEG 2000 / JPEG-LS signedness
to PixelRepresentation from the codestream. pydicom assumes HighBit = BitsStored - 1; native data
with a higher HighBit (an older layout, values in the top bits of each word) is shifted down here.
This module adds what is around it: an explicit plugin order (the fastest installed decoder first,
the others as fallbacks), the frame-count check, native byte order, and one exception type,
`DecodeError`, whose reason code the clean stage writes to dispositions.parquet and whose detail
names the tag or transfer syntax at fault. The happy path costs little more than pydicom's own
decode; the header is examined attribute by attribute only after a failure, to say why.

A missing TransferSyntaxUID (ACR-NEMA files, broken meta) is inferred from the encoding pydicom read
the dataset with, when the pixel data is native (not encapsulated): the byte order and VR of the
header are then those of the pixels. Compressed data without a transfer syntax cannot be decoded
safely and raises DECODE_FAILED.

Colour images decode too (pydicom converts YBR to RGB); the pipeline trains on grayscale, so callers
check `is_grayscale(ds)` first and set colour images apart without decoding them. PALETTE COLOR data
decodes to palette indices, which `is_grayscale` also rejects.

Value transforms (modality LUT, padding, VOI) live in radflow.dicom.lut and are re-exported here.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NoReturn

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSTransferSyntaxes,
    RLELossless,
)

from radflow.dicom.lut import modality_lut, pad_to_air, radiograph_to_unit
from radflow.dicom.pixel_error import FAILED, UNSUPPORTED_TS, DecodeError

__all__ = [
    "DecodeError",
    "burned_in",
    "decode_frames",
    "decoder_plugins",
    "for_processing",
    "is_grayscale",
    "modality_lut",
    "pad_to_air",
    "radiograph_to_unit",
    "transfer_syntax",
]

# Fastest first, measured on the corpus (benchmarks/bench_pixels.py): pyjpegls decodes JPEG-LS ~1.3x
# faster than gdcm and ~3x faster than pylibjpeg; gdcm decodes JPEG lossless ~2x faster than
# pylibjpeg; pylibjpeg-rle decodes RLE ~5x faster than pydicom's numpy decoder; Pillow is quickest
# on 8-bit baseline JPEG but cannot read 12-bit JPEG, which only pylibjpeg (libjpeg) decodes; for
# JPEG 2000 gdcm and pylibjpeg (openjpeg) trade places by image size, so pydicom's order stands.
_PLUGIN_ORDER: dict[str, tuple[str, ...]] = {
    JPEGBaseline8Bit: ("pillow", "gdcm", "pylibjpeg"),
    JPEGExtended12Bit: ("pylibjpeg", "gdcm", "pillow"),
    JPEGLossless: ("gdcm", "pylibjpeg"),
    JPEGLosslessSV1: ("gdcm", "pylibjpeg"),
    RLELossless: ("pylibjpeg", "pydicom"),
    **{uid: ("pyjpegls", "gdcm", "pylibjpeg") for uid in JPEGLSTransferSyntaxes},
    **{uid: ("gdcm", "pylibjpeg", "pillow") for uid in JPEG2000TransferSyntaxes},
}
_REQUIRED = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
)
_TAGS = {
    "Rows": "(0028,0010)",
    "Columns": "(0028,0011)",
    "BitsAllocated": "(0028,0100)",
    "BitsStored": "(0028,0101)",
    "HighBit": "(0028,0102)",
    "PixelRepresentation": "(0028,0103)",
    "SamplesPerPixel": "(0028,0002)",
    "PhotometricInterpretation": "(0028,0004)",
    "NumberOfFrames": "(0028,0008)",
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_SCREEN_TYPES = {"SCREEN SAVE", "SCREENSAVE", "SCREENSHOT", "SCREEN CAPTURE"}


def transfer_syntax(ds: Dataset) -> UID:
    """The transfer syntax of `ds`'s pixel data, inferred from the read encoding when the meta lacks it."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(str(uid))
    if "PixelData" in ds and ds["PixelData"].is_undefined_length:
        raise DecodeError(
            FAILED,
            "TransferSyntaxUID (0002,0010) is missing and the Pixel Data is compressed: codec unknown.",
        )
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        raise DecodeError(
            FAILED, "TransferSyntaxUID (0002,0010) is missing and the dataset's encoding is unknown."
        )
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


@cache
def decoder_plugins(uid: str) -> tuple[str, ...]:
    """Installed decoding plugins for a transfer syntax, in the order `decode_frames` tries them."""
    decoder = _decoder(UID(uid))
    if decoder.is_native:
        return ()
    available = decoder.available_plugins
    preferred = [p for p in _PLUGIN_ORDER.get(uid, ()) if p in available]
    return (*preferred, *(p for p in available if p not in preferred))


def decode_frames(ds: Dataset) -> np.ndarray:
    """Stored values of every frame, (frames, rows, cols[, samples]), integer dtype in native byte order."""
    if "PixelData" not in ds:
        raise DecodeError(FAILED, "The dataset has no Pixel Data (7FE0,0010) element to decode.")
    uid = transfer_syntax(ds)
    decoder = _decoder(uid)
    plugins = decoder_plugins(uid)
    high_bit = _moved_high_bit(ds) if decoder.is_native else None
    options = {"correct_unused_bits": False} if high_bit is not None else {}
    decoded = _first_success(decoder, ds, plugins or ("",), options)
    if decoded is None:
        _diagnose(ds, uid, plugins)
    arr, props = decoded
    if high_bit is not None:
        arr = _from_high_bit(arr, high_bit, _int(ds, "BitsStored"))
    samples = int(props["samples_per_pixel"])
    shape = (-1, int(props["rows"]), int(props["columns"]))
    arr = arr.reshape((*shape, samples) if samples > 1 else shape)
    frames = max(_int(ds, "NumberOfFrames", 1), 1)  # 0 means 1, as pydicom reads it
    if arr.shape[0] != frames:
        raise DecodeError(
            FAILED,
            f"{uid.name} Pixel Data holds {arr.shape[0]} frames; NumberOfFrames (0028,0008) says {frames}.",
        )
    if decoder.is_native and len(ds.PixelData) > arr.nbytes + 1:  # pydicom only warns about surplus data
        _check_native_length(ds, frames)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def is_grayscale(ds: Dataset) -> bool:
    """Whether the image is one-sample MONOCHROME1/2 (colour and palette images are not)."""
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    try:
        return pi in {"MONOCHROME1", "MONOCHROME2"} and _int(ds, "SamplesPerPixel", 1) == 1
    except DecodeError:  # a malformed SamplesPerPixel is no evidence of grayscale
        return False


def for_processing(ds: Dataset) -> bool:
    """Whether a radiograph is raw detector data (PresentationIntentType FOR PROCESSING)."""
    return str(ds.get("PresentationIntentType", "")).strip().upper() == "FOR PROCESSING"


def burned_in(ds: Dataset) -> bool:
    """Whether pixels may carry burned-in text: flagged YES, a screen save, or a capture not flagged NO."""
    flag = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    if flag == "YES":
        return True
    image_type = ds.get("ImageType") or []
    types = {str(t).strip().upper() for t in ([image_type] if isinstance(image_type, str) else image_type)}
    if types & _SCREEN_TYPES:
        return True
    sop_class = str(ds.get("SOPClassUID", ""))
    # A secondary capture is a picture of a screen; unless its creator says NO, assume text is on it.
    return sop_class.startswith(_SECONDARY_CAPTURE) and flag != "NO"


def _decoder(uid: UID) -> Decoder:
    """pydicom's decoder for `uid`, or DECODE_UNSUPPORTED_TS when none is installed."""
    if not uid.is_transfer_syntax:
        raise DecodeError(
            UNSUPPORTED_TS, "TransferSyntaxUID (0002,0010) is not a transfer syntax pydicom knows."
        )
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise DecodeError(UNSUPPORTED_TS, f"No decoder supports the transfer syntax {uid.name}.") from None
    if not decoder.is_available:
        raise DecodeError(UNSUPPORTED_TS, f"No installed plugin decodes the transfer syntax {uid.name}.")
    return decoder


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    """An integer Image Pixel attribute, or DECODE_FAILED naming the tag when absent or malformed."""
    value: Any = ds.get(keyword)
    if value is None or value == "":
        if default is not None:
            return default
        raise DecodeError(FAILED, f"{keyword} {_TAGS.get(keyword, '')} is missing or empty.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DecodeError(FAILED, f"{keyword} {_TAGS.get(keyword, '')} is not an integer.") from None


def _check_header(ds: Dataset) -> tuple[int, int, int, int]:
    """Rows, columns, frames and samples, after checking the Image Pixel attributes are usable."""
    for keyword in _REQUIRED:
        if keyword != "PhotometricInterpretation":
            _int(ds, keyword)
        elif not str(ds.get(keyword) or "").strip():
            raise DecodeError(FAILED, f"{keyword} {_TAGS[keyword]} is missing or empty.")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    allocated, stored = _int(ds, "BitsAllocated"), _int(ds, "BitsStored")
    frames, samples = _int(ds, "NumberOfFrames", 1), _int(ds, "SamplesPerPixel")
    if rows < 1 or cols < 1 or frames < 1 or samples < 1:
        raise DecodeError(FAILED, "Rows, Columns, NumberOfFrames and SamplesPerPixel must all be at least 1.")
    if not (allocated == 1 or allocated % 8 == 0) or not 1 <= stored <= allocated:
        raise DecodeError(FAILED, "BitsAllocated (0028,0100) and BitsStored (0028,0101) are inconsistent.")
    return rows, cols, frames, samples


def _check_native_length(ds: Dataset, frames: int) -> None:
    """Native Pixel Data must hold every frame; a whole extra frame means NumberOfFrames is wrong."""
    expected = get_expected_length(ds, unit="bytes")  # knows bit-packing and YBR_FULL_422 subsampling
    actual = len(ds.PixelData or b"")
    if actual < expected:
        raise DecodeError(
            FAILED, f"Pixel Data holds {actual} bytes, fewer than the {expected} its header implies."
        )
    if actual - expected >= max(expected // frames, 2):  # one trailing pad byte is allowed
        raise DecodeError(
            FAILED, f"Pixel Data holds {actual} bytes, at least one frame more than its header implies."
        )


def _moved_high_bit(ds: Dataset) -> int | None:
    """HighBit when above BitsStored - 1 (older files keep values in the top bits of each word), else None."""
    try:
        high, stored, allocated = int(ds.HighBit), int(ds.BitsStored), int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return None  # pydicom's own validation or the diagnosis names what is wrong
    return high if stored - 1 < high < allocated and allocated in (8, 16, 32, 64) else None


def _from_high_bit(arr: np.ndarray, high: int, stored: int) -> np.ndarray:
    """Stored values from bits high-stored+1..high: shift them to the top, then down with sign extension."""
    width = arr.dtype.itemsize * 8
    out = np.left_shift(arr, width - 1 - high)
    return np.right_shift(out, width - stored, out=out)  # arithmetic for signed dtypes, logical for unsigned


def _first_success(
    decoder: Decoder, ds: Dataset, plugins: tuple[str, ...], options: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The first plugin's result that decodes without error (pydicom validates the header first)."""
    for plugin in plugins:
        try:
            return decoder.as_array(ds, decoding_plugin=plugin, **options)
        except Exception:  # plugins raise anything from RuntimeError to TypeError on bad streams
            continue
    return None


def _diagnose(ds: Dataset, uid: UID, plugins: tuple[str, ...]) -> NoReturn:
    """After a failed decode, say why in one sentence: a bad header attribute, short data, or the stream."""
    frames = _check_header(ds)[2]
    if not plugins:
        _check_native_length(ds, frames)
        raise DecodeError(
            FAILED, f"{uid.name} Pixel Data could not be decoded with its Image Pixel attributes."
        )
    raise DecodeError(
        FAILED, f"{uid.name} Pixel Data could not be decoded by any installed plugin ({', '.join(plugins)})."
    )
