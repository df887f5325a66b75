"""Siemens mosaics: CSA header values, tile unpacking and the corrected slice positions."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radflow.dicom.mosaic import csa_tags, mosaic_layout, unpack


def csa2(tags: dict[str, list[str]]) -> bytes:
    """A CSA2 ('SV10') header holding string items, laid out as Siemens writes it."""
    out = b"SV10" + b"\4\3\2\1" + struct.pack("<2I", len(tags), 77)
    for name, values in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), b"DS\0\0", 3, len(values), 77)
        for v in values:
            raw = v.encode() + b"\0"
            out += struct.pack("<4i", len(raw), len(raw), 77, len(raw)) + raw + b"\0" * (-len(raw) % 4)
    return out


def mosaic_header(count: int = 5, normal: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> Dataset:
    ds = Dataset()
    ds.Rows = ds.Columns = 12  # 3×3 tiles of 4×4
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-10.0, -20.0, 5.0]
    ds.PixelSpacing = [2.0, 2.0]
    ds.SpacingBetweenSlices = 3.0
    ds.add_new(
        (0x0029, 0x1010),
        "OB",
        csa2(
            {
                "NumberOfImagesInMosaic": [str(count)],
                "SliceNormalVector": [str(v) for v in normal],
            }
        ),
    )
    return ds


def test_csa_tags_reads_named_values() -> None:
    tags = csa_tags(csa2({"NumberOfImagesInMosaic": ["35"], "SliceNormalVector": ["0", "0.1", "0.99"]}))
    assert tags["NumberOfImagesInMosaic"] == ["35"]
    assert tags["SliceNormalVector"] == ["0", "0.1", "0.99"]


def test_unpack_reads_tiles_row_by_row() -> None:
    tiles = np.arange(9).repeat(16).reshape(9, 4, 4)  # tile k is filled with k
    mosaic = tiles.reshape(3, 3, 4, 4).transpose(0, 2, 1, 3).reshape(12, 12)
    out = unpack(mosaic, 3, 7)
    assert out.shape == (7, 4, 4)
    assert [int(t[0, 0]) for t in out] == list(range(7))
    assert (out == tiles[:7]).all()


def test_layout_moves_the_origin_to_the_first_tile_and_steps_along_the_normal() -> None:
    layout = mosaic_layout(mosaic_header())
    assert layout is not None
    assert (layout.tiles, layout.count, layout.rows, layout.cols) == (3, 5, 4, 4)
    # half of (12 - 4) pixels of 2 mm along rows and columns
    assert layout.positions[0] == pytest.approx((-2.0, -12.0, 5.0))
    assert layout.positions[4] == pytest.approx((-2.0, -12.0, 17.0))


def test_layout_is_none_without_a_csa_normal() -> None:
    ds = mosaic_header()
    del ds[(0x0029, 0x1010)]
    assert mosaic_layout(ds) is None
