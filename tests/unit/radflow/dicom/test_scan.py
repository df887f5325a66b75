"""Header scan of single files: what is DICOM, pixel-data presence without reading pixels, keys, walking."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fixtures.users import as_another_user, world_writable
from pydicom import dcmwrite, uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate

from radflow.dicom import deid
from radflow.dicom.scan import DICOMDIR_SOP_CLASS, Header, KeyMaker, read_header
from radflow.dicom.scan_manifest import SCHEMA, reusable, to_table
from radflow.dicom.scan_pool import _in_pool, _in_process, quiet_pydicom
from radflow.dicom.scan_sniff import GZIP_MESSAGE, sniff
from radflow.dicom.scan_walk import Stat, list_files

KEY = b"scan-test-key"
PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-4711",
    "PatientBirthDate": "19610203",
    "InstitutionName": "St Elsewhere",
    "AccessionNumber": "ACC-99",
    "StudyDate": "20200105",
}


def ct_dataset(
    ts: uid.UID = uid.ExplicitVRLittleEndian, pixels: bool = True, sop: str = "1.2.826.0.1.3680043.8.498.7"
) -> Dataset:
    """A small CT image with PHI in its header."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = (
        uid.CTImageStorage,
        uid.UID(sop),
    )
    ds.file_meta.TransferSyntaxUID = ts
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = uid.CTImageStorage, sop, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    ds.SeriesNumber, ds.InstanceNumber, ds.ImageType = 3, 7, ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 4, 6, 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 1, "MONOCHROME2"
    if pixels:
        raw = np.arange(24, dtype=np.int16).tobytes()
        ds.PixelData = encapsulate([b"\xff\xd8" + raw]) if uid.UID(ts).is_compressed else raw
    return ds


