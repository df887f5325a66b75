"""Header reads in a process pool: strided chunks come back as the same rows, in input order."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmwrite, uid
from pydicom.dataset import Dataset, FileMetaDataset

from radflow.dicom.scan_pool import IN_PROCESS_BELOW, MAX_CHUNK, _chunk_count, paused_gc, read_headers
from radflow.dicom.scan_walk import list_files

KEY = b"k" * 32
ROOT = Path(__file__).resolve().parents[4]


def _dicom(path: Path, n: int) -> None:
    ds = Dataset()
    ds.PatientID, ds.Modality, ds.InstanceNumber = f"P{n % 7}", "CT", n
    ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, f"1.2.826.0.1.3680043.8.498.{n + 1}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.9", "1.2.826.0.1.3680043.8.498.99"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = (
        uid.CTImageStorage,
        ds.SOPInstanceUID,
    )
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    dcmwrite(path, ds, enforce_file_format=True)


def test_pool_rows_equal_in_process_rows_in_input_order(tmp_path: Path) -> None:
    n = IN_PROCESS_BELOW + 45  # enough for the pool, and not a multiple of the chunk count
    for i in range(n):
        path = tmp_path / f"d{i // 50}" / f"f{i:04d}"
        path.parent.mkdir(exist_ok=True)
        if i % 3:
            _dicom(path, i)
        else:
            path.write_text(f"note {i}\n")
    files = list_files(tmp_path)
    pooled = read_headers(str(tmp_path), files, KEY, workers=2)
    alone = read_headers(str(tmp_path), files, KEY, workers=1)
    assert [r.path for r in pooled] == [f[0] for f in files]
    assert pooled == alone
    assert sum(r.is_dicom for r in pooled) == len([i for i in range(n) if i % 3])


def test_chunk_count_gives_each_worker_several_chunks_of_bounded_size() -> None:
    assert _chunk_count(300, 2) == 8
    assert _chunk_count(10_000, 2) == 40  # ceil(10000 / 256): no chunk over MAX_CHUNK files


def test_chunk_count_is_a_multiple_of_the_workers() -> None:
    # 3595 files once made 15 chunks on 2 workers: one worker read the last chunk alone
    for n, workers in [(3595, 2), (3595, 3), (777, 4), (100_000, 6)]:
        count = _chunk_count(n, workers)
        assert count % workers == 0 and count >= 4 * workers
        assert math.ceil(n / count) <= MAX_CHUNK


def test_paused_gc_restores_the_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # one it found paused stays paused
    finally:
        gc.enable()


def test_a_scan_leaves_no_reference_cycles_for_the_paused_collector(tmp_path: Path) -> None:
    # What makes pausing the collector safe: every object a header read makes, even of a file that
    # fails to parse, is freed by reference counting, so nothing piles up over a million files.
    # In a fresh interpreter: this one's other threads (the Prefect test server) make garbage too.
    for n in range(20):
        _dicom(tmp_path / f"{n}.dcm", n)
    (tmp_path / "cut.dcm").write_bytes((tmp_path / "0.dcm").read_bytes()[:200])
    (tmp_path / "notes.txt").write_text("not DICOM")
    script = f"""
import gc
from radflow.dicom.scan_pool import paused_gc, read_headers
from radflow.dicom.scan_walk import list_files
from pathlib import Path
files = list_files(Path({str(tmp_path)!r}))
read_headers({str(tmp_path)!r}, files[:1], {KEY!r}, 1, set())  # imports and caches settle first
gc.collect()
with paused_gc():
    rows = read_headers({str(tmp_path)!r}, files, {KEY!r}, 1, set())
    print(len(rows), sum(bool(r.read_error) for r in rows), gc.collect())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["22", "2", "0"], done.stdout + done.stderr
