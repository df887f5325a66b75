"""Series assembly wall time: radflow clean against `dcm2niix -z n` on the same uncompressed series.

    nice .venv/bin/python benchmarks/bench_series.py [--workers 1] [--repeat 7] [--slices 200]

Inputs: pacsman's 128-slice MR series from ../shared/corpus (when present; its folder also holds
four text files both sides skip) and a synthetic 512x512x`--slices` CT series (int16, rescaled to
HU) written with pydicom into a temporary folder. Per input, one table row per variant, each timed
`--repeat` times in alternating order after one untimed warm-up, with the median and best wall
time, the median CPU time, and the ratio to dcm2niix's median (and best to best):

- dcm2niix: `dcm2niix -z n -b n` as a process, from the folder (every file's header and pixels)
  to one uncompressed int16 NIfTI, output folder emptied first.
- clean: `tasks.clean.run` in this process from an ingest manifest made beforehand: reads the
  manifest, triages, reads every header and its pixels, sorts and checks the geometry, converts to
  float32 in modality units, writes the .npy (twice dcm2niix's bytes), series.parquet,
  dispositions.parquet and the quarantine report; the old arrays are deleted first. This is the
  stage's whole work for the series; Python start-up and imports are not in it (see CLI).
- ingest + clean: a full ingest header scan (fresh output) plus the clean above, both in-process:
  radflow reads each header twice (ingest, clean) where dcm2niix reads it once.
- clean CLI: `python -m tasks.clean` as a process, as DVC runs it: the clean above plus the
  interpreter's start-up and radflow's imports, a fixed cost paid once per run of the stage
  whatever the number of series.

Target (issue 3): clean wall time at most 1.5x dcm2niix's. Timings vary with other users' load on
a shared machine; medians of alternating runs make the ratio the stable figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
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


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one call."""
    cpu, start = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - start, _cpu() - cpu


def dcm2niix(series: Path, work: Path) -> Callable[[], object]:
    """The call converting the folder to uncompressed NIfTI with dcm2niix (output folder emptied first)."""
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))
    out = work / "nii"

    def once() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        subprocess.run(
            [exe, "-z", "n", "-b", "n", "-o", str(out), str(series)], check=True, capture_output=True
        )

    return once


def radflow_calls(series: Path, work: Path, workers: int) -> dict[str, Callable[[], object]]:
    """The radflow variants' calls; the manifest clean reads is made here, untimed."""
    import tasks.clean
    from radflow.config import CleanParams, IngestParams
    from tasks.clean import run as clean
    from tasks.ingest import run as ingest

    ingest(IngestParams(source=series, workers=workers), series, work / "ingest")
    params = CleanParams(workers=workers)
    result = clean(params, work / "ingest", work / "clean")
    assert result.series == 1, result.describe()
    (work / "params.yaml").write_text(f"clean:\n  workers: {workers}\n")
    code_root = str(Path(tasks.clean.__file__).resolve().parents[1])  # the CLI runs the code timed here
    command = [sys.executable, "-m", "tasks.clean", "--ingest", str(work / "ingest")]
    command += ["--out", str(work / "cli"), "--params", str(work / "params.yaml")]

    def both() -> None:
        shutil.rmtree(work / "fresh", ignore_errors=True)
        ingest(IngestParams(source=series, workers=workers), series, work / "fresh")
        clean(params, work / "fresh", work / "clean")

    def cli() -> None:
        env = {**os.environ, "PYTHONPATH": code_root}
        subprocess.run(command, check=True, capture_output=True, cwd=work, env=env)

    return {
        "clean": lambda: clean(params, work / "ingest", work / "clean"),
        "ingest + clean": both,
        "clean CLI": cli,
    }


def measure(calls: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) of each call per round after a warm-up, the order reversed every other round."""
    names = list(calls)
    for name in names:
        calls[name]()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(timed(calls[name]))
    return times


def report(label: str, times: dict[str, list[tuple[float, float]]]) -> None:
    """Table rows of one input: median and best wall time, median CPU, ratios to dcm2niix."""
    base = times["dcm2niix"]
    base_med, base_best = statistics.median(w for w, _ in base), min(w for w, _ in base)
    for name, runs in times.items():
        walls = [w for w, _ in runs]
        med, best, cpu = statistics.median(walls), min(walls), statistics.median(c for _, c in runs)
        print(
            f"{label:<25} {name:<15} {med:>8.3f} {best:>8.3f} {cpu:>8.3f}"
            f" {med / base_med:>7.2f}x {best / base_best:>7.2f}x"
        )
        label = ""


def main() -> None:
    """Print one row per input and variant: wall and CPU seconds, ratios to dcm2niix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=1, help="ingest/clean workers (dcm2niix is single-threaded here)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per variant")
    parser.add_argument("--slices", type=int, default=200, help="slices of the synthetic CT series")
    args = parser.parse_args()
    # A throwaway pseudonym key: the benchmark never creates or reads a project's .radflow/deid.key.
    os.environ.setdefault("RADFLOW_DEID_KEY", secrets.token_hex(32))
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {f"synthetic CT 512x512x{args.slices}": write_ct_series(Path(tmp) / "ct", args.slices)}
        if PACSMAN.is_dir():
            inputs = {"pacsman MR 128x128x128": PACSMAN, **inputs}
        head = ("series", "variant", "median s", "best s", "CPU s", "median", "best")
        print("{:<25} {:<15} {:>8} {:>8} {:>8} {:>8} {:>8}".format(*head))
        for label, folder in inputs.items():
            work = Path(tmp) / label.split()[0]
            work.mkdir()
            calls = {"dcm2niix": dcm2niix(folder, work), **radflow_calls(folder, work, args.workers)}
            report(label, measure(calls, args.repeat))
    print(
        f"ratios: variant / dcm2niix (median / median, best / best) over {args.repeat} alternating runs; "
        "target: clean <= 1.5x.\n"
        "dcm2niix = folder -> int16 NIfTI, one process. clean = manifest -> float32 .npy + parquet tables "
        "+ quarantine report, in-process (no start-up, no imports).\n"
        "ingest + clean = a full header scan then clean. clean CLI = `python -m tasks.clean`: clean plus "
        "interpreter start-up and imports (once per stage run)."
    )


if __name__ == "__main__":
    main()
