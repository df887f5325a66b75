"""The clean stage on a small folder of pydicom-written files with every defect it must recognise."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.users import as_another_user, world_writable
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radflow.config import CleanParams, IngestParams
from tasks.clean import main as clean_main
from tasks.clean import run as clean
from tasks.ingest import run as ingest

PHI = {
    "PatientName": "Zyxwv^Planted",
    "PatientID": "PHI-ID-734126",
    "InstitutionName": "Planted General Hospital",
    "AccessionNumber": "ACC-99183",
    "PatientBirthDate": "19480312",
}
CR = "1.2.840.10008.5.1.4.1.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
US = "1.2.840.10008.5.1.4.1.1.6.1"
STUDY = generate_uid()


def dicom(path: Path, sop_class: str, modality: str, pixels: np.ndarray | None, **tags: object) -> Path:
    """Write one file with PHI planted in the patient and institution tags."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = sop_class, ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = str(tags.pop("SOPInstanceUID", generate_uid()))
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, meta.MediaStorageSOPInstanceUID, modality
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber = STUDY, generate_uid(), 1
    ds.PatientSex, ds.PatientAge, ds.Manufacturer = "F", "067Y", "Acme"
    for k, v in {**PHI, **tags}.items():
        setattr(ds, k, v)
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = str(tags.get("PhotometricInterpretation", "MONOCHROME2"))
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels.astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ct_series(
    folder: Path, zs: list[float], *, shear: float = 0.0, value: int = 0, **tags: object
) -> list[Path]:
    """An axial CT series; pixel values encode the slice height so sorting can be checked (HU = z + value)."""
    series = tags.pop("SeriesInstanceUID", generate_uid())
    tags = {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], **tags}
    paths = []
    for k, z in enumerate(zs):
        pixels = np.full((8, 8), int(z) + value + 1024, np.int16)
        paths.append(
            dicom(
                folder / f"{k:03d}.dcm",
                CTImageStorage,
                "CT",
                pixels,
                SeriesInstanceUID=series,
                InstanceNumber=len(zs) - k if k % 2 else k + 1,
                ImagePositionPatient=[-10.0, -10.0 + z * shear, z],
                ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                PixelSpacing=[0.5, 0.5],
                RescaleSlope=1,
                RescaleIntercept=-1024,
                **tags,
            )
        )
    return paths


