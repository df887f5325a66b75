"""Diffusion weightings from standard and vendors' private attributes, as files on disk hold them."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage

from radflow.dicom.diffusion import weighting
from radflow.dicom.header import read_header

X = "g1.000,0.000,0.000"


def _read(ds: Dataset, implicit: bool = False) -> Dataset:
    """`ds` written as a Part 10 file and read back through clean's header reader."""
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, "1.2.3.4", "MR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return read_header(buffer)  # type: ignore[return-value]  # a HeaderView reads like a Dataset


def _private(blocks: list[tuple[int, str, int, str, object]], slot: int | None = None) -> Dataset:
    ds = Dataset()
    if slot is not None:  # another creator took the first block: the vendor's sits in a later one
        ds.add_new((blocks[0][0] << 16) | 0x0010, "LO", "SOME OTHER VENDOR")
    for group, creator, offset, vr, value in blocks:
        ds.private_block(group, creator, create=True).add_new(offset, vr, value)
    return ds


def test_standard_attributes_key_the_weighting() -> None:
    ds = Dataset()
    ds.DiffusionBValue, ds.DiffusionGradientOrientation = 1000.0, [1.0, 0.0, 0.0]
    assert weighting(_read(ds)) == ("b1000", X)
    ds = Dataset()
    ds.DiffusionBValue = 0.0
    assert weighting(_read(ds)) == ("b0", "")
    assert weighting(_read(Dataset())) == ("", "") and weighting(None) == ("", "")


VENDORS: dict[str, Callable[[int | None], Dataset]] = {
    "siemens": lambda slot: _private(
        [
            (0x0019, "SIEMENS MR HEADER", 0x0C, "IS", 1000),
            (0x0019, "SIEMENS MR HEADER", 0x0E, "FD", [1.0, 0.0, 0.0]),
        ],
        slot,
    ),
    "ge": lambda slot: _private(
        [
            (0x0043, "GEMS_PARM_01", 0x39, "IS", [1_000_001_000, 8, 0, 0]),  # b + 10^9
            *[(0x0019, "GEMS_ACQU_01", 0xBB + i, "DS", v) for i, v in enumerate((1.0, 0.0, 0.0))],
        ],
        slot,
    ),
    "philips": lambda slot: _private(
        [
            (0x2001, "Philips Imaging DD 001", 0x03, "FL", 1000.0),
            *[
                (0x2005, "Philips MR Imaging DD 001", 0xB0 + i, "FL", v)
                for i, v in enumerate((1.0, 0.0, 0.0))
            ],
        ],
        slot,
    ),
}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("slot", [None, 0x11])
def test_vendor_private_attributes_key_the_weighting(vendor: str, implicit: bool, slot: int | None) -> None:
    assert weighting(_read(VENDORS[vendor](slot), implicit)) == ("b1000", X)


def test_untyped_private_values_are_read_as_the_vendor_writes_them() -> None:
    """An anonymiser that re-encodes private elements as UN leaves raw bytes: text or binary floats."""
    ds = Dataset()
    ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(
        0x03, "UN", struct.pack("<f", 800)
    )
    block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    for i, v in enumerate((0.0, 0.6, 0.8)):
        block.add_new(0xB0 + i, "UN", struct.pack("<f", v))
    assert weighting(_read(ds)) == ("b800", "g0.000,0.600,0.800")
    ds = Dataset()
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "UN", b"500 ")
    assert weighting(_read(ds)) == ("b500", "")


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")  # pydicom's own, for 'high'
def test_standard_attributes_win_and_malformed_private_values_are_no_weighting() -> None:
    ds = VENDORS["siemens"](None)
    ds.DiffusionBValue = 50.0
    assert weighting(_read(ds))[0] == "b50"
    ds = _private([(0x0019, "SIEMENS MR HEADER", 0x0C, "UN", b"high")])
    assert weighting(_read(ds)) == ("", "")
    ds = _private([(0x0019, "SOMEONE ELSE", 0x0C, "IS", 1000)])  # the offset, but not Siemens' block
    assert weighting(_read(ds)) == ("", "")
