"""Keyed pseudonyms, UID remapping, date shifts, age bands and the technical allowlist."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from radflow.dicom import deid
from radflow.errors import ConfigError

KEY = b"unit-test-key"
OTHER = b"another-key"


def test_pseudonym_is_stable_prefixed_and_keyed() -> None:
    a = deid.pseudonym("patient", "PAT-0001", KEY)
    assert a == deid.pseudonym("patient", "PAT-0001", KEY)
    assert re.fullmatch(r"pt-[0-9a-f]{16}", a)
    assert deid.pseudonym("patient", "PAT-0002", KEY) != a
    assert deid.pseudonym("patient", "PAT-0001", OTHER) != a
    prefixes = {kind: deid.pseudonym(kind, "x", KEY)[:3] for kind in ("study", "series", "site")}
    assert prefixes == {"study": "st-", "series": "se-", "site": "si-"}
    # Same value, different kind: different pseudonyms (a study UID never collides with a patient ID).
    assert deid.pseudonym("study", "PAT-0001", KEY)[3:] != a[3:]


def test_pseudonym_unknown_kind_is_a_bug() -> None:
    with pytest.raises(ValueError):
        deid.pseudonym("nickname", "x", KEY)


def test_pseudonym_cannot_be_reversed_by_hashing_candidate_ids_without_the_key() -> None:
    target = deid.pseudonym("patient", "4711", KEY)
    candidates = [str(i) for i in range(10_000)]
    # An attacker with the pseudonym but not the key tries plain hashes of every short ID.
    for algo in (hashlib.sha256, hashlib.md5, hashlib.sha1):
        hits = [c for c in candidates if algo(c.encode()).hexdigest()[:16] == target[3:]]
        assert hits == []
    # With a wrong key the brute force finds nothing either; only the right key recovers it.
    assert [c for c in candidates if deid.pseudonym("patient", c, OTHER) == target] == []
    assert [c for c in candidates if deid.pseudonym("patient", c, KEY) == target] == ["4711"]


def test_remap_uid_is_a_valid_deterministic_uid() -> None:
    uids = [f"1.2.840.113619.2.55.3.{i}" for i in range(200)] + ["1.2.3\x00", "9" * 64]
    for uid in uids:
        new = deid.remap_uid(uid, KEY)
        assert new == deid.remap_uid(uid, KEY)
        assert len(new) <= 64
        assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", new), new
        assert int(new[5:]).bit_length() > 100  # 128 bits, so collisions are negligible
    assert len({deid.remap_uid(u, KEY) for u in uids}) == len(uids) - 0  # all distinct
    assert deid.remap_uid("1.2.3", KEY) != deid.remap_uid("1.2.3", OTHER)
    # Trailing NUL padding (even-length UIDs) does not change the mapping.
    assert deid.remap_uid("1.2.3\x00", KEY) == deid.remap_uid("1.2.3", KEY)


def test_date_offset_is_per_patient_in_range_and_keyed() -> None:
    offsets = {p: deid.date_offset_days(p, KEY) for p in (f"P{i}" for i in range(300))}
    assert all(-730 <= o <= -1 for o in offsets.values())
    assert len(set(offsets.values())) > 100  # spread over the range, not one shift for all
    assert deid.date_offset_days("P1", KEY) == offsets["P1"]
    assert [deid.date_offset_days(p, OTHER) for p in offsets] != list(offsets.values())


def test_shift_date_keeps_intervals_within_a_patient() -> None:
    first, later = deid.shift_date("20200101", "P1", KEY), deid.shift_date("20200131", "P1", KEY)
    assert first and later and first != "20200101"
    import datetime as dt

    gap = dt.datetime.strptime(later, "%Y%m%d") - dt.datetime.strptime(first, "%Y%m%d")
    assert gap.days == 30
    assert deid.shift_date("2020.01.01", "P1", KEY) == first  # ACR-NEMA style date
    for bad in ("", None, "2020", "20201341", "abcdefgh", "20200230"):
        assert deid.shift_date(bad, "P1", KEY) == ""  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_sex() -> None:
    for raw, want in (("M", "M"), ("f", "F"), ("O ", "O"), ("", ""), ("X", ""), (None, "")):
        ds = Dataset()
        if raw is not None:
            ds.PatientSex = raw
        assert deid.sex(ds) == want


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize(
    ("age", "want"),
    [
        ("000D", "0-9"),
        ("006M", "0-9"),
        ("009Y", "0-9"),
        ("010Y", "10-19"),
        ("045Y", "40-49"),
        ("089Y", "80-89"),
        ("090Y", "90+"),
        ("104Y", "90+"),
        ("520W", "0-9"),
        ("", ""),
        ("abc", ""),
    ],
)
def test_age_band_from_patient_age(age: str, want: str) -> None:
    ds = Dataset()
    ds.PatientAge = age
    assert deid.age_band(ds) == want


def test_age_band_from_birth_and_study_dates() -> None:
    ds = Dataset()
    ds.PatientBirthDate, ds.StudyDate = "19300615", "20200101"
    assert deid.age_band(ds) == "80-89"
    ds.StudyDate = "20200616"
    assert deid.age_band(ds) == "90+"
    ds.StudyDate = ""
    ds.SeriesDate = "19800101"
    assert deid.age_band(ds) == "40-49"
    assert deid.age_band(Dataset()) == ""
    bad = Dataset()
    bad.PatientBirthDate, bad.StudyDate = "20300101", "20200101"  # seen before birth
    assert deid.age_band(bad) == ""


def _phi_dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "MRN-99", "19610203"
    ds.InstitutionName, ds.StationName, ds.AccessionNumber = "St Elsewhere", "CT-ROOM-7", "ACC123"
    ds.StudyDescription, ds.ImageComments = "chest for Jane", "call Dr Who"
    ds.StudyInstanceUID, ds.SOPInstanceUID, ds.StudyDate = "1.2.3.4", "1.2.3.4.5", "20200101"
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "CT", "ACME", "Scanner 9000"
    ds.Rows, ds.Columns, ds.PixelSpacing, ds.SliceThickness = 512, 512, [0.7, 0.7], "1.25"
    ds.KVP, ds.PhotometricInterpretation, ds.BitsStored = 120, "MONOCHROME2", 12
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    return ds


def test_technical_attributes_is_an_allowlist_without_phi() -> None:
    attrs = deid.technical_attributes(_phi_dataset())
    assert attrs["Modality"] == "CT" and attrs["Manufacturer"] == "ACME"
    assert attrs["Rows"] == 512 and attrs["PixelSpacing"] == [0.7, 0.7] and attrs["SliceThickness"] == 1.25
    assert attrs["ImageType"] == ["ORIGINAL", "PRIMARY", "AXIAL"] and attrs["KVP"] == 120
    assert set(attrs) <= set(deid.ALLOWLIST) | {"TransferSyntaxUID"}
    flat = repr(attrs)
    for phi in (
        "Doe",
        "MRN-99",
        "1961",
        "Elsewhere",
        "CT-ROOM",
        "ACC123",
        "Jane",
        "Dr Who",
        "1.2.3.4",
        "2020",
    ):
        assert phi not in flat


def test_allowlist_holds_no_identifying_or_free_text_keyword() -> None:
    banned = {
        "InstitutionName",
        "PatientName",
        "PatientID",
        "StudyDescription",
        "SeriesDescription",
        "StationName",
        "DeviceSerialNumber",
        "StudyDate",
        "SOPInstanceUID",
        "ImageComments",
        "ProtocolName",
        "AccessionNumber",
        "PatientBirthDate",
        "InstitutionAddress",
    }
    assert banned.isdisjoint(deid.ALLOWLIST)


def test_load_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deid.KEY_ENV, "  s3cret  ")
    assert deid.load_key() == b"s3cret"
    monkeypatch.setenv(deid.KEY_ENV, " ")
    with pytest.raises(ConfigError) as err:
        deid.load_key()
    assert "RADFLOW_DEID_KEY" in str(err.value)


def test_load_key_creates_a_private_key_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(deid.KEY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="radflow.dicom.deid"):
        key = deid.load_key()
    path = tmp_path / ".radflow" / "deid.key"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(rb"[0-9a-f]{64}", key)
    assert len(caplog.records) == 1 and "new" in caplog.records[0].getMessage()
    assert key.decode() not in caplog.text  # the key itself is never logged
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="radflow.dicom.deid"):
        assert deid.load_key() == key  # read back, not re-created
    assert caplog.records == []
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    # The file's text as the environment key gives the same pseudonyms.
    monkeypatch.setenv(deid.KEY_ENV, path.read_text())
    assert deid.load_key() == key
    assert os.environ[deid.KEY_ENV].strip().encode() == key


def test_key_fingerprint_is_stable_and_reveals_nothing() -> None:
    fp = deid.key_fingerprint(KEY)
    assert fp == deid.key_fingerprint(KEY) != deid.key_fingerprint(OTHER)
    assert KEY.hex() not in fp and len(fp) == 16


def test_key_fingerprint_command_prints_the_keys_fingerprint_and_never_creates_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    monkeypatch.delenv(deid.KEY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    missing = CliRunner().invoke(app, ["key-fingerprint"])
    assert missing.exit_code != 0 and "no de-identification key" in missing.output
    assert not (tmp_path / deid.KEY_FILE).exists()

    key = deid.load_key()  # creates .radflow/deid.key
    shown = CliRunner().invoke(app, ["key-fingerprint"])
    assert shown.exit_code == 0 and shown.output.strip() == deid.key_fingerprint(key)
    assert key.decode() not in shown.output
    monkeypatch.setenv(deid.KEY_ENV, "another-secret")  # the environment's key wins, as in ingest
    assert CliRunner().invoke(app, ["key-fingerprint"]).output.strip() == deid.key_fingerprint(
        b"another-secret"
    )
