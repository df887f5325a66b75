"""The ingest stage on small trees built here, and on the whole reference corpus."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.users import as_another_user, world_writable
from pydicom import dcmwrite, uid
from pydicom.dataset import Dataset, FileMetaDataset

from radflow.config import IngestParams
from radflow.dicom import deid
from radflow.dicom.scan import COLUMNS, DICOMDIR_SOP_CLASS
from radflow.dicom.scan_sniff import GZIP_MESSAGE
from radflow.errors import InputError
from tasks.ingest import main, run

PHI = [
    "Doe^Jane",
    "Roe^Richard",
    "MRN-4711",
    "MRN-0815",
    "19610203",
    "St Elsewhere",
    "ACC-99",
    "20200105",
    "1.2.826.0.1.3680043.8.498",
]


def image(path: Path, patient: str, name: str, sop: str, pixels: bool = True, preamble: bool = True) -> Path:
    """A small CT image with PHI in its header."""
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, patient, "19610203"
    ds.InstitutionName, ds.AccessionNumber, ds.StudyDate = "St Elsewhere", "ACC-99", "20200105"
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = uid.CTImageStorage, sop, "CT"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.1{patient[-1]}"
    ds.SeriesInstanceUID = ds.StudyInstanceUID + ".2"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 2, 2, 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 1, "MONOCHROME2"
    if pixels:
        ds.PixelData = np.zeros(4, np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = (
            uid.CTImageStorage,
            uid.UID(sop),
        )
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        dcmwrite(path, ds, enforce_file_format=True)
    else:
        dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    return path


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """Two patients' images, a header without pixels, a raw dataset, text, gzip, nested files."""
    src = tmp_path / "src"
    a = image(src / "p1" / "a.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.101")
    image(src / "p1" / "b.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.102")
    image(src / "p2" / "deep" / "er" / "IM0001", "MRN-0815", "Roe^Richard", "1.2.826.0.1.3680043.8.498.201")
    image(src / "p2" / "nopix.dcm", "MRN-0815", "Roe^Richard", "1.2.826.0.1.3680043.8.498.202", pixels=False)
    image(src / "p2" / "raw", "MRN-0815", "Roe^Richard", "1.2.826.0.1.3680043.8.498.203", preamble=False)
    (src / "README.txt").write_text("Exported for Doe^Jane MRN-4711\n")
    (src / ".DS_Store").write_bytes(bytes(range(256)))
    (src / "p1" / "c.dcm.gz").write_bytes(gzip.compress(a.read_bytes()))
    return src


def manifest(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "manifest.parquet").set_index("path")