def build(src: Path) -> dict[str, str]:
    """Every defect once; returns file → expected disposition or reason."""
    expect: dict[str, str] = {}

    def mark(paths: list[Path], what: str) -> None:
        expect.update({p.relative_to(src).as_posix(): what for p in paths})

    good = ct_series(src / "good", [5.0, -5.0, 0.0, 10.0, -10.0, 2.5, 7.5, -2.5, -7.5])
    mark(good, "accepted")
    mark(ct_series(src / "gap", [0, 2, 4, 8, 10, 12]), "MISSING_SLICES")
    mark(ct_series(src / "irregular", [0, 2, 4, 7, 9.5, 11]), "SPACING_NONUNIFORM")
    mark(ct_series(src / "tilt", [0, 2, 4, 6, 8, 10], shear=np.tan(np.radians(20))), "GANTRY_TILT")
    mark(ct_series(src / "few", [0, 2, 4]), "TOO_FEW_SLICES")
    mark(ct_series(src / "scout", [0], ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]), "LOCALIZER")
    mark(ct_series(src / "burned", [0, 2, 4, 6], BurnedInAnnotation="YES"), "BURNED_IN")
    series = generate_uid()
    four_d = ct_series(src / "4d/a", [0, 2, 4, 6], SeriesInstanceUID=series, AcquisitionNumber=1)
    four_d += ct_series(src / "4d/b", [0, 2, 4, 6], SeriesInstanceUID=series, AcquisitionNumber=2, value=100)
    mark(four_d, "accepted")
    series = generate_uid()
    repeat = ct_series(src / "repeat/a", [0, 2, 4, 6], SeriesInstanceUID=series)
    repeat += ct_series(src / "repeat/b", [0, 2], SeriesInstanceUID=series)
    mark(repeat, "NOT_A_VOLUME")
    mixed = generate_uid()
    axial = ct_series(src / "mixed/axial", [0, 2, 4, 6, 8], SeriesInstanceUID=mixed)
    odd = [
        dicom(
            src / f"mixed/sag{k}.dcm",
            CTImageStorage,
            "CT",
            np.zeros((8, 8), np.int16),
            SeriesInstanceUID=mixed,
            ImagePositionPatient=[float(k), 0, 0],
            ImageOrientationPatient=[0, 1, 0, 0, 0, -1],
            PixelSpacing=[0.5, 0.5],
            ImageType=["ORIGINAL", "PRIMARY"],
        )
        for k in range(2)
    ]
    mark(axial, "accepted")
    mark(odd, "LOCALIZER")
    copy = src / "good_copy" / "same.dcm"
    copy.parent.mkdir()
    shutil.copy(good[0], copy)
    mark([copy], "deduplicated")
    uid = generate_uid()
    mark(
        [
            dicom(
                src / "conflict" / f"{k}.dcm",
                CTImageStorage,
                "CT",
                np.full((8, 8), k, np.int16),
                SOPInstanceUID=uid,
                ImagePositionPatient=[0, 0, 0],
                ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                PixelSpacing=[1, 1],
            )
            for k in range(2)
        ],
        "DUPLICATE_CONFLICT",
    )
    ramp = np.arange(64, dtype=np.int16).reshape(8, 8) * 10
    mark(
        [
            dicom(
                src / "cr" / "chest",
                CR,
                "CR",
                ramp,
                PhotometricInterpretation="MONOCHROME1",
                ImagerPixelSpacing=[0.2, 0.2],
                WindowCenter=315,
                WindowWidth=630,
            )
        ],
        "accepted",
    )
    mark(
        [
            dicom(
                src / "dx" / "raw.dcm",
                DX,
                "DX",
                ramp,
                ImagerPixelSpacing=[0.2, 0.2],
                PresentationIntentType="FOR PROCESSING",
            )
        ],
        "FOR_PROCESSING",
    )
    mark([dicom(src / "cr" / "nospacing.dcm", CR, "CR", ramp)], "MISSING_GEOMETRY")
    mark([dicom(src / "us.dcm", US, "US", ramp)], "MODALITY_EXCLUDED")
    mark([dicom(src / "report.dcm", SR, "SR", None)], "NON_IMAGE_SOP")
    (src / "notes.txt").write_text("not dicom\n")
    mark([src / "notes.txt"], "NOT_DICOM")
    return expect


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("clean")
    src = root / "src"
    expect = build(src)
    ingest(IngestParams(source=src, workers=1), src, root / "ingest")
    clean(CleanParams(workers=1), root / "ingest", root / "out")
    yield root, expect


