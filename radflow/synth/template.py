"""Write many near-identical DICOM files fast: serialise once with placeholders, then substitute bytes.

pydicom builds and encodes a dataset in milliseconds; a 5,000-image import would spend most of its time
there. Every value that changes between files is given a placeholder of the same encoded length, so a
file is the template's header with those bytes replaced, followed by its own pixel data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite

UID_DIGITS = 38  # "2.25." + "1" + 38 digits = 44 characters, below 2**128 as a 2.25 UID requires


def fixed_uid(*parts: object) -> str:
    """A 44-character UID under the 2.25 (UUID-derived) root, fixed by `parts`."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return f"2.25.{10**UID_DIGITS + int.from_bytes(digest, 'big') % 10**UID_DIGITS}"


def placeholder_uid(number: int) -> str:
    """A recognisable 44-character UID to stand in the template for a real one."""
    return f"2.25.{10**UID_DIGITS + 777_000_000 + number}"


class FileTemplate:
    """A dataset serialised once; `render` substitutes same-length values and appends new pixel data."""

    def __init__(self, ds: Dataset, placeholders: Sequence[str]) -> None:
        buffer = BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        data = buffer.getvalue()
        pixels = bytes(ds.PixelData)
        if not data.endswith(pixels):
            raise ValueError("the template's pixel data must be its last element")
        self.head = data[: len(data) - len(pixels)]
        self.pixel_bytes = len(pixels)
        self.placeholders = [p.encode("ascii") for p in placeholders]
        missing = [p for p in self.placeholders if p not in self.head]
        if missing:
            raise ValueError(f"placeholders not found in the template header: {missing}")

    def render(self, values: Sequence[str], pixels: bytes) -> bytes:
        """The bytes of one file: each placeholder replaced by its value (same length), then `pixels`."""
        head = self.head
        for placeholder, value in zip(self.placeholders, values, strict=True):
            encoded = value.encode("ascii")
            if len(encoded) != len(placeholder):
                raise ValueError(f"value {value!r} does not have the placeholder's length {len(placeholder)}")
            head = head.replace(placeholder, encoded)
        if len(pixels) != self.pixel_bytes:
            raise ValueError(f"pixel data has {len(pixels)} bytes, the template {self.pixel_bytes}")
        return head + pixels

    def write(self, path: Path, values: Sequence[str], pixels: bytes) -> None:
        """Render and write one file, creating its folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.render(values, pixels))
