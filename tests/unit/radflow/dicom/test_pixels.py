"""Decoding and value transforms on datasets built here with pydicom: bits, signs, LUTs, windows, errors."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_windowing
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG2MPML,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from radflow.dicom.lut import rescale_per_frame, window
from radflow.dicom.pixels import (
    DecodeError,
    burned_in,
    decode_frames,
    decoder_plugins,
    for_processing,
    is_grayscale,
    modality_lut,
    pad_to_air,
    radiograph_to_unit,
    transfer_syntax,
)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def image(
    raw: np.ndarray,
    *,
    stored: int = 16,
    signed: bool = False,
    tsyntax: str = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
) -> Dataset:
    """A CT-like dataset whose Pixel Data is exactly `raw` (frames, rows, cols) as 16-bit words."""
    raw = np.asarray(raw)
    frames, rows, cols = raw.shape
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(tsyntax)
    ds.SOPClassUID = CT_IMAGE
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, stored, stored - 1
    ds.PixelRepresentation = int(signed)
    words = raw.astype(np.uint16 if raw.min() >= 0 else np.int16).view(np.uint16)
    ds.PixelData = words.astype(">u2" if tsyntax == ExplicitVRBigEndian else "<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def compressed(arr: np.ndarray, tsyntax: str, *, stored: int = 16, signed: bool = False) -> Dataset:
    """`arr` compressed by pydicom's encoders (lossless), so the expected stored values are known."""
    ds = image(arr, stored=stored, signed=signed)
    frames = arr.astype(np.int16 if signed else np.uint16)
    ds.compress(tsyntax, frames[0] if len(frames) == 1 else frames, generate_instance_uid=False)
    return ds


# --- decode_frames: bits, signs, byte order, shape -------------------------------------------------


def test_unsigned_12_bit_masks_garbage_in_the_high_bits() -> None:
    raw = np.array([[[0xF123, 0x0FFF, 0xA000, 0x0F0F]]], dtype=np.uint16)
    out = decode_frames(image(raw, stored=12))
    assert out.dtype == np.uint16
    assert out.tolist() == [[[0x123, 0xFFF, 0, 3855]]]


def test_signed_12_bit_is_sign_extended_from_high_bit_11() -> None:
    raw = np.array([[[0x0F0F, 0xFFFF, 0x07FF, 0x0800, 0xF800, 0x3005]]], dtype=np.uint16)
    out = decode_frames(image(raw, stored=12, signed=True))
    assert out.dtype == np.int16
    assert out.tolist() == [[[-241, -1, 2047, -2048, -2048, 5]]]


@pytest.mark.parametrize(("signed", "expected"), [(False, [0xABC, 0xFFF, 0x001]), (True, [-1348, -1, 1])])
def test_high_bit_above_bits_stored_reads_the_top_bits(signed: bool, expected: list[int]) -> None:
    raw = np.array([[[0xABC7, 0xFFF0, 0x001F]]], dtype=np.uint16)  # the low 4 bits are unused here
    ds = image(raw, stored=12, signed=signed)
    ds.HighBit = 15
    assert decode_frames(ds).tolist() == [[expected]]


def test_big_endian_decodes_to_native_byte_order_with_the_same_values() -> None:
    raw = np.array([[[-1000, 0, 1, 3000]], [[5, -5, 7, -7]]], dtype=np.int16)
    out = decode_frames(image(raw, signed=True, tsyntax=ExplicitVRBigEndian))
    assert out.dtype.isnative and out.dtype == np.int16
    assert np.array_equal(out, raw)


def test_number_of_frames_zero_reads_as_one() -> None:
    ds = image(np.array([[[1, 2]]], np.uint16))
    ds.NumberOfFrames = 0
    with pytest.warns(UserWarning):  # pydicom says it assumes 1
        assert decode_frames(ds).shape == (1, 1, 2)


def test_multi_frame_keeps_frames_first() -> None:
    raw = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    out = decode_frames(image(raw))
    assert out.shape == (3, 4, 5)
    assert np.array_equal(out, raw)


@pytest.mark.parametrize("tsyntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_lossless_codecs_give_back_signed_12_bit_values(tsyntax: str) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(-2048, 2048, size=(2, 64, 48)).astype(np.int16)
    ds = compressed(arr, tsyntax, stored=12, signed=True)
    assert ds.file_meta.TransferSyntaxUID == tsyntax
    assert np.array_equal(decode_frames(ds), arr)


def test_native_pixel_data_shorter_than_the_header_says_fails() -> None:
    ds = image(np.zeros((2, 4, 4), np.uint16))
    ds.NumberOfFrames = 3
    with pytest.raises(DecodeError) as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"
    assert "fewer" in err.value.detail


def test_native_pixel_data_holding_an_extra_frame_fails() -> None:
    ds = image(np.zeros((3, 4, 4), np.uint16))
    ds.NumberOfFrames = 2
    with pytest.warns(UserWarning), pytest.raises(DecodeError, match="frame") as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"


def test_compressed_frames_beyond_number_of_frames_fail_the_shape_check() -> None:
    ds = compressed(np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8), RLELossless)
    ds.NumberOfFrames = 2
    with pytest.warns(UserWarning), pytest.raises(DecodeError, match="NumberOfFrames") as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"


