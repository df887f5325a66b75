"""Decoding conformance on the shared DICOM corpus: transfer syntaxes, 12-bit signs, fragments, odd files."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radflow.dicom.pixels import DecodeError, decode_frames, modality_lut, radiograph_to_unit

pytestmark = pytest.mark.corpus


def _read(path: Path) -> Dataset | None:
    """The dataset at `path` when pydicom can read it at all (force: no-preamble files too), else None."""
    try:
        return pydicom.dcmread(path, force=True)
    except Exception:  # not DICOM or unreadable: a disposition of ingest, outside the pixel API
        return None


def _images(folder: Path) -> Iterator[tuple[Path, Dataset]]:
    """Every readable file under `folder` that has Pixel Data."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = _read(path)
        if ds is not None and "PixelData" in ds:
            yield path, ds


def _decode(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path, force=True)
    return decode_frames(ds)


def test_the_nine_transfer_syntaxes_of_dcm_qa_ts_decode_to_identical_pixels(dicom_corpus: Path) -> None:
    folder = dicom_corpus / "dcm_qa_ts" / "In"
    reference = _decode(folder / "1.dcm")  # Explicit VR Little Endian, uncompressed
    syntaxes = {pydicom.dcmread(folder / "1.dcm").file_meta.TransferSyntaxUID}
    for k in range(2, 10):
        ds = pydicom.dcmread(folder / f"{k}.dcm")
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        decoded = decode_frames(ds)
        assert decoded.dtype == reference.dtype, k
        assert np.array_equal(decoded, reference), f"{k}.dcm ({ds.file_meta.TransferSyntaxUID.name})"
    assert len(syntaxes) == 7  # two encoders each for JPEG lossless and JPEG-LS
    assert reference.shape == (1, 384, 384) and reference.max() > 0


@pytest.mark.parametrize(
    ("name", "at_0x0f0f", "at_0xffff"),
    [("12bitSigned_0x0F0F", -241, -1), ("12bitUnsigned_0x0F0F", 3855, 4095)],
)
def test_dcm_qa_12bit_stripes_decode_as_its_readme_says(
    dicom_corpus: Path, name: str, at_0x0f0f: int, at_0xffff: int
) -> None:
    ds = pydicom.dcmread(dicom_corpus / "dcm_qa_12bit" / "In" / f"{name}.dcm")
    raw = np.frombuffer(ds.PixelData, "<u2").reshape(1, ds.Rows, ds.Columns)
    decoded = decode_frames(ds)
    assert (raw == 0x0F0F).sum() > 100 and (raw == 0xFFFF).sum() > 100
    assert set(np.unique(decoded[raw == 0x0F0F])) == {at_0x0f0f}
    assert set(np.unique(decoded[raw == 0xFFFF])) == {at_0xffff}
    low = (raw & 0x0FFF).astype(np.int32)
    expected = np.where(low >= 2048, low - 4096, low) if ds.PixelRepresentation else low
    assert np.array_equal(decoded, expected)  # every pixel: the high nibble ignored, bit 11 the sign


def test_dcm_qa_12bit_original_scan_has_no_value_above_12_bits(dicom_corpus: Path) -> None:
    ds = pydicom.dcmread(dicom_corpus / "dcm_qa_12bit" / "In" / "12bitUnsigned.dcm")
    raw = np.frombuffer(ds.PixelData, "<u2")
    decoded = decode_frames(ds)
    assert (raw > 4095).any()  # garbage in the unused bits ...
    assert decoded.max() <= 4095 and np.array_equal(decoded.ravel(), raw & 0x0FFF)  # ... masked away


def test_dcm_qa_frag_multi_fragment_frames_decode_whole(dicom_corpus: Path) -> None:
    shapes: dict[str, int] = {}
    for path, ds in _images(dicom_corpus / "dcm_qa_frag"):
        decoded = decode_frames(ds)
        assert decoded.shape == (1, ds.Rows, ds.Columns), path.name
        assert decoded.max() > 0 or path.name.startswith(("5001001", "6001001")), path.name
        syntax = ds.file_meta.TransferSyntaxUID.name
        shapes[syntax] = shapes.get(syntax, 0) + 1
    assert sorted(shapes.values()) == [96, 96] and len(shapes) == 2


PT = "odd_dicom/pydicom_test_files/"

