"""The cohort plan: deterministic, with the study mix and positives the demo relies on."""

from __future__ import annotations

from radflow.synth.phi import age_string, dicom_date
from radflow.synth.plan import make_plan


def test_plan_is_deterministic_and_seed_dependent() -> None:
    assert make_plan(6, 1) == make_plan(6, 1)
    assert make_plan(6, 1) != make_plan(6, 2)


def test_two_patients_still_hold_two_studies_of_each_kind() -> None:
    for seed in range(10):
        kinds = [study.kind for study in make_plan(2, seed)]
        assert kinds.count("ct") >= 2 and kinds.count("radiograph") >= 2


def test_demo_plan_mix_positives_and_identities() -> None:
    studies = make_plan(40, 0)
    patients = {study.patient for study in studies}
    assert len(patients) == 40
    assert all(2 <= sum(s.patient == p for s in studies) <= 3 for p in patients)
    radiograph = [s for s in studies if s.kind == "radiograph"]
    assert 0.6 <= len(radiograph) / len(studies) <= 0.8
    assert 0.25 <= sum(s.positive for s in studies) / len(studies) <= 0.4
    assert len({p.patient_id for p in patients}) == 40 and len({p.name for p in patients}) == 40
    assert len({s.accession for s in studies}) == len(studies)
    assert {s.device.modality for s in studies} == {"CR", "DX", "CT"}
    assert len({s.site.name for s in studies}) >= 3
    assert len({s.device.manufacturer for s in studies}) >= 5


def test_folders_carry_no_identifiers() -> None:
    for study in make_plan(5, 0):
        for value in (study.patient.name, study.patient.patient_id, study.accession, study.study_id):
            assert value not in study.folder
            for part in value.split("^"):
                assert part not in study.folder


def test_dates_and_ages_are_dicom_strings() -> None:
    study = make_plan(3, 0)[0]
    assert len(dicom_date(study.study_date)) == 8
    age = age_string(study.patient.birth_date, study.study_date)
    assert age.endswith("Y") and 18 <= int(age[:3]) <= 90
