"""HeaderView and read_header give the values pydicom gives, for every attribute the clean stage reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRBigEndian, ImplicitVRLittleEndian

from radflow.dicom.header import HeaderView, read_header
from radflow.dicom.workers import quiet

KEYWORDS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "Modality",
    "ImageType", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept", "InstanceNumber", "BurnedInAnnotation",
    "PresentationIntentType", "AcquisitionNumber", "AcquisitionTime", "ContentTime", "TriggerTime",
    "TemporalPositionIdentifier", "EchoNumbers", "PixelPaddingValue", "SpacingBetweenSlices",
    "SliceThickness",
]  # fmt: skip


def plain(value: Any) -> Any:
    if isinstance(value, MultiValue | list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    return value


def same_values(ds: pydicom.Dataset) -> list[str]:
    view = HeaderView(ds)
    wrong = []
    for kw in KEYWORDS:
        ours, theirs = view.get(kw, "<absent>"), ds.get(kw, "<absent>")
        if plain(ours) != plain(theirs) and not (theirs is None and ours in ("", None)):
            wrong.append(f"{kw}: {ours!r} != {theirs!r}")
        if (kw in view) != (kw in ds):
            wrong.append(f"{kw}: presence differs")
    return wrong


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_matches_pydicom_in_implicit_and_big_endian_files(tmp_path: Path, syntax: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = UID("1.2.3.4")
    ds.Modality, ds.ImageType = "CT", ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns, ds.SeriesNumber, ds.InstanceNumber = 512, 260, 3, 17
    ds.ImagePositionPatient, ds.PixelSpacing = ["-1.5", "2", "3.25e1"], ["0.7", "0.7"]
    ds.RescaleSlope, ds.RescaleIntercept, ds.AcquisitionTime, ds.BurnedInAnnotation = (
        "1",
        "-1024",
        "101010.5",
        "",
    )
    little, implicit = syntax != ExplicitVRBigEndian, syntax == ImplicitVRLittleEndian
    pydicom.dcmwrite(
        tmp_path / "a.dcm", ds, implicit_vr=implicit, little_endian=little, enforce_file_format=True
    )
    read = pydicom.dcmread(tmp_path / "a.dcm", stop_before_pixels=True)
    assert same_values(read) == []
    view = HeaderView(pydicom.dcmread(tmp_path / "a.dcm", stop_before_pixels=True))
    assert view.Rows == 512 and view.Columns == 260 and view.ImagePositionPatient == [-1.5, 2.0, 32.5]
    with pytest.raises(AttributeError):
        _ = view.EchoNumbers


@pytest.mark.corpus
def test_matches_pydicom_on_the_corpus(dicom_corpus: Path) -> None:
    wrong = []
    files = [
        p for p in sorted(dicom_corpus.rglob("*")) if p.is_file() and p.suffix not in {".txt", ".md", ".pdf"}
    ]
    with quiet():
        for path in files:
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                expected = same_values(ds)
            except Exception:
                continue  # files pydicom itself cannot convert are not this view's business
            wrong += [f"{path.name}: {w}" for w in expected]
    assert wrong == []


def view_values(view: HeaderView) -> dict[str, Any]:
    return {kw: plain(view.get(kw, "<absent>")) for kw in KEYWORDS} | {
        "TransferSyntaxUID": str(view.file_meta.get("TransferSyntaxUID", "")),
        "SpecificCharacterSet": view.ds.get("SpecificCharacterSet"),
    }


def assert_reads_like_dcmread(path: Path) -> None:
    """read_header's values and its stop position equal those of dcmread(stop_before_pixels=True)."""
    with open(path, "rb") as fp:
        expected = HeaderView(pydicom.dcmread(fp, stop_before_pixels=True, force=True))
        expected_at = fp.tell()
    with open(path, "rb") as fp:
        found = read_header(fp)
        assert fp.tell() == expected_at, path.name
    assert view_values(found) == view_values(expected), path.name
    assert found.ds.original_encoding == expected.ds.original_encoding, path.name


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_read_header_reads_like_dcmread_and_falls_back_when_unusual(tmp_path: Path, syntax: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = UID("1.2.3.4")
    ds.Modality, ds.ImageType, ds.Rows, ds.Columns = "CT", ["ORIGINAL", "PRIMARY"], 2, 2
    ds.ImagePositionPatient, ds.RescaleIntercept = ["-1.5", "2", "3.25e1"], "-1024"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = bytes(8)
    little, implicit = syntax != ExplicitVRBigEndian, syntax == ImplicitVRLittleEndian
    pydicom.dcmwrite(
        tmp_path / "a.dcm", ds, implicit_vr=implicit, little_endian=little, enforce_file_format=True
    )
    pydicom.dcmwrite(tmp_path / "raw.dcm", ds, implicit_vr=implicit, little_endian=little)  # no preamble
    for name in ("a.dcm", "raw.dcm"):
        assert_reads_like_dcmread(tmp_path / name)
    with open(tmp_path / "a.dcm", "rb") as fp:
        view = read_header(fp)
        tag = fp.read(4)  # left at the Pixel Data tag, as the pixel recipe needs
    assert tag == (b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10")
    assert view.Rows == 2 and view.ImagePositionPatient == [-1.5, 2.0, 32.5] and "PixelData" not in view


@pytest.mark.corpus
def test_read_header_reads_like_dcmread_on_the_corpus(dicom_corpus: Path) -> None:
    files = [
        p for p in sorted(dicom_corpus.rglob("*")) if p.is_file() and p.suffix not in {".txt", ".md", ".pdf"}
    ]
    checked = 0
    with quiet():
        for path in files:
            try:
                with open(path, "rb") as fp:
                    same_values(pydicom.dcmread(fp, stop_before_pixels=True, force=True))
            except Exception:
                continue  # files pydicom itself cannot read are the fallback's business, tested above
            assert_reads_like_dcmread(path)
            checked += 1
    assert checked > 500