def test_every_file_gets_its_expected_disposition(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, expect = cleaned
    table = pd.read_parquet(root / "out" / "dispositions.parquet")
    manifest = pd.read_parquet(root / "ingest" / "manifest.parquet")
    assert len(table) == len(manifest) == len(expect)
    assert table["path"].is_unique
    got = {
        p: (d if d != "quarantined" else r)
        for p, d, r in zip(table.path, table.disposition, table.reason, strict=True)
    }
    assert got == expect
    assert (table[table.disposition == "quarantined"].detail.str.len() > 10).all()


def test_volumes_are_sorted_along_the_normal_in_hu(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, _ = cleaned
    series = pd.read_parquet(root / "out" / "series.parquet")
    table = pd.read_parquet(root / "out" / "dispositions.parquet")
    key = table[table.path == "good/000.dcm"].series_key.item()
    row = series[series.series_key == key].iloc[0]
    volume = np.load(root / "out" / row.array_path)
    assert volume.dtype == np.float32 and volume.shape == (9, 8, 8)
    assert volume[:, 0, 0].tolist() == [-10, -7, -5, -2, 0, 2, 5, 7, 10]  # HU = int(z), ascending z
    assert list(row["shape"]) == [9, 8, 8] and row.n_slices == 9 and row.kind == "volume"
    assert list(row.spacing_mm) == pytest.approx([2.5, 0.5, 0.5])
    assert list(row.origin) == pytest.approx([-10, -10, -10])
    assert len(row.affine) == 16 and len(row.orientation) == 6
    assert "InstanceNumber" in row.notes
    assert len(row.source_sop_keys) == 9 and all(k.startswith("2.25.") for k in row.source_sop_keys)
    assert row.sex == "F" and row.age_band == "60-69" and row.manufacturer == "Acme"
    assert (
        row.patient_key.startswith("pt-")
        and row.study_key.startswith("st-")
        and row.site_key.startswith("si-")
    )


def test_four_d_series_splits_into_time_points(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, _ = cleaned
    table = pd.read_parquet(root / "out" / "dispositions.parquet")
    series = pd.read_parquet(root / "out" / "series.parquet").set_index("series_key")
    first = table[table.path == "4d/a/000.dcm"].series_key.item()
    second = table[table.path == "4d/b/000.dcm"].series_key.item()
    assert first != second
    assert np.load(root / "out" / series.at[first, "array_path"])[:, 0, 0].tolist() == [0, 2, 4, 6]
    assert np.load(root / "out" / series.at[second, "array_path"])[:, 0, 0].tolist() == [100, 102, 104, 106]


def test_radiograph_is_windowed_to_unit_and_monochrome1_inverted(
    cleaned: tuple[Path, dict[str, str]],
) -> None:
    root, _ = cleaned
    series = pd.read_parquet(root / "out" / "series.parquet")
    row = series[series.kind == "radiograph"].iloc[0]
    image = np.load(root / "out" / row.array_path)
    assert image.shape == (8, 8) and list(row["shape"]) == [8, 8] and row.n_slices == 1
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image[0, 0] > image[-1, -1]  # MONOCHROME1: the lowest stored value is the brightest


def test_deduplicated_copy_points_at_the_kept_series(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, _ = cleaned
    table = pd.read_parquet(root / "out" / "dispositions.parquet").set_index("path")
    assert table.at["good_copy/same.dcm", "series_key"] == table.at["good/000.dcm", "series_key"]


def test_no_phi_in_any_output(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, _ = cleaned
    planted = [v.encode() for v in PHI.values()] + [STUDY.encode()]
    for path in (root / "out").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [p for p in planted if p in data], path.name


def test_quarantine_report_groups_by_reason(cleaned: tuple[Path, dict[str, str]]) -> None:
    root, expect = cleaned
    html = (root / "out" / "quarantine.html").read_text()
    csv = pd.read_csv(root / "out" / "quarantine.csv")
    reasons = {v for v in expect.values() if v.isupper()}
    assert set(csv.reason) == reasons
    assert all(f"id='{r}'" in html for r in reasons) and "<script" not in html


def test_deshear_keeps_a_tilted_series(tmp_path: Path) -> None:
    src = tmp_path / "src"
    ct_series(src, [0, 2, 4, 6, 8, 10], shear=np.tan(np.radians(20)))
    ingest(IngestParams(source=src, workers=1), src, tmp_path / "ingest")
    result = clean(CleanParams(workers=1, gantry_tilt="deshear"), tmp_path / "ingest", tmp_path / "out")
    assert result.accepted == 6 and result.series == 1
    row = pd.read_parquet(tmp_path / "out" / "series.parquet").iloc[0]
    assert "de-sheared" in row.notes
    assert np.load(tmp_path / "out" / row.array_path).shape == (6, 8, 8)


def test_irregular_spacing_is_set_apart_or_resampled_onto_equal_steps(tmp_path: Path) -> None:
    src = tmp_path / "src"
    zs = [0, 2, 4, 7, 9, 10, 12]  # gaps 2, 2, 3, 2, 1, 2: neither regular nor missing slices
    ct_series(src, zs)
    ingest(IngestParams(source=src, workers=1), src, tmp_path / "ingest")
    kept = clean(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "default")
    assert kept.accepted == 0
    disp = pd.read_parquet(tmp_path / "default" / "dispositions.parquet")
    assert set(disp.reason) == {"SPACING_NONUNIFORM"}
    assert all("clean.irregular_spacing: resample" in d for d in disp.detail)

    result = clean(CleanParams(workers=1, irregular_spacing="resample"), tmp_path / "ingest", tmp_path / "eq")
    assert result.accepted == 7 and result.series == 1
    row = pd.read_parquet(tmp_path / "eq" / "series.parquet").iloc[0]
    array = np.load(tmp_path / "eq" / row.array_path)
    # the smallest gap, 1 mm, over 12 mm: 13 planes, each at the height its HU encodes
    assert array.shape == (13, 8, 8) and list(row["shape"]) == [13, 8, 8] and row.n_slices == 13
    np.testing.assert_allclose(array[:, 3, 3], np.arange(13), atol=1e-4)
    affine = np.asarray(row.affine).reshape(4, 4)
    np.testing.assert_allclose(affine[:3, 0], [0, 0, 1.0], atol=1e-9)
    np.testing.assert_allclose(affine[:3, 3], [-10, -10, 0], atol=1e-9)
    assert row.spacing_mm[0] == pytest.approx(1.0) and "resampled" in row.notes
    assert len(row.source_sop_keys) == 7
    disp = pd.read_parquet(tmp_path / "eq" / "dispositions.parquet")
    assert set(disp.disposition) == {"accepted"} and set(disp.series_key) == {row.series_key}


@pytest.mark.slow
def test_a_folder_that_cannot_be_listed_is_an_unreadable_row_without_its_name(tmp_path: Path) -> None:
    """Its files cannot be accounted for one by one, so the folder is: one row, its path redacted."""
    base = Path(tempfile.mkdtemp(prefix="radflow-unlisted-"))  # not under pytest's root-only folder
    src, work = base / "src", base / "work"
    patient = src / PHI["PatientID"]  # a folder named after the patient, as exports do
    try:
        ct_series(patient / "ct", [0, 2, 4, 6])
        ct_series(patient / "locked", [0, 2, 4, 6])
        for folder in (base, src, patient, patient / "ct"):
            folder.chmod(0o755)
        for f in (patient / "ct").iterdir():
            f.chmod(0o644)
        work.mkdir()
        params = IngestParams(source=src, workers=1, redact_paths=True)
        # Everything lists at first (and the stages' lazy imports load before any fork).
        ingest(params, src, work / "first")
        clean(CleanParams(workers=1), work / "first", work / "first_clean")
        assert len(pd.read_parquet(work / "first_clean" / "dispositions.parquet")) == 8
        (patient / "locked").chmod(0o700 if os.geteuid() == 0 else 0)  # root's: nobody cannot list it
        world_writable(work)  # the other user updates the first run's outputs

        def run_both() -> None:
            handler = logging.FileHandler(work / "log.txt")
            logging.getLogger().addHandler(handler)
            try:
                ingest(params, src, work / "first")  # incremental: the folder's rows give way to one
                clean(CleanParams(workers=1), work / "first", work / "clean")
            finally:
                handler.close()

        as_another_user(run_both)
        disp = pd.read_parquet(work / "clean" / "dispositions.parquet")
        assert len(disp) == 5 and (disp.disposition == "accepted").sum() == 4
        folder = disp[disp.path.str.endswith("/")].iloc[0]
        assert folder.reason == "UNREADABLE" and "could not be listed" in folder.detail
        assert folder.path.endswith("/locked/") and folder.path.count("/") == 2
        log = (work / "log.txt").read_text()
        assert "cannot list a folder 2 levels deep" in log
        outputs = [p for p in work.rglob("*") if p.is_file()]
        assert not [p for p in outputs if PHI["PatientID"].encode() in p.read_bytes()]
    finally:
        (patient / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_main_reports_a_missing_ingest_folder_as_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        clean_main(
            ["--ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--params", "absent.yaml"]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "radflow ingest" in err and err.count("\n") == 1


def test_process_pools_write_what_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.clean as stage

    src = tmp_path / "src"
    ct_series(src / "long", [1.5 * k for k in range(40)])  # 40 slices: three decode chunks below
    ct_series(src / "short", [0, 2, 4, 6], value=100)
    ingest(IngestParams(source=src, workers=1), src, tmp_path / "ingest")
    clean(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "one")
    # Small inputs stay in-process; lowered thresholds send headers and chunked decoding to pools.
    monkeypatch.setattr(stage, "HEADERS_PER_WORKER", 1)
    monkeypatch.setattr(stage, "VOXELS_PER_WORKER", 1)
    result = clean(CleanParams(workers=2), tmp_path / "ingest", tmp_path / "pooled")
    assert result.series == 2 and result.accepted == 44
    for name in ("series.parquet", "dispositions.parquet"):
        expected = pd.read_parquet(tmp_path / "one" / name)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pooled" / name), expected)
    for array in (tmp_path / "one" / "arrays").iterdir():
        np.testing.assert_array_equal(np.load(tmp_path / "pooled" / "arrays" / array.name), np.load(array))


def test_clean_reads_files_through_redacted_paths(tmp_path: Path) -> None:
    src = tmp_path / "src"
    folder = src / f"{PHI['PatientID']}_Zyxwv_Planted"
    ct_series(folder / "ct", [0, 2, 4, 6])
    ramp = np.arange(64, dtype=np.int16).reshape(8, 8)
    chest = dicom(folder / "cr.dcm", CR, "CR", ramp, ImagerPixelSpacing=[0.2, 0.2])
    ingest(IngestParams(source=src, workers=1, redact_paths=True), src, tmp_path / "ingest")
    result = clean(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "out")
    assert (result.accepted, result.series) == (5, 2)
    table = pd.read_parquet(tmp_path / "out" / "dispositions.parquet")
    assert table.path.str.match(r"id-[0-9a-f]{8}_id-[0-9a-f]{8}/").all()
    # A file gone since ingest: its row keeps the redacted path and says what happened.
    chest.unlink()
    again = clean(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "again")
    assert (again.accepted, again.quarantined) == (4, 1)
    gone = pd.read_csv(tmp_path / "again" / "quarantine.csv").iloc[0]
    assert gone.path.endswith("/cr.dcm") and gone.reason == "UNREADABLE" and "re-run ingest" in gone.detail
    planted = [PHI["PatientID"].encode(), b"Zyxwv", b"Planted"]
    for out in (tmp_path / "out", tmp_path / "again"):
        for path in out.rglob("*"):
            assert path.is_dir() or not [p for p in planted if p in path.read_bytes()], path.name


def test_files_whose_paths_redact_alike_are_each_found(tmp_path: Path) -> None:
    # 'PHI-ID-734126_Zyxwv_Planted' and 'PHI-ID-734126_Zyxwv-Planted' both redact to one folder
    # name; each row still finds its own file through its path_key.
    src, ramp = tmp_path / "src", np.arange(64, dtype=np.int16).reshape(8, 8)
    for sep in "_-":
        dicom(
            src / f"{PHI['PatientID']}_Zyxwv{sep}Planted" / "cr.dcm",
            CR,
            "CR",
            ramp,
            ImagerPixelSpacing=[0.2, 0.2],
        )
    ingest(IngestParams(source=src, workers=1, redact_paths=True), src, tmp_path / "ingest")
    result = clean(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "out")
    table = pd.read_parquet(tmp_path / "out" / "dispositions.parquet")
    assert (result.accepted, result.series) == (2, 2) and table.path.nunique() == 1
    assert (table.disposition == "accepted").all() and table.series_key.nunique() == 2
