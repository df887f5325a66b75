"""A fast read-only view of a header pydicom has read: plain values straight from the raw elements.

The clean stage reads ~40 attributes of every file. Through `Dataset.get` each costs ~10 µs of
keyword lookup, element conversion and validation, more than parsing the file; this view decodes
the few simple value representations it needs (codes, UIDs, decimal and integer strings, times,
binary integers) from the raw bytes in well under a microsecond, and hands everything else
(sequences, free text, private or malformed values) to pydicom unchanged.

`read_header` reads that header. `dcmread(stop_before_pixels=True)` spends over half its time
building a FileDataset and validating the file meta; a Part 10 file in a little-endian syntax needs
neither, so its meta and dataset go straight through pydicom's own `read_dataset` (same element
parser, same VR detection, same character sets). Anything else goes through `dcmread`.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any, BinaryIO, TypeAlias

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

__all__ = ["HeaderLike", "HeaderView", "read_header", "read_plain_meta"]

_TEXT = frozenset({"CS", "UI", "TM", "DA", "AS"})  # ASCII by definition: no character set to apply
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
_MISSING = object()


@lru_cache(maxsize=512)
def _tag_and_vr(keyword: str) -> tuple[int, str] | None:
    tag = tag_for_keyword(keyword)
    return None if tag is None else (tag, dictionary_VR(tag))


def _text(raw: bytes, vr: str) -> Any:
    """A text value as pydicom gives it: str, or a list for several values."""
    parts = raw.decode("ascii").rstrip(" \0").split("\\")  # as pydicom: padding off the end only
    if vr == "DS":
        numbers: list[Any] = [float(p) for p in parts if p]
    elif vr == "IS":
        numbers = [int(p) for p in parts if p]
    else:
        return parts[0] if len(parts) == 1 else parts
    if not numbers:
        return ""
    return numbers[0] if len(parts) == 1 else numbers


def _decode(elem: RawDataElement, vr: str) -> Any:
    """The element's value for simple VRs, or _MISSING to let pydicom convert it."""
    raw = elem.value
    if raw is None or not isinstance(raw, bytes):
        return _MISSING
    if vr in _TEXT or vr in ("DS", "IS"):
        return _text(raw, vr) if raw else ""
    code = _BINARY.get(vr)
    if code is None:
        return _MISSING
    if not raw:
        return None
    n = len(raw) // struct.calcsize(code)
    values = struct.unpack(
        ("<" if elem.is_little_endian else ">") + f"{n}{code}", raw[: n * struct.calcsize(code)]
    )
    return values[0] if n == 1 else list(values)


class HeaderView:
    """`get`, `in` and attribute access over a Dataset, decoding simple raw values directly."""

    __slots__ = ("_meta", "_raw", "_seen", "ds")

    def __init__(self, ds: Dataset, meta: HeaderView | None = None) -> None:
        self.ds = ds
        self._meta = meta  # the file meta when `ds` was read without one attached
        # pydicom's element store (raw until converted), re-keyed by plain ints: its BaseTag keys
        # compare in Python, which made each lookup cost more than decoding the value.
        self._raw: dict[int, Any] = dict(zip(map(int, ds._dict), ds._dict.values(), strict=True))
        self._seen: dict[str, Any] = {}  # decoded values: the checks ask for Modality and the like often

    def get(self, key: str, default: Any = None) -> Any:
        """Like `Dataset.get(keyword, default)`."""
        value = self._seen.get(key, _MISSING)
        if value is _MISSING:
            value = self._seen[key] = self._lookup(key)
        return default if value is _MISSING else value

    def _lookup(self, key: str) -> Any:
        """The value of `key`, or _MISSING when the dataset lacks it."""
        found = _tag_and_vr(key)
        elem = self._raw.get(found[0]) if found is not None else None
        if elem is None:
            return self.ds.get(key, _MISSING) if found is None else _MISSING
        if isinstance(elem, RawDataElement) and (elem.VR in (None, found[1])):  # type: ignore[index]
            try:
                value = _decode(elem, found[1])  # type: ignore[index]
            except (UnicodeDecodeError, ValueError, struct.error):
                value = _MISSING  # malformed: pydicom's conversion decides what it means
            if value is not _MISSING:
                return value
        return self.ds.get(key, _MISSING)

    def __contains__(self, key: object) -> bool:
        found = _tag_and_vr(key) if isinstance(key, str) else None
        return found[0] in self._raw if found is not None else bool(isinstance(key, str) and key in self.ds)

    def __getattr__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise AttributeError(key)
        return value

    @property
    def file_meta(self) -> Any:
        """The file meta information of the underlying dataset."""
        return self._meta if self._meta is not None else self.ds.file_meta


HeaderLike: TypeAlias = Dataset | HeaderView  # what the clean stage's header checks accept

_TRANSFER_SYNTAX = 0x00020010


def _not_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # Float, Double Float, Pixel Data


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    """Where dcmread(stop_before_pixels=True) stops."""
    return int(tag) in _PIXEL_TAGS  # int(): BaseTag's own comparisons run in Python


def read_plain_meta(fp: BinaryIO) -> tuple[Dataset, UID] | None:
    """A Part 10 file's meta and transfer syntax, `fp` just past the 'DICM' prefix, when the syntax
    is a standard little-endian one the dataset can be read in directly with `read_dataset`; None
    when anything else (a missing or implicit-VR meta, big endian, deflate, a private syntax) needs
    pydicom's own readers. Raises what read_dataset raises on a broken meta."""
    meta = read_dataset(fp, False, True, stop_when=_not_meta)
    elem = meta._dict.get(_TRANSFER_SYNTAX)  # type: ignore[call-overload]  # an int is a tag here
    if not isinstance(elem, RawDataElement) or elem.VR != "UI" or not isinstance(elem.value, bytes):
        return None
    uid = UID(elem.value.decode("ascii").rstrip(" \0"))
    # is_transfer_syntax raises for private UIDs: the caller's fallback reads those
    if not uid.is_transfer_syntax or not uid.is_little_endian or uid == DeflatedExplicitVRLittleEndian:
        return None
    return meta, uid


def _read_part10(fp: BinaryIO) -> HeaderView | None:
    """A Part 10 file's meta and dataset in a little-endian syntax, or None to leave it to dcmread."""
    if fp.read(132)[128:] != b"DICM":
        return None
    plain = read_plain_meta(fp)
    if plain is None:
        return None
    meta, uid = plain
    ds = read_dataset(fp, uid.is_implicit_VR, True, stop_when=_at_pixels)
    # As dcmread: the dataset's encoding is the transfer syntax's, even where read_dataset found
    # the elements written otherwise (each raw element keeps the encoding it was read with).
    ds.set_original_encoding(uid.is_implicit_VR, True, ds.original_character_set)
    return HeaderView(ds, HeaderView(meta))


def read_header(fp: BinaryIO) -> HeaderView:
    """The header of an open file up to its Pixel Data, `fp` left at the Pixel Data tag (as dcmread does)."""
    start = fp.tell()
    try:
        view = _read_part10(fp)
    except Exception:  # whatever the short path cannot read, dcmread reads or names
        view = None
    if view is None:
        fp.seek(start)
        view = HeaderView(pydicom.dcmread(fp, stop_before_pixels=True, force=True))
    return view