def test_a_corrupt_stream_fails_after_every_plugin_was_tried() -> None:
    ds = compressed(np.arange(64, dtype=np.uint16).reshape(1, 8, 8), JPEGLSLossless)
    ds.PixelData = ds.PixelData.replace(b"\xff\xd8", b"\x00\x00", 1)  # no start-of-image marker
    with pytest.raises(DecodeError) as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"
    assert "JPEG-LS" in err.value.detail and "pyjpegls" in err.value.detail


@pytest.mark.parametrize(
    ("uid", "phrase"),
    [
        (
            "1.2.840.10008.1.2.8.1",
            "not a transfer syntax",
        ),  # Deflated Image Frame Compression, newer than pydicom
        ("1.2.3.4.5.6", "not a transfer syntax"),
        (MPEG2MPML, "No decoder"),
    ],
)
def test_transfer_syntaxes_without_a_decoder_are_unsupported(uid: str, phrase: str) -> None:
    ds = image(np.zeros((1, 2, 2), np.uint16))
    ds.file_meta.TransferSyntaxUID = UID(uid)
    with pytest.raises(DecodeError, match=phrase) as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_UNSUPPORTED_TS"
    assert uid not in err.value.detail


def test_missing_transfer_syntax_is_inferred_from_the_encoding_of_native_data() -> None:
    raw = np.array([[[1, -2, 300]]], dtype=np.int16)
    ds = image(raw, signed=True)
    buf = BytesIO()
    ds.file_meta = FileMetaDataset()  # no TransferSyntaxUID, as in ACR-NEMA files
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    read = pydicom.dcmread(BytesIO(buf.getvalue()), force=True)
    assert "TransferSyntaxUID" not in read.file_meta
    assert transfer_syntax(read) == "1.2.840.10008.1.2"
    assert np.array_equal(decode_frames(read), raw)


def test_missing_transfer_syntax_with_compressed_data_fails() -> None:
    ds = compressed(np.zeros((1, 8, 8), np.uint16), RLELossless)
    del ds.file_meta.TransferSyntaxUID
    with pytest.raises(DecodeError, match="compressed") as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"


@pytest.mark.parametrize("keyword", ["Rows", "BitsStored", "PixelRepresentation", "PixelData"])
def test_missing_image_pixel_attributes_fail_naming_the_tag(keyword: str) -> None:
    ds = image(np.zeros((1, 2, 2), np.uint16))
    delattr(ds, keyword)
    with pytest.raises(DecodeError, match=keyword.replace("PixelData", "Pixel Data")) as err:
        decode_frames(ds)
    assert err.value.reason == "DECODE_FAILED"


def test_details_carry_no_header_values() -> None:
    ds = image(np.zeros((1, 2, 2), np.uint16))
    ds.file_meta.TransferSyntaxUID = UID("1.2.3.4." + "9" * 20)
    with pytest.raises(DecodeError) as err:
        decode_frames(ds)
    assert "9999" not in str(err.value)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.add_new("NumberOfFrames", "IS", None)
    ds["NumberOfFrames"]._value = "1Doe"  # malformed as read from a broken file, unvalidated
    with pytest.raises(DecodeError, match="NumberOfFrames") as err:
        decode_frames(ds)
    assert "Doe" not in str(err.value)


def test_plugin_order_puts_the_fastest_first_and_keeps_fallbacks() -> None:
    assert decoder_plugins(JPEGLSLossless)[0] == "pyjpegls"
    assert decoder_plugins(RLELossless) == ("pylibjpeg", "pydicom")
    assert set(decoder_plugins(JPEG2000Lossless)) >= {"gdcm", "pylibjpeg"}


# --- modality LUT and padding ----------------------------------------------------------------------


def test_rescale_gives_hounsfield_units_in_float32() -> None:
    ds = image(np.array([[[0, 1024, 2048]]], np.uint16))
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    out = modality_lut(ds, decode_frames(ds))
    assert out.dtype == np.float32
    assert out.tolist() == [[[-1024.0, 0.0, 1024.0]]]


def test_no_rescale_is_identity() -> None:
    ds = image(np.array([[[7, 9]]], np.uint16))
    assert modality_lut(ds, decode_frames(ds)).tolist() == [[[7.0, 9.0]]]


