"""A fast read-only view of a header pydicom has read: plain values straight from the raw elements.

The clean stage reads ~40 attributes of every file. Through `Dataset.get` each costs ~10 µs of
keyword lookup, element conversion and validation, more than parsing the file; this view decodes
the few simple value representations it needs (codes, UIDs, decimal and integer strings, times,
binary integers) from the raw bytes in well under a microsecond, and hands everything else
(sequences, free text, private or malformed values) to pydicom unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any, TypeAlias

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

__all__ = ["HeaderLike", "HeaderView"]

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

    __slots__ = ("_raw", "ds")

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._raw: MutableMapping[Any, Any] = ds._dict  # pydicom's element store: raw until converted

    def get(self, key: str, default: Any = None) -> Any:
        """Like `Dataset.get(keyword, default)`."""
        found = _tag_and_vr(key)
        elem = self._raw.get(found[0]) if found is not None else None
        if elem is None:
            return self.ds.get(key, default) if found is None else default
        if isinstance(elem, RawDataElement) and (elem.VR in (None, found[1])):  # type: ignore[index]
            try:
                value = _decode(elem, found[1])  # type: ignore[index]
            except (UnicodeDecodeError, ValueError, struct.error):
                value = _MISSING  # malformed: pydicom's conversion decides what it means
            if value is not _MISSING:
                return value
        return self.ds.get(key, default)

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
        return self.ds.file_meta


HeaderLike: TypeAlias = Dataset | HeaderView  # what the clean stage's header checks accept
