"""The clean stage's direct pixel paths agree with radflow.dicom.pixels and radflow.dicom.lut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radflow.dicom import lut, pixels
from radflow.dicom.header import read_header
from radflow.dicom.stored import pixel_recipe, stored_values

CT = "1.2.840.10008.5.1.4.1.1.2"


def write(path: Path, words: np.ndarray, *, stored: int, signed: bool, ts: str, **extra: object) -> Path:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID, meta.MediaStorageSOPClassUID = UID(ts), UID(CT)
    meta.MediaStorageSOPInstanceUID = UID("1.2.3")
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CT, "1.2.3", "CT"
    ds.Rows, ds.Columns = words.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, stored, stored - 1
    ds.PixelRepresentation = int(signed)
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = words.astype("<u2").tobytes()
    ds.save_as(path, implicit_vr=ts == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("stored", "signed", "ts"),
    [
        (16, True, ExplicitVRLittleEndian),
        (12, True, ExplicitVRLittleEndian),
        (12, False, ImplicitVRLittleEndian),
        (16, False, ImplicitVRLittleEndian),
    ],
)
def test_direct_paths_match_pixels_and_lut(tmp_path: Path, stored: int, signed: bool, ts: str) -> None:
    rng = np.random.default_rng(stored + signed)
    words = rng.integers(0, 2**16, (6, 5), dtype=np.uint32).astype(np.uint16)  # garbage in the high bits too
    words[0, 0] = 5  # the padding value
    path = write(
        tmp_path / "a.dcm",
        words,
        stored=stored,
        signed=signed,
        ts=ts,
        RescaleSlope=2,
        RescaleIntercept=-1024,
        PixelPaddingValue=5,
    )
    full = pydicom.dcmread(path)
    expected_stored = pixels.decode_frames(full)
    np.testing.assert_array_equal(stored_values(full), expected_stored)
    expected = lut.pad_to_air(full, expected_stored, lut.modality_lut(full, expected_stored))[0]
    with open(path, "rb") as fp:
        head = pydicom.dcmread(fp, stop_before_pixels=True)
        recipe = pixel_recipe(head, fp)
    assert recipe is not None
    with open(path, "rb") as fp:  # the clean stage's own header read gives the same recipe
        assert pixel_recipe(read_header(fp), fp) == recipe
    out = np.empty(words.shape, np.float32)
    recipe.values(str(path), out)
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0] == lut.AIR_HU


def test_no_recipe_for_frames_or_short_data(tmp_path: Path) -> None:
    words = np.zeros((4, 4), np.uint16)
    path = write(
        tmp_path / "mf.dcm",
        np.zeros((8, 4), np.uint16),
        stored=16,
        signed=False,
        ts=ExplicitVRLittleEndian,
        NumberOfFrames=2,
    )
    with open(path, "rb") as fp:
        assert pixel_recipe(pydicom.dcmread(fp, stop_before_pixels=True), fp) is None
    path = write(tmp_path / "short.dcm", words, stored=16, signed=False, ts=ExplicitVRLittleEndian, Rows=8)
    with open(path, "rb") as fp:
        assert pixel_recipe(pydicom.dcmread(fp, stop_before_pixels=True), fp) is None
