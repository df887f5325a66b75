"""The synthetic cohort on disk: deterministic bytes, planted defects, labels, PHI and CT geometry."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radflow.errors import InputError
from radflow.synth.cohort import MARKER, ensure_cohort, write_cohort
from radflow.synth.phi import PHI_KEYWORDS
from radflow.synth.plan import make_plan

PATIENTS, SEED = 5, 3
NOT_DICOM = {"labels.csv", "defects.json", MARKER}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "cohort"
    write_cohort(root, PATIENTS, SEED)
    return root


@pytest.fixture(scope="module")
def headers(cohort: Path) -> dict[str, Dataset]:
    """Every readable DICOM header, by path relative to the cohort."""
    out = {}
    for path in sorted(p for p in cohort.rglob("*") if p.is_file() and p.name not in NOT_DICOM):
        out[path.relative_to(cohort).as_posix()] = pydicom.dcmread(path, stop_before_pixels=True)
    return out


@pytest.fixture(scope="module")
def defects(cohort: Path) -> dict[str, dict]:
    return {d["kind"]: d for d in json.loads((cohort / "defects.json").read_text())["defects"]}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_write_identical_bytes(cohort: Path, tmp_path: Path) -> None:
    write_cohort(tmp_path / "again", PATIENTS, SEED)
    assert _files(cohort) == _files(tmp_path / "again")


def test_ensure_cohort_reuses_a_complete_cohort_and_rewrites_on_new_arguments(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    first = ensure_cohort(root, 2, 0)
    probe = root / "labels.csv"
    stamp = probe.stat().st_mtime_ns
    assert ensure_cohort(root, 2, 0) == first and probe.stat().st_mtime_ns == stamp
    second = ensure_cohort(root, 3, 0)
    assert second.patients == 3 and json.loads((root / MARKER).read_text())["patients"] == 3
    assert not [p for p in tmp_path.iterdir() if p.name != "demo"]  # no temp folders left behind


def test_marker_missing_means_incomplete_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a synthetic cohort"):
        ensure_cohort(foreign, 2, 0)
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_summary_counts_match_the_files(cohort: Path, headers: dict[str, Dataset]) -> None:
    marker = json.loads((cohort / MARKER).read_text())
    summary = marker["summary"]
    assert (marker["patients"], marker["seed"]) == (PATIENTS, SEED)
    assert summary["files"] == len(headers)
    assert summary["series"] == len({ds.SeriesInstanceUID for ds in headers.values()})
    assert summary["patients"] == len({ds.PatientID for ds in headers.values()})
    assert summary["studies"] == summary["radiograph_studies"] + summary["ct_studies"]


def test_labels_are_per_study_and_cover_every_study(cohort: Path, headers: dict[str, Dataset]) -> None:
    with (cohort / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    labels = {row["StudyInstanceUID"]: int(row["label"]) for row in rows}
    assert list(rows[0]) == ["StudyInstanceUID", "label"] and len(labels) == len(rows)
    assert set(labels) == {ds.StudyInstanceUID for ds in headers.values()}
    assert set(labels.values()) == {0, 1}


def test_phi_keywords_are_filled_and_never_in_paths(headers: dict[str, Dataset]) -> None:
    for rel, ds in headers.items():
        for keyword in PHI_KEYWORDS:
            value = str(ds.get(keyword, "")).strip()
            assert value, f"{rel} lacks {keyword}"
            if keyword not in (
                "StudyDate",
                "SeriesDate",
                "AcquisitionDate",
                "ContentDate",
                "PatientBirthDate",
            ):
                assert all(part not in rel for part in value.split("^") if len(part) > 3)


def test_radiographs_cover_cr_dx_both_photometrics_and_12_bits(headers: dict[str, Dataset]) -> None:
    radiographs = [ds for ds in headers.values() if ds.Modality in ("CR", "DX")]
    assert {ds.Modality for ds in radiographs} == {"CR", "DX"}
    assert all((ds.BitsStored, ds.HighBit, ds.Rows) == (12, 11, 256) for ds in radiographs)
    assert all(ds.PresentationIntentType == "FOR PRESENTATION" and "WindowCenter" in ds for ds in radiographs)


def test_demo_plan_mixes_photometrics_and_syntaxes() -> None:
    studies = make_plan(40, 0)
    assert {s.device.photometric for s in studies if s.kind == "radiograph"} == {"MONOCHROME1", "MONOCHROME2"}
    assert any(s.device.implicit_vr for s in studies)


def test_every_defect_is_planted_where_defects_json_says(cohort: Path, defects: dict[str, dict]) -> None:
    assert set(defects) == {
        "duplicate_instance",
        "non_image",
        "truncated",
        "localizer",
        "missing_slice",
        "no_extension_nested",
    }
    original, copy = (cohort / p for p in defects["duplicate_instance"]["paths"])
    assert original.read_bytes() == copy.read_bytes() and original.name != copy.name
    report = pydicom.dcmread(cohort / defects["non_image"]["paths"][0])
    assert report.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.11" and "PixelData" not in report
    truncated = pydicom.dcmread(cohort / defects["truncated"]["paths"][0])
    with pytest.raises(ValueError):
        truncated.pixel_array  # noqa: B018
    for rel in defects["localizer"]["paths"]:
        scout = pydicom.dcmread(cohort / rel)
        assert scout.Modality == "CT" and scout.ImageType[2] == "LOCALIZER"
        assert scout.pixel_array.shape == (scout.Rows, scout.Columns)
    nested = defects["no_extension_nested"]["paths"][0]
    assert Path(nested).suffix == "" and "/nested/deeper/" in nested
    assert pydicom.dcmread(cohort / nested).pixel_array.shape == (256, 256)


def _positions(series: list[Dataset]) -> np.ndarray:
    normal = np.cross(*np.array(series[0].ImageOrientationPatient, dtype=float).reshape(2, 3))
    return np.sort([np.array(ds.ImagePositionPatient, dtype=float) @ normal for ds in series])


def test_ct_series_are_evenly_spaced_except_the_missing_slice(
    headers: dict[str, Dataset], defects: dict[str, dict]
) -> None:
    by_series: dict[str, list[tuple[str, Dataset]]] = defaultdict(list)
    for rel, ds in headers.items():
        if ds.Modality == "CT" and "LOCALIZER" not in ds.ImageType:
            by_series[ds.SeriesInstanceUID].append((rel, ds))
    gappy = set(defects["missing_slice"]["paths"])
    unsorted = 0
    for files in by_series.values():
        series = [ds for _, ds in files]
        assert len({tuple(ds.ImageOrientationPatient) for ds in series}) == 1
        steps = np.diff(_positions(series)) / float(series[0].SliceThickness)
        assert float(series[0].SpacingBetweenSlices) == float(series[0].SliceThickness)
        if {rel for rel, _ in files} == gappy:
            assert sorted(np.round(steps, 3).tolist()).count(2.0) == 1 and np.allclose(sorted(steps)[:-1], 1)
        else:
            assert np.allclose(steps, 1.0, atol=1e-3)
        ordered = [ds.ImagePositionPatient[2] for _, ds in sorted(files)]
        unsorted += ordered != sorted(ordered) and ordered != sorted(ordered, reverse=True)
    assert unsorted >= 1


def test_ct_pixels_are_int16_hounsfield_after_rescale(cohort: Path, headers: dict[str, Dataset]) -> None:
    rel = next(rel for rel, ds in headers.items() if ds.Modality == "CT" and ds.ImageType[2] == "AXIAL")
    ds = pydicom.dcmread(cohort / rel)
    assert (ds.BitsAllocated, ds.PixelRepresentation, ds.RescaleSlope, ds.RescaleIntercept) == (
        16,
        1,
        1,
        -1024,
    )
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert abs(np.median(hu[0]) + 1000) < 80  # the top row is air


def test_sop_instance_uids_are_unique_except_the_planted_duplicate(
    headers: dict[str, Dataset], defects: dict[str, dict]
) -> None:
    duplicate = defects["duplicate_instance"]["paths"]
    uids = [ds.SOPInstanceUID for rel, ds in headers.items() if rel != duplicate[1]]
    assert len(uids) == len(set(uids))
    assert headers[duplicate[0]].SOPInstanceUID == headers[duplicate[1]].SOPInstanceUID