def test_one_row_per_file_with_dispositions_and_no_phi(
    tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    caplog.set_level(logging.DEBUG)
    result = run(IngestParams(workers=1), tree, out)
    m = manifest(out)
    files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
    assert sorted(m.index) == files and result.files == len(files) == 8
    assert list(m.reset_index().columns) == list(COLUMNS)
    assert (result.read, result.reused, result.dicom, result.not_dicom) == (8, 0, 5, 3)
    assert m.loc["p1/c.dcm.gz", "read_error"] == GZIP_MESSAGE and not m.loc["p1/c.dcm.gz", "is_dicom"]
    assert m.loc["README.txt", "read_error"].startswith("not DICOM")
    assert m.loc["p2/deep/er/IM0001", "is_dicom"] and m.loc["p2/raw", "is_dicom"]
    assert m.loc["p2/deep/er/IM0001", "has_pixel_data"] and not m.loc["p2/nopix.dcm", "has_pixel_data"]
    key = deid.load_key()
    assert m.loc["p1/a.dcm", "patient_key"] == deid.pseudonym("patient", "MRN-4711", key)
    assert m.loc["p1/a.dcm", "study_key"] == m.loc["p1/b.dcm", "study_key"] != m.loc["p2/raw", "study_key"]
    assert m.loc["p1/a.dcm", "rows"] == 2 and m.loc["p1/a.dcm", "modality"] == "CT"
    said = result.describe() + caplog.text + "".join(capfd.readouterr())
    everything = b"".join(p.read_bytes() for p in out.iterdir()) + said.encode()
    for value in PHI:
        assert value.encode() not in everything, value
    source = json.loads((out / "source.json").read_text())
    assert source["root"] == tree.as_posix() and source["key_fingerprint"] == deid.key_fingerprint(key)


def test_incremental_reads_only_what_changed(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(IngestParams(workers=1), tree, out)
    again = run(IngestParams(workers=1), tree, out)
    assert (again.read, again.reused, again.dropped) == (0, 8, 0)
    before = manifest(out)

    changed = tree / "p1" / "b.dcm"
    image(changed, "MRN-0815", "Roe^Richard", "1.2.826.0.1.3680043.8.498.109")  # new content
    os.utime(changed, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    (tree / "README.txt").unlink()
    image(tree / "new" / "x.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.110")
    third = run(IngestParams(workers=1), tree, out)
    assert (third.read, third.reused, third.dropped, third.files) == (2, 6, 2, 8)
    after = manifest(out)
    assert "README.txt" not in after.index and "new/x.dcm" in after.index
    assert after.loc["p1/b.dcm", "patient_key"] != before.loc["p1/b.dcm", "patient_key"]
    unchanged = before.index.drop(["p1/b.dcm", "README.txt"])
    pd.testing.assert_frame_equal(after.loc[unchanged], before.loc[unchanged])


def test_a_new_key_forces_a_full_rescan(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    run(IngestParams(workers=1), tree, out)
    first = manifest(out)
    monkeypatch.setenv(deid.KEY_ENV, "a-different-secret")
    result = run(IngestParams(workers=1), tree, out)
    assert (result.read, result.reused) == (8, 0)
    assert first.loc["p1/a.dcm", "patient_key"] != manifest(out).loc["p1/a.dcm", "patient_key"]


def test_output_inside_the_source_is_not_scanned(tree: Path) -> None:
    out = tree / "ingest"
    run(IngestParams(workers=1), tree, out)
    result = run(IngestParams(workers=1), tree, out)
    assert result.files == 8 and not any(p.startswith("ingest/") for p in manifest(out).index)


def test_a_file_name_that_is_not_utf8_is_a_row(tree: Path, tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tree) + b"/caf\xe9.dcm", os.O_CREAT | os.O_WRONLY))  # Latin-1 name
    result = run(IngestParams(workers=1), tree, tmp_path / "out")
    m = manifest(tmp_path / "out")
    assert result.files == 9 and m.loc["caf\\xe9.dcm", "read_error"].startswith(
        "the file name is not valid UTF-8"
    )


def test_missing_source_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        run(IngestParams(), tmp_path / "nope", tmp_path / "out")
    message = str(err.value)
    assert "nope" in message and message.count(". ") == 0 and message.endswith(".")


def test_a_source_folder_that_cannot_be_listed_is_one_sentence(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="radflow-locked-"))  # pytest's folders are root's only
    src = base / "src"
    try:
        src.mkdir()
        (src / "a.dcm").write_bytes(b"x")
        world_writable(base)
        run(IngestParams(), src, base / "first")  # listable: one row (and the scan's imports loaded)
        src.chmod(0o700 if os.geteuid() == 0 else 0)

        def attempt() -> None:
            try:
                run(IngestParams(), src, base / "out")
            except InputError as err:
                (base / "message.txt").write_text(str(err))

        as_another_user(attempt)
        message = (base / "message.txt").read_text()
        assert str(src) in message and "cannot be listed" in message and message.count(". ") == 0
        assert not (base / "out" / "manifest.parquet").exists()
    finally:
        src.chmod(0o755)
        shutil.rmtree(base)


def test_main_reads_params_and_prints_one_line(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"ingest:\n  source: {tree.as_posix()}\n  workers: 1\n")
    main(["--out", str(tmp_path / "out"), "--params", str(params)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: 8 files")
    with pytest.raises(SystemExit) as code:
        main(["--source", str(tmp_path / "absent"), "--out", str(tmp_path / "out"), "--params", str(params)])
    assert code.value.code == 2 and "absent" in capsys.readouterr().err


def test_whole_corpus_one_row_per_file(dicom_corpus: Path, tmp_path: Path) -> None:
    result = run(IngestParams(workers=0, redact_paths=False), dicom_corpus, tmp_path / "out")
    m = manifest(tmp_path / "out")
    files = sorted(p.relative_to(dicom_corpus).as_posix() for p in dicom_corpus.rglob("*") if p.is_file())
    assert sorted(m.index) == files and result.files == len(files)
    odd = "odd_dicom/pydicom_test_files/"
    assert m.loc[odd + "zipMR.gz", "read_error"] == GZIP_MESSAGE
    assert m.loc[odd + "README.txt", "read_error"] == "not DICOM: a text file"
    assert m.loc[odd + "dicomdirtests/DICOMDIR", "sop_class_uid"] == DICOMDIR_SOP_CLASS
    assert m.loc[odd + "MR_small.dcm", "has_pixel_data"] and m.loc[odd + "MR_small.dcm", "rows"] == 64
    assert m.loc[odd + "MR_small_bigendian.dcm", "rows"] == 64  # US in big endian
    assert m.loc[odd + "image_dfl.dcm", "has_pixel_data"]  # deflated: presence seen without decoding
    assert not m.loc["odd_dicom/fodicom_test_data/GH1146.dcm", "has_pixel_data"]  # empty Pixel Data
    acr = m.loc["odd_dicom/fodicom_test_data/CR-MONO1-10-chest"]  # ACR-NEMA: no preamble, no meta
    assert acr["is_dicom"] and acr["read_error"] == "" and acr["modality"] == "CR" and acr["has_pixel_data"]
    broken = m.loc["odd_dicom/fodicom_test_data/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm"]
    assert broken["is_dicom"] and broken["read_error"].startswith("DICOM header could not be parsed")
    assert m.loc[odd + "rtplan_truncated.dcm", "read_error"].startswith("DICOM header is truncated")
    # Keys are pseudonyms or remapped UIDs by their very form, so no raw identifier can hide there.
    for column, form in (
        ("patient_key", r"pt-[0-9a-f]{16}"),
        ("study_key", r"st-[0-9a-f]{16}"),
        ("series_key_uid", r"2\.25\.\d{1,39}"),
        ("sop_instance_key", r"2\.25\.\d{1,39}"),
    ):
        values = m.loc[m[column] != "", column]
        assert values.str.fullmatch(form).all(), column
    readable = m[m["is_dicom"] & (m["read_error"] == "")]
    # Some odd files carry no patient, study or instance identifier at all: their keys stay empty.
    assert (readable["patient_key"] != "").mean() > 0.9 and (readable["sop_instance_key"] != "").mean() > 0.9
    again = run(IngestParams(workers=0, redact_paths=False), dicom_corpus, tmp_path / "out")
    assert (again.read, again.reused) == (0, result.files)


def test_whole_corpus_redacted_by_default_each_path_finds_its_one_file(
    dicom_corpus: Path, tmp_path: Path
) -> None:
    from radflow.dicom.paths import source_paths

    result = run(IngestParams(workers=0), dicom_corpus, tmp_path / "out")
    table = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    shown = table.path.tolist()
    files = sorted(p.relative_to(dicom_corpus).as_posix() for p in dicom_corpus.rglob("*") if p.is_file())
    assert result.files == len(files) == len(set(shown))
    # dcm_qa files are named by their SOP Instance UID: those names are redacted, plain ones are not
    assert any(re.search(r"/\d+_id-[0-9a-f]{8}\.dcm$", p) for p in shown)
    assert "dcm_qa_12bit/README.md" in shown and "pacsman/MANIFEST.txt" not in shown  # PACSMAN: a name
    source = source_paths(tmp_path / "out", deid.load_key())
    assert sorted(source.resolve(p, k) or "" for p, k in zip(shown, table.path_key, strict=True)) == files
    again = run(IngestParams(workers=0), dicom_corpus, tmp_path / "out")
    assert (again.read, again.reused) == (0, result.files)


def test_redacted_paths_are_reused_incrementally_and_redacted_afresh(tree: Path, tmp_path: Path) -> None:
    image(tree / "MRN-4711_Doe_Jane" / "a.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.301")
    (tree / "Poe_Edgar_notes").mkdir()
    (tree / "Poe_Edgar_notes" / "notes.txt").write_text("no header names this patient yet\n")
    out, params = tmp_path / "out", IngestParams(workers=1, redact_paths=True)
    first = run(params, tree, out)
    before = manifest(out)
    assert first.files == 10 and "Poe_Edgar_notes/notes.txt" in before.index
    assert not [p for p in before.index if "4711" in p or "Doe" in p or "Jane" in p]
    assert json.loads((out / "source.json").read_text())["redact_paths"] is True
    assert (out / "redaction.json").is_file()
    again = run(params, tree, out)
    assert (again.read, again.reused, again.dropped) == (0, 10, 0)
    pd.testing.assert_frame_equal(manifest(out), before)

    # A new patient in a folder named after him: read, its path redacted, and the old notes folder
    # that bears his name is redacted too, although its row is reused.
    image(tree / "MRN-0999_Poe_Edgar" / "b.dcm", "MRN-0999", "Poe^Edgar", "1.2.826.0.1.3680043.8.498.302")
    third = run(params, tree, out)
    after = manifest(out)
    assert (third.read, third.reused, third.dropped, third.files) == (1, 10, 0, 11)
    assert not [p for p in after.index if "0999" in p or "Poe" in p or "Edgar" in p]
    assert after.path_key.str.fullmatch("[0-9a-f]{16}").all() and after.path_key.is_unique
    assert "README.txt" in after.index and "p1/a.dcm" in after.index  # nothing to redact there
    assert run(params, tree, out).read == 0
    pd.testing.assert_frame_equal(manifest(out), after)
    # The incremental manifest is the one a fresh scan writes.
    run(params, tree, tmp_path / "fresh")
    pd.testing.assert_frame_equal(manifest(tmp_path / "fresh"), after)
    # Switching redaction off rescans every file under its real path.
    off = run(IngestParams(workers=1, redact_paths=False), tree, out)
    assert (off.read, off.reused) == (11, 0) and "MRN-0999_Poe_Edgar/b.dcm" in manifest(out).index
    assert (manifest(out).path_key == "").all()
    assert not (out / "redaction.json").exists()


def test_hidden_names_are_reused_incrementally_and_a_mode_switch_rescans(tree: Path, tmp_path: Path) -> None:
    """redact_paths: all: a note in a folder name that no header holds is hidden too."""
    image(tree / "reread - Dr Hausmann" / "a.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.301")
    out, params = tmp_path / "out", IngestParams(workers=1, redact_paths="all")
    first = run(params, tree, out)
    before = manifest(out)
    assert first.files == 9 and before.path_key.is_unique
    parts = [part for p in before.index for part in p.split("/")]
    assert all(re.fullmatch(r"id-[0-9a-f]{8}(\.dcm|\.txt|\.gz)?", part) for part in parts), parts
    assert json.loads((out / "source.json").read_text())["redact_paths"] == "all"
    again = run(params, tree, out)
    assert (again.read, again.reused) == (0, 9)
    pd.testing.assert_frame_equal(manifest(out), before)
    image(tree / "reread - Dr Hausmann" / "b.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.302")
    third = run(params, tree, out)
    assert (third.read, third.reused) == (1, 9)
    run(params, tree, tmp_path / "fresh")
    pd.testing.assert_frame_equal(manifest(out), manifest(tmp_path / "fresh"))
    # Back to redacting identifiers only: every file is read again and the note shows once more.
    default = run(IngestParams(workers=1, redact_paths=True), tree, out)
    assert (default.read, default.reused) == (10, 0)
    assert "reread - Dr Hausmann/b.dcm" in manifest(out).index


def test_cli_hide_names_and_locate_finds_the_real_file(tree: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    image(tree / "reread - Dr Hausmann" / "a.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.301")
    out, runner = tmp_path / "out", CliRunner()
    done = runner.invoke(app, ["ingest", str(tree), "--out", str(out), "--workers", "1", "--hide-names"])
    assert done.exit_code == 0, done.output
    shown = manifest(out).index.tolist()
    assert not [p for p in shown if "Hausmann" in p or "README" in p or p.startswith("p1/")]
    row = manifest(out).loc[[p for p in shown if p.endswith(".dcm")]]
    found = runner.invoke(app, ["locate", str(out), *row.index])
    assert found.exit_code == 0, found.output
    assert (tree / "reread - Dr Hausmann" / "a.dcm").as_posix() in found.output.splitlines()
    both = runner.invoke(app, ["ingest", str(tree), "--out", str(out), "--hide-names", "--real-paths"])
    assert both.exit_code == 2 and "contradict" in both.output and both.output.count("\n") == 1


def test_cli_ingest_redacts_and_locate_finds_the_real_file(tree: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    image(tree / "MRN-4711_Doe_Jane" / "a.dcm", "MRN-4711", "Doe^Jane", "1.2.826.0.1.3680043.8.498.301")
    out = tmp_path / "out"
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(tree), "--out", str(out), "--workers", "1", "--redact-paths"])
    assert done.exit_code == 0, done.output
    shown = [p for p in manifest(out).index if p.endswith("/a.dcm") and p.startswith("id-")]
    assert len(shown) == 1 and "4711" not in shown[0]
    found = runner.invoke(app, ["locate", str(out), shown[0], "README.txt"])
    assert found.exit_code == 0, found.output
    assert found.output.splitlines() == [
        (tree / "MRN-4711_Doe_Jane" / "a.dcm").as_posix(),
        (tree / "README.txt").as_posix(),
    ]
    missing = runner.invoke(app, ["locate", str(out), "id-00000000/a.dcm"])
    assert missing.exit_code == 2 and "id-00000000/a.dcm matches no file" in missing.output
    assert missing.output.count("\n") == 1


def test_a_path_key_collision_stops_the_scan_rather_than_drop_a_file(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radflow.dicom import paths

    monkeypatch.setattr(paths, "path_keyer", lambda key: lambda rel: "0" * 16)
    with pytest.raises(RuntimeError, match="share a path_key"):
        run(IngestParams(workers=1, redact_paths=True), tree, tmp_path / "out")
