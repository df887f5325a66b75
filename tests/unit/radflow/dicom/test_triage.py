"""Per-file triage: SOP class, pixels, modality, derived images, burned-in text, intent, geometry."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from radflow.config import CleanParams
from radflow.dicom.instances import frame_slices
from radflow.dicom.triage import (
    geometry_verdict,
    header_verdict,
    inspect_file,
    is_image_sop,
    manifest_verdict,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
DICOMDIR = "1.2.840.10008.1.3.10"
MODALITIES = ["CT", "MR", "CR", "DX"]


def row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "is_dicom": True,
        "read_error": "",
        "sop_class_uid": CT,
        "has_pixel_data": True,
        "modality": "CT",
    }
    return {**base, **kw}


def header(**kw: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.Modality, ds.ImageType, ds.SamplesPerPixel = (
        CT,
        "CT",
        ["ORIGINAL", "PRIMARY", "AXIAL"],
        1,
    )
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.Rows, ds.Columns = [0.5, 0.5], 4, 4
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_is_image_sop() -> None:
    assert is_image_sop(CT) and is_image_sop(DX_PRESENTATION)
    assert not is_image_sop(BASIC_TEXT_SR) and not is_image_sop(SEGMENTATION) and not is_image_sop(DICOMDIR)
    assert is_image_sop("1.2.3.4.5.6.7")  # private: judged by its pixels later


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"is_dicom": False}, "NOT_DICOM"),
        ({"read_error": "header truncated"}, "UNREADABLE"),
        ({"sop_class_uid": BASIC_TEXT_SR}, "NON_IMAGE_SOP"),
        ({"sop_class_uid": DICOMDIR}, "NON_IMAGE_SOP"),
        ({"has_pixel_data": False}, "NO_PIXEL_DATA"),
        ({"modality": "US"}, "MODALITY_EXCLUDED"),
        ({"modality": ""}, "MODALITY_EXCLUDED"),
    ],
)
def test_manifest_verdicts(changes: dict[str, object], reason: str) -> None:
    verdict = manifest_verdict(row(**changes), MODALITIES)
    assert verdict is not None and verdict.reason == reason and verdict.detail.endswith(".")


@pytest.mark.parametrize(
    ("error", "reason", "says"),
    [
        ("cannot list the folder; its files were not scanned", "UNREADABLE", "folder could not be listed"),
        ("cannot open the file: permission denied", "UNREADABLE", "(permission denied)"),
        ("the file name is not valid UTF-8; rename the file to ingest it", "UNREADABLE", "rename the file"),
        ("gzip-compressed; gunzip it to ingest", "NOT_DICOM", "gunzip it"),
        ("not DICOM: a PDF document", "NOT_DICOM", "not DICOM: a PDF document."),
    ],
)
def test_files_that_are_not_dicom_say_why(error: str, reason: str, says: str) -> None:
    verdict = manifest_verdict(row(is_dicom=False, read_error=error), MODALITIES)
    assert verdict is not None and verdict.reason == reason and says in verdict.detail


def test_manifest_verdict_lets_a_plain_ct_through() -> None:
    assert manifest_verdict(row(), MODALITIES) is None
    assert manifest_verdict(row(modality="ct"), MODALITIES) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "LOCALIZER"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "PROJECTION IMAGE"]}, "LOCALIZER"),
        ({"ImageType": ["DERIVED", "SECONDARY", "AXIAL"]}, "DERIVED"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7", "BurnedInAnnotation": "NO"}, "DERIVED"),
        ({"BurnedInAnnotation": "YES"}, "BURNED_IN"),
        ({"SamplesPerPixel": 3}, "COLOR_UNSUPPORTED"),
        ({"Modality": "DX", "PresentationIntentType": "FOR PROCESSING"}, "FOR_PROCESSING"),
        ({"Modality": "DX", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.1.1"}, "FOR_PROCESSING"),
    ],
)
def test_header_verdicts(changes: dict[str, object], reason: str) -> None:
    verdict = header_verdict(header(**changes), keep_for_processing=False)
    assert verdict is not None and verdict.reason == reason


def test_for_processing_kept_when_asked_and_derived_primary_passes() -> None:
    assert header_verdict(header(Modality="DX", PresentationIntentType="FOR PROCESSING"), True) is None
    assert header_verdict(header(ImageType=["DERIVED", "PRIMARY", "AXIAL"]), False) is None
    assert header_verdict(header(), False) is None


def _instance(ds: Dataset):  # type: ignore[no-untyped-def]
    from radflow.dicom.instances import Instance

    return Instance(0, "1", "2", "3", "1", str(ds.Modality), 4, 4, (), frame_slices(ds, 0))


@pytest.mark.parametrize(
    "changes",
    [
        {"ImagePositionPatient": None},
        {"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]},
        {"ImageOrientationPatient": [1, 0, 0]},
        {"PixelSpacing": [0, 0.5]},
        {"PixelSpacing": None},
    ],
)
def test_missing_or_insane_geometry(changes: dict[str, object]) -> None:
    ds = header()
    for k, v in changes.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    verdict = geometry_verdict(_instance(ds), 1e-3)
    assert verdict is not None and verdict.reason == "MISSING_GEOMETRY"


def test_radiograph_needs_only_a_pixel_spacing() -> None:
    ds = header(Modality="CR")
    del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.15, 0.15]
    assert geometry_verdict(_instance(ds), 1e-3) is None
    del ds.ImagerPixelSpacing
    assert geometry_verdict(_instance(ds), 1e-3).reason == "MISSING_GEOMETRY"  # type: ignore[union-attr]


def test_enhanced_multiframe_geometry_comes_from_per_frame_groups() -> None:
    ds = header(NumberOfFrames=3)
    del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.7, 0.7]
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orient], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in range(3):
        item, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [0, 0, 3.0 * k]
        item.PlanePositionSequence = [pos]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    slices = frame_slices(ds, 7)
    assert [s.position for s in slices] == [(0.0, 0.0, 0.0), (0.0, 0.0, 3.0), (0.0, 0.0, 6.0)]
    assert all(s.pixel_spacing == (0.7, 0.7) and s.row == 7 for s in slices)
    assert [s.frame for s in slices] == [0, 1, 2]


def test_enhanced_mr_diffusion_weightings_split_into_stacks() -> None:
    """b-value and gradient direction from MRDiffusionSequence (nested direction) key the stack."""
    ds = header(NumberOfFrames=3, Modality="MR")
    frames = []
    for b, direction in ((0.0, None), (1000.0, [1.0, 0.0, 0.0]), (1000.0, [0.0, 0.6, 0.8])):
        diffusion = Dataset()
        diffusion.DiffusionBValue = b
        if direction is not None:
            gradient = Dataset()
            gradient.DiffusionGradientOrientation = direction
            diffusion.DiffusionGradientDirectionSequence = [gradient]
        item = Dataset()
        item.MRDiffusionSequence = [diffusion]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    keys = [s.split_key[-2:] for s in frame_slices(ds, 0)]
    assert keys == [("b0", ""), ("b1000", "g1.000,0.000,0.000"), ("b1000", "g0.000,0.600,0.800")]


def test_inspect_file_reads_a_header_and_flags_unreadable(tmp_path: Path) -> None:
    ds = header(SOPInstanceUID="1.2.3.4", StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3", SeriesNumber=1)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(32)
    ds.save_as(tmp_path / "ok.dcm", enforce_file_format=True)
    found = inspect_file(str(tmp_path / "ok.dcm"), 3, CleanParams())
    assert not isinstance(found, tuple) and found.row == 3 and found.modality == "CT"
    assert found.recipe is not None and found.recipe.rows == 4
    bad = inspect_file(str(tmp_path / "gone-since-ingest.dcm"), 4, CleanParams())
    assert isinstance(bad, tuple) and bad.reason == "UNREADABLE"
