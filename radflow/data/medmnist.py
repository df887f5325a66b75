"""Convert MedMNIST .npz files into DICOM: 2D images → CR images, 3D volumes → CT series, plus labels.csv."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID
from tqdm import tqdm

from radflow.errors import InputError
from radflow.synth.files import CR_IMAGE, CT_IMAGE, new_dataset
from radflow.synth.template import FileTemplate, fixed_uid, placeholder_uid

SPLITS = ("train", "val", "test")
MARKER = ".radflow-medmnist.json"
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, what PIL's convert("L") uses


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote, in counts."""

    source: str
    kind: str
    images: dict[str, int]
    files: int
    positives: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """A one-line human summary."""
        per_split = ", ".join(f"{split} {n}" for split, n in self.images.items())
        unit = "CT series" if self.kind == "3d" else "CR images"
        notes = "".join(f" Note: {note}." for note in self.notes)
        return (
            f"Imported {sum(self.images.values())} {unit} ({per_split}) from {self.source} as "
            f"{self.files} DICOM files; {self.positives} have a label other than 0.{notes}"
        )


def load_splits(npz: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The (images, labels) of each split present in `npz`, checked for keys and shapes."""
    if not npz.is_file():
        raise InputError(f"{npz} does not exist; pass a MedMNIST .npz file.")
    try:
        arrays = np.load(npz, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise InputError(
            f"{npz} is not a readable .npz file ({type(err).__name__}); pass a MedMNIST .npz."
        ) from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise InputError(f"{npz} holds a single array, not a MedMNIST .npz with train_images/train_labels.")
    with arrays:
        splits = {
            s: (arrays[f"{s}_images"], arrays[f"{s}_labels"])
            for s in SPLITS
            if f"{s}_images" in arrays.files and f"{s}_labels" in arrays.files
        }
    if not splits:
        raise InputError(
            f"{npz} has no <split>_images/<split>_labels pair (train, val or test); "
            f"its keys are {sorted(arrays.files)}."
        )
    for split, (images, labels) in splits.items():
        _check_shapes(npz, split, images, labels)
    if len({_kind(images) for images, _ in splits.values()}) > 1:
        raise InputError(f"{npz} mixes 2D and 3D images across splits; import one kind per file.")
    return splits


def _kind(images: np.ndarray) -> str:
    """'2d' for (N,H,W), (N,H,W,1) and (N,H,W,3); '3d' for (N,D,H,W) with any other last axis."""
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3)):
        return "2d"
    return "3d"


def _check_shapes(npz: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Images are (N,H,W[,C]) or (N,D,H,W) numbers; labels are N single integers."""
    if images.ndim not in (3, 4) or images.shape[0] == 0 or not np.issubdtype(images.dtype, np.number):
        raise InputError(
            f"{npz} key {split}_images has shape {images.shape} ({images.dtype}); "
            "expected (N,H,W), (N,H,W,3) or (N,D,H,W) numbers."
        )
    if labels.shape not in ((images.shape[0],), (images.shape[0], 1)):
        raise InputError(
            f"{npz} key {split}_labels has shape {labels.shape}; expected ({images.shape[0]}, 1) "
            "single-label integers (multi-label MedMNIST sets are not supported)."
        )


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pixel values as 0..255 uint8: floats in [0, 1] are scaled, anything else is clipped."""
    values = images.astype(np.float64)
    if np.issubdtype(images.dtype, np.floating) and values.max(initial=0.0) <= 1.0:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _to_gray(images: np.ndarray) -> np.ndarray:
    """(N,H,W,C) → (N,H,W): RGB by luma, single channel as is."""
    if images.ndim == 4:
        return images[..., 0] if images.shape[-1] == 1 else images.astype(np.float64) @ LUMA
    return images


# Placeholders of the exact encoded length of the values that replace them (see radflow.synth.template).
STUDY, SERIES, FRAME = placeholder_uid(1), placeholder_uid(2), placeholder_uid(3)
NAME, PATIENT_ID, STUDY_ID = "MEDMNIST^######", "MEDMNIST-######", "MM######"


def _sop(k: int) -> str:
    """The placeholder SOPInstanceUID of slice k (0 for a 2D image)."""
    return placeholder_uid(100 + k)


def _base(source: str, sop_class: UID, sop: str) -> Dataset:
    """Patient/study/series headers with placeholders for identity and UIDs (fixed dates, no real PHI)."""
    ds = new_dataset(sop_class, UID(sop))
    ds.PatientName, ds.PatientID, ds.StudyID = NAME, PATIENT_ID, STUDY_ID
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20000101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "000000"
    ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Manufacturer, ds.ManufacturerModelName = "MedMNIST", source[:64]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = 127.5, 256
    return ds


def image_template(source: str, rows: int, cols: int) -> FileTemplate:
    """The template of one 8-bit MONOCHROME2 CR image."""
    ds = _base(source, CR_IMAGE, _sop(0))
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "", ""
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelSpacing = ds.ImagerPixelSpacing = [1.0, 1.0]
    ds.PixelData = b"\0" * (rows * cols + (rows * cols) % 2)
    ds["PixelData"].VR = "OB"
    return FileTemplate(ds, [STUDY, SERIES, _sop(0), NAME, PATIENT_ID, STUDY_ID])


def slice_template(source: str, shape: tuple[int, int, int], k: int) -> FileTemplate:
    """The template of slice k of an int16 CT series, 1 mm isotropic, axial."""
    ds = _base(source, CT_IMAGE, _sop(k))
    ds.Modality, ds.InstanceNumber = "CT", k + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = FRAME, ""
    ds.ImagePositionPatient = [0.0, 0.0, float(k)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [1.0, 1.0], 1.0, 1.0
    ds.Rows, ds.Columns = shape[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PixelData = b"\0" * (2 * shape[1] * shape[2])
    return FileTemplate(ds, [STUDY, SERIES, FRAME, _sop(k), NAME, PATIENT_ID, STUDY_ID])


def _identity(source: str, split: str, index: int, number: int) -> tuple[list[str], list[str]]:
    """(study, series, frame UIDs) fixed by file name, split and index, and the synthetic identity values."""
    uids = [fixed_uid("medmnist", source, split, index, part) for part in ("study", "series", "frame")]
    return uids, [f"MEDMNIST^{number:06d}", f"MEDMNIST-{number:06d}", f"MM{number:06d}"]


def _write_split(
    source: str, split: str, pixels: np.ndarray, root: Path, start: int
) -> Iterator[tuple[str, int]]:
    """Write every image of one split; yields (StudyInstanceUID, files written) per image."""
    volumes = pixels.ndim == 4
    if volumes:
        templates = [slice_template(source, pixels.shape[1:], k) for k in range(pixels.shape[1])]
        stored = pixels.astype(np.int16)
    else:
        template = image_template(source, *pixels.shape[1:])
        pad = b"\0" * (pixels.shape[1] * pixels.shape[2] % 2)
    for index in tqdm(range(len(pixels)), desc=f"import {split}", unit="image", disable=None):
        (study, series, frame), identity = _identity(source, split, index, start + index)
        folder = root / split / f"{index // 1000:03d}"
        if volumes:
            for k, slice_file in enumerate(templates):
                sop = fixed_uid("medmnist", source, split, index, "sop", k)
                slice_file.write(
                    folder / f"{index:06d}" / f"IM{k + 1:04d}.dcm",
                    [study, series, frame, sop, *identity],
                    stored[index, k].tobytes(),
                )
        else:
            sop = fixed_uid("medmnist", source, split, index, "sop", 0)
            template.write(
                folder / f"{index:06d}.dcm", [study, series, sop, *identity], pixels[index].tobytes() + pad
            )
        yield study, len(templates) if volumes else 1


def import_medmnist(npz: Path | Sequence[Path], out_dir: Path) -> ImportSummary:
    """Write one or more .npz files as a DICOM cohort with labels.csv (StudyInstanceUID,label,split).

    Several files are one cohort: MedMNIST's train+val file beside a separate test file, say.
    Each split must come from one file, and all files hold the same kind of image (2D or 3D).
    """
    sources = [Path(npz)] if isinstance(npz, (str, Path)) else [Path(p) for p in npz]
    out_dir = Path(out_dir)
    splits = _gather(sources)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise InputError(f"{out_dir} exists and is not a MedMNIST import; choose an empty or new folder.")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    kind = _kind(next(iter(splits.values()))[1])
    has_rgb = any(images.ndim == 4 and images.shape[-1] == 3 for _, images, _ in splits.values())
    notes = ("RGB images were converted to grayscale (BT.601 luma)",) if has_rgb else ()
    rows: list[tuple[str, int, str]] = []
    files = 0
    for split, (source, images, labels) in splits.items():
        pixels = to_uint8(_to_gray(images) if kind == "2d" else images)
        flat = labels.reshape(-1).astype(int)
        for index, (uid, n_files) in enumerate(_write_split(source, split, pixels, out_dir, len(rows))):
            rows.append((uid, int(flat[index]), split))
            files += n_files
    _write_labels(out_dir / "labels.csv", rows)
    names = " + ".join(p.name for p in sources)
    summary = ImportSummary(
        names,
        kind,
        {s: len(i) for s, (_, i, _) in splits.items()},
        files,
        sum(label != 0 for _, label, _ in rows),
        notes,
    )
    (out_dir / MARKER).write_text(json.dumps({"source": names, "files": files}) + "\n")
    return summary


def _gather(sources: list[Path]) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Each split (in train, val, test order) with the name of the file it came from."""
    if not sources:
        raise InputError("no .npz file given; pass at least one MedMNIST .npz.")
    found: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    kinds: dict[str, str] = {}
    for npz in sources:
        for split, (images, labels) in load_splits(npz).items():
            if split in found:
                raise InputError(
                    f"split '{split}' is in both {found[split][0]} and {npz.name}; pass each split once."
                )
            found[split] = (npz.name, images, labels)
            kinds[npz.name] = _kind(images)
    if len(set(kinds.values())) > 1:
        raise InputError(
            f"{' and '.join(sorted(kinds))} hold different kinds of image (2D and 3D); import them apart."
        )
    return {s: found[s] for s in SPLITS if s in found}


def _write_labels(path: Path, rows: list[tuple[str, int, str]]) -> None:
    """labels.csv with columns StudyInstanceUID,label,split."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["StudyInstanceUID", "label", "split"])
        writer.writerows(rows)