def _transform(slope: float, intercept: float) -> Dataset:
    item = Dataset()
    item.RescaleSlope, item.RescaleIntercept, item.RescaleType = slope, intercept, "HU"
    group = Dataset()
    group.PixelValueTransformationSequence = Sequence([item])
    return group


def test_enhanced_multi_frame_rescales_each_frame_from_its_functional_group() -> None:
    ds = image(np.full((3, 2, 2), 100, np.uint16))
    ds.SharedFunctionalGroupsSequence = Sequence([_transform(1.0, -1024.0)])
    ds.PerFrameFunctionalGroupsSequence = Sequence([_transform(2.0, 0.0), Dataset(), _transform(0.5, 10.0)])
    out = modality_lut(ds, decode_frames(ds))
    assert out[:, 0, 0].tolist() == [200.0, -924.0, 60.0]  # frame 1 falls back to the shared group
    slopes, intercepts = rescale_per_frame(ds, 3)
    assert slopes.tolist() == [2.0, 1.0, 0.5] and intercepts.tolist() == [0.0, -1024.0, 10.0]


def test_modality_lut_of_a_slice_of_frames_uses_those_frames_rescale() -> None:
    ds = image(np.full((3, 1, 1), 10, np.uint16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [_transform(1.0, 0.0), _transform(2.0, 0.0), _transform(3.0, 0.0)]
    )
    frames = decode_frames(ds)
    assert modality_lut(ds, frames[1:], first=1).ravel().tolist() == [20.0, 30.0]
    assert radiograph_to_unit(ds, frames[2], frame=2).shape == (1, 1)


def test_malformed_rescale_is_a_decode_failure_naming_the_tag() -> None:
    ds = image(np.zeros((1, 1, 2), np.uint16))
    ds.add_new("RescaleSlope", "DS", None)
    ds["RescaleSlope"]._value = "abc"  # as read from a broken file, unvalidated
    with pytest.raises(DecodeError, match=r"RescaleSlope \(0028,1053\)"):
        modality_lut(ds, decode_frames(ds))


def test_modality_lut_sequence_replaces_rescale() -> None:
    ds = image(np.array([[[0, 1, 2, 3, 9]]], np.uint16))
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.LUTData = [100, 200, 300, 400]
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "US"
    ds.ModalityLUTSequence = Sequence([item])
    ds.RescaleSlope, ds.RescaleIntercept = 5, 5  # ignored: the LUT takes precedence
    assert modality_lut(ds, decode_frames(ds)).tolist() == [[[100.0, 200.0, 300.0, 400.0, 400.0]]]


def test_zero_slope_is_a_decode_failure() -> None:
    ds = image(np.zeros((1, 1, 2), np.uint16))
    ds.RescaleSlope, ds.RescaleIntercept = 0, 0
    with pytest.raises(DecodeError, match="RescaleSlope"):
        modality_lut(ds, decode_frames(ds))


def test_padding_value_becomes_air_judged_on_stored_values() -> None:
    ds = image(np.array([[[63536, 0, 1000]]], np.uint16), signed=True)  # 63536 is -2000 as a 16-bit pattern
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelPaddingValue = 63536  # as written by a US-reading tool
    stored = decode_frames(ds)
    out = pad_to_air(ds, stored, modality_lut(ds, stored))
    assert out.tolist() == [[[-1024.0, -1024.0, -24.0]]]


def test_padding_range_limit_pads_the_whole_range_either_way_round() -> None:
    ds = image(np.array([[[0, 5, 10, 11, 500]]], np.uint16))
    ds.RescaleIntercept, ds.RescaleSlope = -1000, 1
    ds.PixelPaddingValue, ds.PixelPaddingRangeLimit = 10, 0
    stored = decode_frames(ds)
    assert pad_to_air(ds, stored, modality_lut(ds, stored)).tolist() == [[[-1024, -1024, -1024, -989, -500]]]


def test_no_padding_value_leaves_values_alone() -> None:
    ds = image(np.array([[[0, 5]]], np.uint16))
    stored = decode_frames(ds)
    assert pad_to_air(ds, stored, modality_lut(ds, stored)).tolist() == [[[0.0, 5.0]]]


# --- VOI and radiographs ---------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), [(2048.0, 4096.0), (300.0, 41.0), (100.5, 2.0)])
def test_window_matches_pydicom_apply_windowing(function: str, center: float, width: float) -> None:
    values = np.arange(0, 4096, 3, dtype=np.float32)
    ds = image(np.zeros((1, 1, 1), np.uint16), stored=12)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    reference = (apply_windowing(values.astype(np.float64), ds) - 0.0) / 4095.0
    ours = window(values, center, width, function)
    assert ours is not None and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-6)


def test_invalid_window_width_is_refused() -> None:
    assert window(np.zeros(3, np.float32), 10, 0.5, "LINEAR") is None
    assert window(np.zeros(3, np.float32), 10, 0, "SIGMOID") is None
    assert window(np.zeros(3, np.float32), 10, 5, "CUBIC") is None


