"""Synthetic identities: the header keywords that carry PHI and distinctive values to put in them.

Every value is distinctive (long IDs with a prefix, uncommon names, full dates) so that a test can read
the values back from the input files and search every output byte for them without false alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydicom.dataset import Dataset

# Header keywords this package fills with identifying values; the PHI test scans outputs for each of them.
PHI_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "OperatorsName",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
)

# Raw UIDs are not PHI by themselves but must not leave the pipeline unmapped either.
UID_KEYWORDS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)

SURNAMES = (
    "Thornbury",
    "Okonkwo",
    "Halvorsen",
    "Castellanos",
    "Whitcombe",
    "Nakagawa",
    "Ferreira-Lind",
    "Abernathy",
    "Quillfeather",
    "Szymanska",
    "Brannoch",
    "Delacroix-Mayne",
    "Oyelaran",
    "Vasquez-Tullo",
    "Lindqvist",
    "Pemberthy",
    "Achterberg",
    "Mbeki-Rowe",
    "Carrasquillo",
    "Hollingrake",
)
FEMALE_NAMES = (
    "Margit",
    "Eleanor",
    "Adaeze",
    "Ingrid",
    "Rosalind",
    "Yuki",
    "Philippa",
    "Soledad",
    "Henrike",
    "Marisol",
)
MALE_NAMES = (
    "Tobias",
    "Cornelius",
    "Emeka",
    "Leopold",
    "Anselm",
    "Hiroshi",
    "Bartholomew",
    "Ignacio",
    "Fitzgerald",
    "Radomir",
)
PHYSICIANS = ("Drummond^Hugh^^Dr", "Achebe^Ngozi^^Dr", "Lindgren^Sven^^Dr", "Moreau^Celestine^^Dr")
OPERATORS = ("Brannigan^Siobhan", "Kowalczyk^Piotr", "Ashworth^Delphine", "Mensah^Kwabena")


@dataclass(frozen=True)
class Patient:
    """One synthetic patient's identity."""

    index: int
    name: str
    patient_id: str
    other_id: str
    sex: str
    birth_date: date


def make_patient(
    index: int, ids: tuple[int, int], name_pick: tuple[int, int], sex: str, birth: date
) -> Patient:
    """A patient with an MRN-style ID and a realistic name (the caller picks unique ids and names)."""
    given = (FEMALE_NAMES if sex == "F" else MALE_NAMES)[name_pick[1] % len(FEMALE_NAMES)]
    return Patient(
        index=index,
        name=f"{SURNAMES[name_pick[0] % len(SURNAMES)]}^{given}",
        patient_id=f"MRN{ids[0]:07d}",
        other_id=f"OPID{ids[1]:08d}",
        sex=sex,
        birth_date=birth,
    )


def dicom_date(day: date) -> str:
    """A date as DICOM DA (YYYYMMDD)."""
    return day.strftime("%Y%m%d")


def age_string(birth: date, on: date) -> str:
    """DICOM AS age in years at `on`, e.g. '054Y'."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{years:03d}Y"


def apply_patient(ds: Dataset, patient: Patient, study_date: date) -> None:
    """Fill the patient module (name, IDs, birth date, sex, age at the study)."""
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.OtherPatientIDs = patient.other_id
    ds.PatientBirthDate = dicom_date(patient.birth_date)
    ds.PatientSex = patient.sex
    ds.PatientAge = age_string(patient.birth_date, study_date)
