"""Duplicate SOP instances: identical copies kept once, re-encoded copies too, conflicts set apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from radflow.dicom.duplicates import resolve_duplicates

CT = "1.2.840.10008.5.1.4.1.1.2"


def write(path: Path, values: np.ndarray, rle: bool = False, truncate: bool = False) -> str:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CT, "1.2.3"
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CT, "1.2.3", "CT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = *values.shape, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    data = values.astype("<u2").tobytes()
    ds.PixelData = data[: len(data) // 2] if truncate else data
    if rle:  # the same pixels, different bytes: only decoding shows they are a copy
        ds.compress(RLELossless)
    ds.save_as(path, enforce_file_format=True)
    return path.name


def test_identical_and_reencoded_copies_keep_the_first_by_path(tmp_path: Path) -> None:
    pixels = np.arange(16, dtype=np.uint16).reshape(4, 4)
    names = [
        write(tmp_path / "a.dcm", pixels),
        write(tmp_path / "b.dcm", pixels),
        write(tmp_path / "c.dcm", pixels, rle=True),
        write(tmp_path / "solo.dcm", pixels),
    ]
    rows = [(0, "sop", names[0]), (1, "sop", names[1]), (2, "sop", names[2]), (3, "other", names[3])]
    dropped, verdicts = resolve_duplicates(rows, tmp_path)
    assert dropped == {1: 0, 2: 0} and verdicts == {}


def test_different_pixels_conflict_for_every_copy(tmp_path: Path) -> None:
    names = [write(tmp_path / f"{k}.dcm", np.full((4, 4), k, np.uint16)) for k in range(3)]
    dropped, verdicts = resolve_duplicates([(k, "sop", n) for k, n in enumerate(names)], tmp_path)
    assert dropped == {}
    assert {k: v.reason for k, v in verdicts.items()} == {
        0: "DUPLICATE_CONFLICT",
        1: "DUPLICATE_CONFLICT",
        2: "DUPLICATE_CONFLICT",
    }


def test_a_truncated_copy_fails_alone_and_its_intact_twins_are_deduplicated(tmp_path: Path) -> None:
    pixels = np.arange(16, dtype=np.uint16).reshape(4, 4)
    names = [
        write(tmp_path / "a.dcm", pixels),
        write(tmp_path / "b.dcm", pixels),
        write(tmp_path / "c.dcm", pixels, truncate=True),
    ]
    dropped, verdicts = resolve_duplicates([(k, "sop", n) for k, n in enumerate(names)], tmp_path)
    assert dropped == {1: 0}
    assert {k: v.reason for k, v in verdicts.items()} == {2: "DECODE_FAILED"}
