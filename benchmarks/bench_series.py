"""Series assembly wall time: radflow clean against `dcm2niix -z n` on the same uncompressed series.

Inputs: pacsman's 128-slice series from ../shared/corpus (when present) and a synthetic 512×512×200
CT series written with pydicom into a temporary folder. The manifest is built by ingest beforehand
(ingest has its own benchmark); only the clean stage is timed, against dcm2niix converting the same
folder to uncompressed NIfTI. Best of `--repeat` alternating runs each (wall and CPU time);
target: wall ratio ≤ 1.5.

    .venv/bin/python benchmarks/bench_series.py [--workers 1] [--repeat 3] [--slices 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
PACSMAN = ROOT.parent / "shared" / "corpus" / "dicom" / "pacsman"


def write_ct_series(folder: Path, slices: int, size: int = 512, seed: int = 0) -> Path:
    """A synthetic axial CT series: int16 stored values, rescale to HU, 1.25 mm slices."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID, ds.PatientName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = (
            "BENCH",
            "Bench^Ct",
            "CT",
            1,
            k + 1,
        )
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-250.0, -250.0, -k * 1.25]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [0.9765625, 0.9765625], 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = rng.integers(0, 2000, (size, size), dtype=np.int16).tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return folder


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its children) of one call."""
    before = os.times()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return wall, cpu


def radflow_clean(series: Path, work: Path, workers: int) -> Callable[[], object]:
    """Ingest once (untimed); the returned call runs the clean stage."""
    from radflow.config import CleanParams, IngestParams
    from tasks.clean import run as clean
    from tasks.ingest import run as ingest

    ingest(IngestParams(source=series, workers=workers), series, work / "ingest")
    params = CleanParams(workers=workers)
    result = clean(params, work / "ingest", work / "clean")
    assert result.series == 1, result.describe()
    return lambda: clean(params, work / "ingest", work / "clean")


def dcm2niix(series: Path, work: Path) -> Callable[[], object]:
    """The returned call converts the same folder to uncompressed NIfTI with dcm2niix."""
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    out = work / "nii"

    def once() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        subprocess.run(
            [exe, "-z", "n", "-b", "n", "-o", str(out), str(series)], check=True, capture_output=True
        )

    return once


def compare(ours: Callable[[], object], theirs: Callable[[], object], repeat: int) -> list[float]:
    """Best wall and CPU time of each, alternating runs so both see the same machine load."""
    best = [float("inf")] * 4
    for _ in range(repeat):
        for i, fn in ((0, ours), (2, theirs)):
            wall, cpu = timed(fn)
            best[i], best[i + 1] = min(best[i], wall), min(best[i + 1], cpu)
    return best


def main() -> None:
    """Print one row per input: radflow s, dcm2niix s, ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=1, help="clean.workers (dcm2niix is single-threaded here)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {f"synthetic CT 512x512x{args.slices}": write_ct_series(Path(tmp) / "ct", args.slices)}
        if PACSMAN.is_dir():
            inputs = {"pacsman MR 128x128x128": PACSMAN, **inputs}
        head = ("series", "radflow s", "dcm2niix s", "ratio", "CPU s", "CPU s", "ratio")
        print("{:<26} {:>9} {:>10} {:>6}   {:>6} {:>6} {:>6}".format(*head))
        for name, folder in inputs.items():
            work = Path(tmp) / name.split()[0]
            work.mkdir()
            w1, c1, w2, c2 = compare(
                radflow_clean(folder, work, args.workers), dcm2niix(folder, work), args.repeat
            )
            print(
                f"{name:<26} {w1:>9.3f} {w2:>10.3f} {w1 / w2:>6.2f}   {c1:>6.3f} {c2:>6.3f} {c1 / c2:>6.2f}"
            )
        print("wall ratio target ≤ 1.5; best of", args.repeat, "alternating runs")


if __name__ == "__main__":
    main()