def _radiograph(photometric: str) -> Dataset:
    ds = image(np.array([[[0, 100, 200, 300, 400]]], np.uint16), stored=12, photometric=photometric)
    ds.Modality = "DX"
    return ds


def test_radiograph_window_uses_the_first_of_several_values() -> None:
    ds = _radiograph("MONOCHROME2")
    ds.WindowCenter, ds.WindowWidth = [200, 1000], [201, 10]
    out = radiograph_to_unit(ds, decode_frames(ds)[0])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.0, 0.0025, 0.5025, 1.0, 1.0], atol=1e-6)


def test_monochrome1_is_inverted_so_dense_is_bright() -> None:
    mono2, mono1 = _radiograph("MONOCHROME2"), _radiograph("MONOCHROME1")
    out2 = radiograph_to_unit(mono2, decode_frames(mono2)[0])
    out1 = radiograph_to_unit(mono1, decode_frames(mono1)[0])
    np.testing.assert_allclose(out1, 1.0 - out2)
    assert out1[0, 0] == 1.0 and out1[0, -1] == 0.0


def test_without_voi_the_image_range_maps_to_zero_one() -> None:
    ds = _radiograph("MONOCHROME2")
    np.testing.assert_allclose(radiograph_to_unit(ds, decode_frames(ds)[0])[0], [0, 0.25, 0.5, 0.75, 1.0])
    flat = image(np.full((1, 2, 2), 7, np.uint16))
    assert not radiograph_to_unit(flat, decode_frames(flat)[0]).any()


def test_malformed_window_falls_back_to_the_image_range() -> None:
    ds = _radiograph("MONOCHROME2")
    ds.WindowWidth = 100
    ds.add_new("WindowCenter", "DS", None)
    ds["WindowCenter"]._value = "n/a"
    np.testing.assert_allclose(radiograph_to_unit(ds, decode_frames(ds)[0])[0], [0, 0.25, 0.5, 0.75, 1.0])


def test_inverse_presentation_lut_shape_inverts_monochrome2() -> None:
    ds = _radiograph("MONOCHROME2")
    ds.PresentationLUTShape = "INVERSE"
    np.testing.assert_allclose(radiograph_to_unit(ds, decode_frames(ds)[0])[0], [1.0, 0.75, 0.5, 0.25, 0])


def test_voi_lut_sequence_is_applied_and_scaled_by_its_own_range() -> None:
    ds = _radiograph("MONOCHROME2")
    item = Dataset()
    item.LUTDescriptor = [3, 100, 16]  # three entries for inputs 100, 101, 102
    item.LUTData = [1000, 2000, 3000]
    item["LUTData"].VR = "US"
    ds.VOILUTSequence = Sequence([item])
    ds.WindowCenter, ds.WindowWidth = 0, 10  # ignored: the LUT is preferred
    np.testing.assert_allclose(radiograph_to_unit(ds, decode_frames(ds)[0])[0], [0, 0, 1, 1, 1])


def test_sigmoid_window_is_honoured() -> None:
    ds = _radiograph("MONOCHROME2")
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 200, 100, "SIGMOID"
    out = radiograph_to_unit(ds, decode_frames(ds)[0])[0]
    assert out[2] == pytest.approx(0.5)
    assert 0 < out[0] < out[1] < out[2] < out[3] < out[4] < 1


# --- header predicates -----------------------------------------------------------------------------


def test_header_predicates() -> None:
    ds = Dataset()
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "MONOCHROME1", 1
    assert is_grayscale(ds) and not for_processing(ds) and not burned_in(ds)
    ds.PresentationIntentType = "FOR PROCESSING"
    assert for_processing(ds)
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "RGB", 3
    assert not is_grayscale(ds)
    ds.PhotometricInterpretation, ds.SamplesPerPixel = "PALETTE COLOR", 1
    assert not is_grayscale(ds)
    ds.BurnedInAnnotation = "YES"
    assert burned_in(ds)


def test_burned_in_heuristics_for_captures_and_screen_saves() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    assert burned_in(ds)
    ds.BurnedInAnnotation = "NO"
    assert not burned_in(ds)
    ct = Dataset()
    ct.SOPClassUID, ct.ImageType = CT_IMAGE, ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    assert burned_in(ct)
    ct.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert not burned_in(ct)


def test_decode_error_carries_reason_and_detail() -> None:
    err = DecodeError("DECODE_FAILED", "JPEG 2000 stream is corrupt.")
    assert (err.reason, err.detail) == ("DECODE_FAILED", "JPEG 2000 stream is corrupt.")
    assert str(err) == "DECODE_FAILED: JPEG 2000 stream is corrupt."
