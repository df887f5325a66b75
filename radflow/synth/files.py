"""Deterministic UIDs, DICOM file meta and byte-stable writing shared by the synthetic generators."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")
CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")

# Fixed so that the same seed writes the same bytes whatever pydicom version wrote the file.
IMPLEMENTATION_CLASS_UID = UID("1.2.826.0.1.3680043.8.498.1")
IMPLEMENTATION_VERSION = "RADFLOW_SYNTH_1"


def make_uid(*parts: object) -> UID:
    """A UID that depends only on `parts` (seed, patient, study ...), never on time or the machine."""
    # pydicom joins entropy sources with no separator, so ("1", "12") and ("11", "2") would collide.
    return generate_uid(entropy_srcs=["/".join(["radflow-synth", *(str(part) for part in parts)])])


def new_dataset(sop_class: UID, sop_instance: UID, transfer_syntax: UID = ExplicitVRLittleEndian) -> Dataset:
    """An empty dataset with complete file meta for one SOP instance."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.SpecificCharacterSet = "ISO_IR 100"
    return ds


def write_dataset(ds: Dataset, path: Path) -> None:
    """Write `ds` as a DICOM Part 10 file (preamble, meta), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=True)
