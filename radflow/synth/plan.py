"""The cohort's plan: sites, devices, patients and studies, drawn from the seed before any pixel exists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from radflow.synth.phi import OPERATORS, PHYSICIANS, SURNAMES, Patient, make_patient


@dataclass(frozen=True)
class Device:
    """A scanner model; radiograph devices also fix the photometric interpretation they write."""

    modality: str
    manufacturer: str
    model: str
    photometric: str = "MONOCHROME2"
    implicit_vr: bool = False


@dataclass(frozen=True)
class Site:
    """A hospital with its address and its CR, DX and CT devices."""

    name: str
    address: str
    cr: Device
    dx: Device
    ct: Device


SITES = (
    Site(
        "Aldermoor Royal Infirmary",
        "3 Quarry Lane, Kettleby KT3 9QP",
        Device("CR", "Agfa", "CR 85-X", "MONOCHROME1"),
        Device("DX", "SIEMENS", "Ysio Max"),
        Device("CT", "SIEMENS", "SOMATOM Definition AS"),
    ),
    Site(
        "St Wystan's Hospital Brackenfold",
        "41 Tannery Row, Brackenfold BF7 2LD",
        Device("CR", "FUJIFILM Corporation", "FCR PROFECT CS", "MONOCHROME1", implicit_vr=True),
        Device("DX", "Philips Medical Systems", "DigitalDiagnost"),
        Device("CT", "Philips", "Ingenuity CT"),
    ),
    Site(
        "Halloway Vale Medical Centre",
        "8 Orchard Mews, Halloway HV1 4RS",
        Device("CR", "Carestream Health", "DirectView CR 975"),
        Device("DX", "GE Healthcare", "Discovery XR656", "MONOCHROME1"),
        Device("CT", "GE MEDICAL SYSTEMS", "LightSpeed VCT"),
    ),
    Site(
        "Northmere Community Clinic",
        "27 Ferrier Street, Northmere NM9 6TW",
        Device("CR", "KONICA MINOLTA", "REGIUS 190"),
        Device("DX", "Carestream Health", "DRX-Evolution"),
        Device("CT", "TOSHIBA", "Aquilion"),
    ),
)


@dataclass(frozen=True)
class Study:
    """One planned study: who, where, when, which kind, and whether it shows the finding."""

    patient: Patient
    index: int
    site: Site
    device: Device
    study_date: date
    study_time: str
    accession: str
    study_id: str
    referring: str
    operator: str
    positive: bool
    n_series: int

    @property
    def kind(self) -> str:
        """'ct' or 'radiograph'."""
        return "ct" if self.device.modality == "CT" else "radiograph"

    @property
    def folder(self) -> str:
        """The study's folder relative to the cohort root (indices only, never identifiers)."""
        return f"p{self.patient.index:03d}/study{self.index + 1}"


def study_kinds(rng: np.random.Generator, n_studies: int) -> list[str]:
    """About 30% CT, at least two studies of each kind so every defect has a home."""
    n_ct = min(max(2, round(0.3 * n_studies)), n_studies - 2)
    kinds = ["ct"] * n_ct + ["radiograph"] * (n_studies - n_ct)
    return [kinds[i] for i in rng.permutation(n_studies)]


def positives(rng: np.random.Generator, kinds: list[str]) -> list[bool]:
    """Exactly a third (rounded, at least one) of each kind's studies are positive."""
    flags = [False] * len(kinds)
    for kind in ("radiograph", "ct"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        n_pos = max(1, round(len(idx) / 3))
        for i in rng.permutation(idx)[:n_pos]:
            flags[int(i)] = True
    return flags


def make_patients(rng: np.random.Generator, n: int) -> list[Patient]:
    """`n` patients with unique names and IDs."""
    names = rng.permutation(len(SURNAMES) * 10)
    ids = rng.choice(9_000_000, size=(n, 2), replace=False) + 1_000_000
    patients = []
    for i in range(n):
        pick = int(names[i % len(names)])
        sex = "F" if rng.random() < 0.5 else "M"
        birth = date(1935, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 60)))
        patients.append(
            make_patient(i, (int(ids[i, 0]), int(ids[i, 1])), (pick // 10, pick % 10), sex, birth)
        )
    return patients


def _time_of_day(rng: np.random.Generator) -> str:
    """A TM with microseconds, so a time value is distinctive enough to search outputs for."""
    hour, minute, second = int(rng.integers(7, 19)), int(rng.integers(60)), int(rng.integers(60))
    return f"{hour:02d}{minute:02d}{second:02d}.{int(rng.integers(1_000_000)):06d}"


def make_plan(n_patients: int, seed: int) -> list[Study]:
    """Every study of the cohort, in writing order; depends only on (n_patients, seed)."""
    rng = np.random.default_rng([seed, 7001])
    patients = make_patients(rng, n_patients)
    per_patient = [int(rng.integers(2, 4)) for _ in patients]
    kinds = study_kinds(rng, sum(per_patient))
    flags = positives(rng, kinds)
    accessions = rng.choice(90_000_000, size=len(kinds), replace=False) + 10_000_000
    studies: list[Study] = []
    for patient, count in zip(patients, per_patient, strict=True):
        site = SITES[int(rng.integers(len(SITES)))]
        day = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 4 * 365)))
        for k in range(count):
            n = len(studies)
            device = site.ct if kinds[n] == "ct" else (site.cr, site.dx)[int(rng.integers(2))]
            studies.append(
                Study(
                    patient=patient,
                    index=k,
                    site=site,
                    device=device,
                    study_date=day,
                    study_time=_time_of_day(rng),
                    accession=f"ACC{int(accessions[n]):08d}",
                    study_id=f"SID{int(accessions[n]) % 1_000_000:06d}",
                    referring=PHYSICIANS[int(rng.integers(len(PHYSICIANS)))],
                    operator=OPERATORS[int(rng.integers(len(OPERATORS)))],
                    positive=flags[n],
                    n_series=int(rng.random() < 0.3) + 1 if kinds[n] == "ct" else 1,
                )
            )
            day += timedelta(days=int(rng.integers(20, 500)))
    return studies
