"""Byte templates write the same files pydicom would, with the substituted values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from radflow.synth.files import CR_IMAGE, new_dataset
from radflow.synth.template import FileTemplate, fixed_uid, placeholder_uid


def test_fixed_uids_are_valid_fixed_length_and_deterministic() -> None:
    uids = {fixed_uid("a", i) for i in range(200)}
    assert len(uids) == 200
    assert all(len(uid) == 44 and UID(uid).is_valid for uid in uids)
    assert fixed_uid("a", 1) == fixed_uid("a", 1) and len(placeholder_uid(3)) == 44


def test_render_substitutes_values_and_pixels(tmp_path: Path) -> None:
    ds = new_dataset(CR_IMAGE, UID(placeholder_uid(1)))
    ds.PatientID = "ID######"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 2, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = b"\0" * 4
    template = FileTemplate(ds, [placeholder_uid(1), "ID######"])
    sop = fixed_uid("x")
    template.write(tmp_path / "a" / "f.dcm", [sop, "ID000042"], bytes([1, 2, 3, 4]))
    out = pydicom.dcmread(tmp_path / "a" / "f.dcm")
    assert out.SOPInstanceUID == sop == out.file_meta.MediaStorageSOPInstanceUID
    assert out.PatientID == "ID000042"
    assert np.array_equal(out.pixel_array, [[1, 2], [3, 4]])
    with pytest.raises(ValueError):
        template.render([sop, "ID42"], bytes(4))


def test_make_uid_separates_its_parts() -> None:
    from radflow.synth.files import make_uid

    assert make_uid(0, "sop", 1, 12) != make_uid(0, "sop", 11, 2)
