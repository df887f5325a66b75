"""Patient, study, series and equipment modules shared by every synthetic object."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radflow.synth.files import make_uid, new_dataset
from radflow.synth.phi import apply_patient, dicom_date
from radflow.synth.plan import Study


@dataclass(frozen=True)
class SeriesInfo:
    """What distinguishes one series of a study."""

    number: int
    modality: str
    description: str
    uid: UID


def study_uid(seed: int, study: Study) -> UID:
    """The study's StudyInstanceUID, fixed by the seed and the study's place in the plan."""
    return make_uid(seed, "study", study.patient.index, study.index)


def series_info(seed: int, study: Study, number: int, modality: str, description: str) -> SeriesInfo:
    """A series of `study` with a UID fixed by the seed, the study and the series number."""
    uid = make_uid(seed, "series", study.patient.index, study.index, number)
    return SeriesInfo(number, modality, description, uid)


def instance_dataset(seed: int, study: Study, series: SeriesInfo, sop_class: UID, instance: int) -> Dataset:
    """A dataset with file meta and the patient/study/series/equipment modules filled in."""
    sop_uid = make_uid(seed, "sop", study.patient.index, study.index, series.number, instance)
    syntax = ImplicitVRLittleEndian if study.device.implicit_vr else ExplicitVRLittleEndian
    ds = new_dataset(sop_class, sop_uid, syntax)
    day = dicom_date(study.study_date)
    apply_patient(ds, study.patient, study.study_date)
    ds.StudyInstanceUID = study_uid(seed, study)
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = day
    ds.StudyTime = study.study_time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = study.study_time
    ds.AccessionNumber = study.accession
    ds.StudyID = study.study_id
    ds.ReferringPhysicianName = study.referring
    ds.StudyDescription = "CT CHEST" if study.kind == "ct" else "XR CHEST PA"
    ds.SeriesInstanceUID = series.uid
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description
    ds.Modality = series.modality
    ds.OperatorsName = study.operator
    ds.InstanceNumber = instance
    ds.InstitutionName = study.site.name
    ds.InstitutionAddress = study.site.address
    ds.Manufacturer = study.device.manufacturer
    ds.ManufacturerModelName = study.device.model
    ds.BodyPartExamined = "CHEST"
    return ds


def set_pixels_module(
    ds: Dataset, rows: int, cols: int, photometric: str, bits: tuple[int, int, int]
) -> None:
    """The image pixel module for single-sample grayscale; `bits` is (allocated, stored, representation)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits[0]
    ds.BitsStored = bits[1]
    ds.HighBit = bits[1] - 1
    ds.PixelRepresentation = bits[2]