# Compressed files and the uncompressed file they were made from (lossless), in pydicom_data and odd_dicom.
LOSSLESS_PAIRS = [
    ("pydicom_data/693_J2KR.dcm", "pydicom_data/693_UNCR.dcm"),
    ("pydicom_data/MR2_J2KR.dcm", "pydicom_data/MR2_UNCR.dcm"),
    ("pydicom_data/US1_J2KR.dcm", "pydicom_data/US1_UNCR.dcm"),
    ("pydicom_data/emri_small_RLE.dcm", "pydicom_data/emri_small.dcm"),
    ("pydicom_data/emri_small_big_endian.dcm", "pydicom_data/emri_small.dcm"),
    ("pydicom_data/emri_small_jpeg_2k_lossless.dcm", "pydicom_data/emri_small.dcm"),
    ("pydicom_data/emri_small_jpeg_ls_lossless.dcm", "pydicom_data/emri_small.dcm"),
    ("pydicom_data/OBXXXX1A_rle.dcm", "pydicom_data/OBXXXX1A.dcm"),
    ("pydicom_data/OBXXXX1A_expb_2frame.dcm", "pydicom_data/OBXXXX1A_2frame.dcm"),
    ("pydicom_data/liver_j2k.dcm", "pydicom_data/liver.dcm"),
    ("pydicom_data/liver_expb.dcm", "pydicom_data/liver.dcm"),
    ("odd_dicom/pydicom_test_files/JPEG2000.dcm", "pydicom_data/JPEG2000_UNC.dcm"),
    (PT + "MR_small_RLE.dcm", PT + "MR_small.dcm"),
    (PT + "MR_small_bigendian.dcm", PT + "MR_small.dcm"),
    (PT + "MR_small_expb.dcm", PT + "MR_small.dcm"),
    (PT + "MR_small_implicit.dcm", PT + "MR_small.dcm"),
    (PT + "MR_small_jp2klossless.dcm", PT + "MR_small.dcm"),
    (
        PT + "MR_small_jpeg_ls_lossless.dcm",
        PT + "MR_small.dcm",
    ),
    (PT + "MR_small_padded.dcm", PT + "MR_small.dcm"),
    (
        "odd_dicom/fodicom_test_data/D_CLUNIE_CT1_RLE_FRAGS.dcm",
        "odd_dicom/fodicom_test_data/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_ELE_undefinded_length.dcm",
    ),
]


@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding")  # MR_small_padded, by design
@pytest.mark.parametrize(("compressed", "reference"), LOSSLESS_PAIRS, ids=[p[0] for p in LOSSLESS_PAIRS])
def test_lossless_variants_decode_to_their_uncompressed_reference(
    dicom_corpus: Path, compressed: str, reference: str
) -> None:
    decoded, expected = _decode(dicom_corpus / compressed), _decode(dicom_corpus / reference)
    assert decoded.dtype.isnative
    assert decoded.shape == expected.shape
    assert np.array_equal(decoded, expected)


# Broken files whose pixels must be refused with a reason, never decoded to garbage nor crash.
BROKEN = {
    "odd_dicom/pydicom_test_files/MR_truncated.dcm": "DECODE_FAILED",
    "odd_dicom/pydicom_test_files/JPEG-lossy.dcm": "DECODE_FAILED",
    "odd_dicom/pydicom_test_files/JPEG2000-embedded-sequence-delimiter.dcm": "DECODE_FAILED",
    "odd_dicom/pydicom_test_files/badVR.dcm": "DECODE_FAILED",
    "odd_dicom/fodicom_test_data/GH1146.dcm": "DECODE_FAILED",
    "odd_dicom/fodicom_test_data/genFile.dcm": "DECODE_FAILED",
    "odd_dicom/fodicom_test_data/multiframe.dcm": "DECODE_FAILED",
    "pydicom_data/liver_deflate.dcm": "DECODE_UNSUPPORTED_TS",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_pixel_data_raises_decode_error_with_its_reason(dicom_corpus: Path, name: str) -> None:
    with pytest.raises(DecodeError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _decode(dicom_corpus / name)
    assert err.value.reason == BROKEN[name]
    assert err.value.detail.endswith(".") and "\n" not in err.value.detail


def test_acr_nema_file_without_transfer_syntax_decodes_by_inference(dicom_corpus: Path) -> None:
    ds = pydicom.dcmread(dicom_corpus / "odd_dicom" / "fodicom_test_data" / "CR-MONO1-10-chest", force=True)
    assert "TransferSyntaxUID" not in ds.get("file_meta", {})
    decoded = decode_frames(ds)
    assert decoded.shape == (1, 440, 440) and 0 < decoded.max() < 1024  # 10 bits stored
    unit = radiograph_to_unit(ds, decoded[0])
    assert unit.min() >= 0 and unit.max() <= 1 and unit.std() > 0.05


@pytest.mark.parametrize("folder", ["pydicom_data", "odd_dicom"])
def test_every_image_decodes_or_raises_decode_error(dicom_corpus: Path, folder: str) -> None:
    decoded = refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, ds in _images(dicom_corpus / folder):
            try:
                frames = decode_frames(ds)
            except DecodeError as err:
                assert err.reason in {"DECODE_FAILED", "DECODE_UNSUPPORTED_TS"}, path.name
                refused += 1
                continue
            assert frames.dtype.kind in "iu" and frames.dtype.isnative, path.name
            assert frames.shape[1:3] == (ds.Rows, ds.Columns), path.name
            decoded += 1
    assert decoded > 5 * refused > 0


def test_enhanced_ct_rescale_comes_from_the_shared_functional_group(dicom_corpus: Path) -> None:
    ds = pydicom.dcmread(dicom_corpus / "pydicom_data" / "eCT_Supplemental.dcm")
    assert "RescaleIntercept" not in ds
    hu = modality_lut(ds, decode_frames(ds))
    assert hu.shape == (2, 512, 512) and hu.dtype == np.float32
    assert hu.min() == -1024.0  # air, via SharedFunctionalGroupsSequence's PixelValueTransformationSequence
