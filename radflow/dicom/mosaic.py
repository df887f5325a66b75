"""Siemens mosaics: many slices tiled in one image, unpacked into a stack with true slice positions.

A mosaic's header describes the big tiled image; the slices need (a) their count, from
NumberOfImagesInMosaic (0019,100A) or the CSA image header, (b) the slice normal, from the CSA
image header's SliceNormalVector (0029,1010), and (c) a corrected origin: ImagePositionPatient
refers to the corner of the whole mosaic, so it is moved by half the mosaic-minus-tile size, as
dcm2niix and nibabel do. nibabel is not a dependency, so the CSA2/CSA1 reader is a small copy of
the published layout (nibabel.nicom.csareader).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

__all__ = ["Mosaic", "csa_tags", "mosaic_layout", "unpack"]

CSA_IMAGE_HEADER = (0x0029, 0x1010)
IMAGES_IN_MOSAIC = (0x0019, 0x100A)
MAX_ITEMS = 1000


@dataclass(frozen=True)
class Mosaic:
    """How a mosaic image splits into slices and where those slices lie."""

    tiles: int  # tiles per side of the square grid
    count: int  # slices actually present
    rows: int  # of one slice
    cols: int
    positions: tuple[tuple[float, float, float], ...]  # ImagePositionPatient of each slice, tile order


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def csa_tags(raw: bytes) -> dict[str, list[str]]:
    """The named values of a Siemens CSA header (CSA2 'SV10' or CSA1), as strings."""
    csa2 = raw[:4] == b"SV10"
    ptr = 8 if csa2 else 0
    n_tags, _ = struct.unpack_from("<2I", raw, ptr)
    ptr += 8
    if not 0 < n_tags <= MAX_ITEMS:
        raise ValueError("CSA header tag count out of range")
    tags: dict[str, list[str]] = {}
    first_items = 0
    for number in range(n_tags):
        name, vm, _vr, _syngodt, n_items, _ = struct.unpack_from("<64si4s3i", raw, ptr)
        ptr += 84
        first_items = n_items if number == 1 else first_items
        if not 0 <= n_items <= MAX_ITEMS:
            raise ValueError("CSA header item count out of range")
        values: list[str] = []
        for _item in range(n_items):
            x0, x1, _, _ = struct.unpack_from("<4i", raw, ptr)
            ptr += 16
            length = x1 if csa2 else x0 - first_items
            if length < 0 or ptr + length > len(raw):
                break
            values.append(_text(raw[ptr : ptr + length]))
            ptr += length + (-length % 4)
        tags[_text(name)] = [v for v in values[: vm or n_items] if v]
    return tags


def _count(ds: Dataset, tags: dict[str, list[str]]) -> int:
    """NumberOfImagesInMosaic: the Siemens public-private tag, else the CSA header."""
    elem = ds.get(IMAGES_IN_MOSAIC)
    value: Any = elem.value if elem is not None else (tags.get("NumberOfImagesInMosaic") or [None])[0]
    if isinstance(value, bytes):
        value = int.from_bytes(value[:2], "little") if len(value) >= 2 else None
    return int(float(value)) if value not in (None, "") else 0


def mosaic_layout(ds: Dataset) -> Mosaic | None:
    """The slices of a mosaic header, or None when its count, normal or geometry cannot be found."""
    elem = ds.get(CSA_IMAGE_HEADER)
    try:
        tags = csa_tags(bytes(elem.value)) if elem is not None else {}
        count = _count(ds, tags)
        normal = np.array([float(v) for v in tags.get("SliceNormalVector", [])], float)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient], float)
        ipp = np.array([float(v) for v in ds.ImagePositionPatient], float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        gap = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 0)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError, struct.error):
        return None
    tiles = math.ceil(math.sqrt(count)) if count > 0 else 0
    if tiles == 0 or normal.shape != (3,) or gap <= 0 or rows % tiles or cols % tiles or iop.shape != (6,):
        return None
    tile_rows, tile_cols = rows // tiles, cols // tiles
    # ImagePositionPatient is the corner of the whole mosaic; move it to the first tile's corner.
    origin = ipp + iop[3:] * dr * (rows - tile_rows) / 2 + iop[:3] * dc * (cols - tile_cols) / 2
    normal /= np.linalg.norm(normal)
    positions = tuple(tuple(float(v) for v in origin + k * gap * normal) for k in range(count))
    return Mosaic(tiles, count, tile_rows, tile_cols, positions)  # type: ignore[arg-type]


def unpack(image: NDArray[Any], tiles: int, count: int) -> NDArray[Any]:
    """A (rows, cols) mosaic as (count, rows/tiles, cols/tiles) slices, tiles read row by row."""
    rows, cols = image.shape[0] // tiles, image.shape[1] // tiles
    grid = image.reshape(tiles, rows, tiles, cols).transpose(0, 2, 1, 3)
    return grid.reshape(tiles * tiles, rows, cols)[:count]