def write(path: Path, ds: Dataset, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dcmwrite(path, ds, enforce_file_format=not kw, **kw)  # type: ignore[arg-type]
    return path


def scan(path: Path) -> Header:
    st = path.stat()
    with quiet_pydicom():
        return read_header(path, path.name, st.st_size, st.st_mtime_ns, KeyMaker(KEY))


@pytest.mark.parametrize(
    "ts",
    [
        uid.ExplicitVRLittleEndian,
        uid.ImplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.JPEGBaseline8Bit,
    ],
)
def test_header_of_every_encoding(tmp_path: Path, ts: uid.UID) -> None:
    h = scan(write(tmp_path / "a.dcm", ct_dataset(ts)))
    assert h.is_dicom and h.read_error == "" and h.has_pixel_data
    assert (h.transfer_syntax_uid, h.sop_class_uid, h.modality) == (ts, uid.CTImageStorage, "CT")
    assert (h.rows, h.columns, h.series_number, h.instance_number) == (
        4,
        6,
        3,
        7,
    )  # US read in file byte order
    assert h.image_type == "ORIGINAL\\PRIMARY\\AXIAL" and h.number_of_frames is None
    assert h.patient_key == deid.pseudonym("patient", "MRN-4711", KEY)
    assert h.study_key == deid.pseudonym("study", "1.2.826.0.1.3680043.8.498.1", KEY)
    assert h.series_key_uid == deid.remap_uid("1.2.826.0.1.3680043.8.498.2", KEY)
    assert h.sop_instance_key == deid.remap_uid("1.2.826.0.1.3680043.8.498.7", KEY)


def test_no_phi_in_a_row(tmp_path: Path) -> None:
    h = scan(write(tmp_path / "a.dcm", ct_dataset()))
    text = repr(h)
    for value in [*PHI.values(), "1.2.826.0.1.3680043.8.498", "Doe", "2020"]:
        assert value not in text


def test_pixel_data_presence_without_reading_pixels(tmp_path: Path) -> None:
    assert not scan(write(tmp_path / "none.dcm", ct_dataset(pixels=False))).has_pixel_data
    empty = ct_dataset(pixels=False)
    empty.PixelData = b""
    assert not scan(
        write(tmp_path / "empty.dcm", empty)
    ).has_pixel_data  # present but empty: nothing to decode
    # Data after the pixels (trailing padding) does not matter, and the pixels are never read.
    h = scan(write(tmp_path / "big.dcm", ct_dataset()))
    assert h.has_pixel_data


def test_raw_dataset_without_preamble_is_dicom(tmp_path: Path) -> None:
    ds = ct_dataset(uid.ImplicitVRLittleEndian)
    del ds.file_meta
    path = write(tmp_path / "raw", ds, implicit_vr=True, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    h = scan(path)
    assert h.is_dicom and h.read_error == "" and h.modality == "CT" and h.has_pixel_data
    assert h.transfer_syntax_uid == ""  # none recorded: clean decides how to decode


def test_dicomdir_is_recognised_by_its_media_storage_class(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = uid.UID(DICOMDIR_SOP_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = uid.UID("1.2.3")
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.FileSetID = "TEST"
    h = scan(write(tmp_path / "DICOMDIR", ds))
    assert h.is_dicom and h.sop_class_uid == DICOMDIR_SOP_CLASS and not h.has_pixel_data


def test_not_dicom_files_say_what_they_are(tmp_path: Path) -> None:
    dicom = write(tmp_path / "a.dcm", ct_dataset())
    cases = {
        "notes.txt": (b"Patient list follows\n" * 20, "not DICOM: a text file"),
        "scan.dcm.gz": (gzip.compress(dicom.read_bytes()), GZIP_MESSAGE),
        "empty": (b"", "not DICOM: the file is empty"),
        "doc.pdf": (b"%PDF-1.7\n" + bytes(300), "not DICOM: a PDF document"),
        "junk.bin": (
            bytes(range(200, 256)) * 10,
            "not DICOM: no 'DICM' prefix and no DICOM data element at the start",
        ),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        h = scan(tmp_path / name)
        assert (h.is_dicom, h.read_error, h.has_pixel_data) == (False, message, False), name


def test_text_that_happens_to_parse_is_not_dicom(tmp_path: Path) -> None:
    # Starts like a (0008,xxxx) element but holds no identifying tag: force=True's junk dataset.
    path = tmp_path / "fake"
    path.write_bytes(b"\x08\x00\x10\x00\x04\x00\x00\x00abcd" + b"hello world " * 20)
    h = scan(path)
    assert not h.is_dicom and "no DICOM header" in h.read_error


def test_truncated_headers_are_rows_with_an_error_not_a_crash(tmp_path: Path) -> None:
    good = write(tmp_path / "a.dcm", ct_dataset()).read_bytes()
    cut = tmp_path / "cut.dcm"
    for size, error in (
        (
            200,
            "DICOM file holds no data elements after its file meta (truncated or empty)",
        ),  # inside the meta
        (400, "DICOM header is truncated (the file ends inside a data element)"),
    ):
        cut.write_bytes(good[:size])
        h = scan(cut)
        assert (h.is_dicom, h.read_error, h.patient_key) == (True, error, ""), size
    # A value whose length runs past the end of the file (pydicom itself stops silently).
    cut.write_bytes(good[:132] + b"\x08\x00\x18\x00UI\x40\x00" + b"1.2.826.0.1")
    h = scan(cut)
    assert h.read_error.startswith("DICOM header is truncated") and "1.2.826" not in h.read_error


def test_unopenable_file(tmp_path: Path) -> None:
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    with quiet_pydicom():
        h = read_header(link, "dangling", 0, 0, KeyMaker(KEY))
    assert not h.is_dicom and h.read_error.startswith("cannot open the file")


def test_sniff() -> None:
    assert sniff(bytes(128) + b"DICM") == "dicom"
    assert sniff(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100") == "raw"  # explicit little endian
    assert sniff(b"\x00\x08\x00\x05CS\x00\x0aISO_IR 100") == "raw"  # explicit big endian
    assert sniff(b"\x1f\x8b\x08\x00") == GZIP_MESSAGE
    assert sniff("Ünïcödé text\n".encode()) == "not DICOM: a text file"


def test_patient_key_falls_back_to_name_then_study(tmp_path: Path) -> None:
    ds = ct_dataset()
    del ds.PatientID
    by_name = scan(write(tmp_path / "a.dcm", ds)).patient_key
    assert by_name.startswith("pt-") and by_name != deid.pseudonym("patient", "", KEY)
    del ds.PatientName, ds.PatientBirthDate
    by_study = scan(write(tmp_path / "b.dcm", ds)).patient_key
    assert by_study.startswith("pt-") and by_study != by_name


def test_non_ascii_patient_id_uses_the_character_set(tmp_path: Path) -> None:
    ds = ct_dataset()
    ds.SpecificCharacterSet, ds.PatientID = "ISO_IR 100", "MÜLLER-1"
    assert scan(write(tmp_path / "a.dcm", ds)).patient_key == deid.pseudonym("patient", "MÜLLER-1", KEY)


def test_keymaker_memoises_the_same_values_as_deid() -> None:
    keys = KeyMaker(KEY)
    assert (
        keys.pseudonym("study", "1.2")
        == deid.pseudonym("study", "1.2", KEY)
        == keys.pseudonym("study", "1.2")
    )
    assert keys.uid("1.2") == deid.remap_uid("1.2", KEY) and keys.uid("") == ""


def test_unlistable_folder_is_reported_and_listed_as_one_row() -> None:
    base = Path(tempfile.mkdtemp(prefix="radflow-walk-"))  # pytest's folders are root's only
    try:
        (base / "x" / "locked").mkdir(parents=True)
        (base / "x" / "locked" / "a.dcm").write_bytes(b"x")
        (base / "x" / "b.dcm").write_bytes(b"y")
        world_writable(base)
        (base / "x" / "locked").chmod(0o700 if os.geteuid() == 0 else 0)
        found: dict[str, list[Stat]] = {}

        def walk() -> None:
            handler = logging.FileHandler(base / "log.txt")
            logging.getLogger("radflow").addHandler(handler)
            try:
                found["plain"] = list_files(base / "x")
                found["folders"] = list_files(base / "x", folders=True, hide_names=True)
            finally:
                logging.getLogger("radflow").removeHandler(handler)
                handler.close()
            (base / "walked.txt").write_text(repr(found))  # the child's results, for the parent

        list_files(base / "x")  # the walk's lazy imports, before any fork
        as_another_user(walk)
        got = (base / "walked.txt").read_text()
        assert got == repr(
            {
                "plain": [("b.dcm", 1, (base / "x" / "b.dcm").stat().st_mtime_ns)],
                "folders": [
                    ("b.dcm", 1, (base / "x" / "b.dcm").stat().st_mtime_ns),
                    ("locked/", 0, 0),
                ],
            }
        )
        log = (base / "log.txt").read_text()
        assert "cannot list folder locked/" in log and "cannot list a folder 1 level deep" in log
    finally:
        (base / "x" / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_list_files_walks_everything_once(tmp_path: Path) -> None:
    for rel in ("a.dcm", ".hidden", "x/y/z/IM0001", "x/notes.txt", "out/manifest.parquet"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"12345")
    (tmp_path / "x" / "loop").symlink_to(tmp_path)  # a cycle must not loop
    files = list_files(tmp_path, exclude=tmp_path / "out")
    assert [f[0] for f in files] == [".hidden", "a.dcm", "x/notes.txt", "x/y/z/IM0001"]
    assert all(size == 5 and mtime_ns > 0 for _, size, mtime_ns in files)


def test_reusable_keeps_unchanged_rows_only() -> None:
    blank = ("",) * 7
    rows = [Header(p, 10, 100, False, "x", *blank, None, None, None, None, None, "", False) for p in "abc"]
    previous = to_table(rows)
    assert previous.schema == SCHEMA
    now = [("a", 10, 100), ("b", 11, 100), ("d", 1, 1)]  # b changed, c gone, d new
    kept, todo = reusable(previous, now)
    assert kept is not None and kept.column("path").to_pylist() == ["a"]
    assert [f[0] for f in todo] == ["b", "d"]
    assert reusable(None, now) == (None, now)
    # When every previous row is matched (files only added), the previous table comes back whole.
    grown = [("a", 10, 100), ("b", 10, 100), ("c", 10, 100), ("e", 5, 5)]
    kept, todo = reusable(previous, grown)
    assert kept is not None and kept.column("path").to_pylist() == ["a", "b", "c"]
    assert todo == [("e", 5, 5)]
    kept, todo = reusable(previous, [("a", 10, 100), ("b", 10, 100), ("e", 5, 5)])  # c deleted
    assert kept is not None and kept.column("path").to_pylist() == ["a", "b"]


def test_pool_and_in_process_give_the_same_rows(tmp_path: Path) -> None:
    for i in range(12):
        write(tmp_path / f"d{i % 3}" / f"{i}.dcm", ct_dataset(sop=f"1.2.3.{i}"))
    (tmp_path / "readme.txt").write_text("hello\n")
    files = list_files(tmp_path)
    chunks: list[Sequence[Stat]] = [files[i : i + 4] for i in range(0, len(files), 4)]
    from tqdm import tqdm

    with tqdm(disable=True) as bar:
        serial = _in_process(os.fspath(tmp_path), KEY, chunks, bar)
        parallel = [row for part in _in_pool(os.fspath(tmp_path), KEY, chunks, 2, bar) for row in part]
    assert serial == parallel and len(serial) == 13
    assert to_table(serial).num_rows == 13 and isinstance(to_table(serial), pa.Table)


def test_quiet_pydicom_restores_settings() -> None:
    import logging
    import warnings

    from pydicom import config

    before = (config.settings.reading_validation_mode, logging.getLogger("pydicom").level)
    with quiet_pydicom():
        assert config.settings.reading_validation_mode == config.IGNORE
        warnings.warn("quoted header value Doe^Jane", UserWarning, stacklevel=1)  # swallowed
    assert (config.settings.reading_validation_mode, logging.getLogger("pydicom").level) == before


def _odd_part10_files(folder: Path) -> list[Path]:
    """Part 10 files the fast header path must read exactly as read_partial does, or leave to it."""
    files = [write(folder / f"ts_{i}.dcm", ct_dataset(ts)) for i, ts in enumerate(TS_ALL)]
    latin = ct_dataset()
    latin.SpecificCharacterSet, latin.PatientID = "ISO_IR 100", "Müller-4711"
    files.append(write(folder / "latin1.dcm", latin))
    files.append(write(folder / "no_pixels.dcm", ct_dataset(pixels=False)))
    good = files[0].read_bytes()
    for size in (140, 200, 330, 400, 600):
        (folder / f"cut_{size}.dcm").write_bytes(good[:size])
        files.append(folder / f"cut_{size}.dcm")
    meta_end = 132 + 12 + int.from_bytes(good[140:144], "little")
    # a command set (group 0000, implicit VR) between the meta and the dataset
    command = b"\x00\x00\x00\x01\x02\x00\x00\x00\x30\x00"
    (folder / "command.dcm").write_bytes(good[:meta_end] + command + good[meta_end:])
    no_ts = ct_dataset()
    del no_ts.file_meta.TransferSyntaxUID
    files += [
        folder / "command.dcm",
        write(folder / "no_ts.dcm", no_ts, implicit_vr=False, little_endian=True),
    ]
    private = ct_dataset()
    private.file_meta.TransferSyntaxUID = uid.UID("1.2.826.0.1.3680043.8.498.99")  # a private syntax
    files.append(write(folder / "private_ts.dcm", private, implicit_vr=False, little_endian=True))
    return files


TS_ALL = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.JPEGBaseline8Bit,
    uid.RLELossless,
]


def test_fast_part10_path_gives_read_partials_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scan._read_part10 skips read_partial's FileDataset; every row must be what read_partial gives."""
    from radflow.dicom import scan as scan_module

    files = _odd_part10_files(tmp_path)
    fast, current, taken = scan_module._read_part10, [""], set[str]()

    def counted(*args):  # type: ignore[no-untyped-def]
        read = fast(*args)
        if read is not None:
            taken.add(current[0])
        return read

    def rows() -> list[Header]:
        keys, out = KeyMaker(KEY, collect_path_ids=True), []
        with quiet_pydicom():
            for p in files:
                current[0] = p.name
                out.append(read_header(p, p.name, p.stat().st_size, p.stat().st_mtime_ns, keys))
        return out

    monkeypatch.setattr(scan_module, "_read_part10", counted)
    with_fast = rows()
    monkeypatch.setattr(scan_module, "_read_part10", lambda *args: None)
    assert rows() == with_fast
    # plain little-endian files took the fast path, truncated ones too (read_dataset stops at the end)
    assert taken == {"ts_0.dcm", "ts_1.dcm", "ts_4.dcm", "ts_5.dcm", "latin1.dcm", "no_pixels.dcm"} | {
        "cut_330.dcm",
        "cut_400.dcm",
        "cut_600.dcm",
    }
    errors = {h.path: h.read_error for h in with_fast}
    assert errors["cut_400.dcm"].startswith("DICOM header is truncated") and errors["ts_0.dcm"] == ""
