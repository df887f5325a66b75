"""A small clean-stage output (series.parquet + arrays) and labels.csv, as the clean stage writes them.

Label 1 radiographs/volumes carry a bright blob, so a model can learn the task in a few epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radflow.data.labels import study_key
from radflow.dicom.deid import load_key, pseudonym


def write_clean_dir(
    root: Path,
    patients: int = 30,
    studies_per_patient: int = 2,
    size: int = 16,
    volumes: bool = False,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write root/clean (series.parquet, arrays/) and root/labels.csv; return their paths."""
    rng = np.random.default_rng(seed)
    key = load_key()
    clean = root / "clean"
    (clean / "arrays").mkdir(parents=True, exist_ok=True)
    series, labels = [], []
    for p in range(patients):
        for s in range(studies_per_patient):
            uid = f"1.2.826.0.1.3680043.8.498.{p}.{s}"
            label = int(rng.random() < 0.4)
            labels.append({"StudyInstanceUID": uid, "label": label, "split": ["train", "val", "test"][p % 3]})
            modality, array = (
                ("CT", _volume(rng, label, size)) if volumes else ("CR", _radiograph(rng, label, size))
            )
            skey = pseudonym("series", uid + ".1", key)
            np.save(clean / "arrays" / f"{skey}.npy", array)
            series.append(
                _row(skey, pseudonym("patient", f"P{p}", key), study_key(uid, key), modality, array, p)
            )
    pd.DataFrame(series).to_parquet(clean / "series.parquet", index=False)
    labels_csv = root / "labels.csv"
    pd.DataFrame(labels).to_csv(labels_csv, index=False)
    return clean, labels_csv


def _radiograph(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    image = rng.normal(0.4, 0.08, (size * 2, size * 2))
    if label:
        y, x = rng.integers(size // 2, size * 3 // 2, 2)
        yy, xx = np.mgrid[: size * 2, : size * 2]
        image += 0.5 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * (size / 5) ** 2))
    return np.clip(image, 0, 1).astype(np.float32)


def _volume(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    volume = rng.normal(-500, 100, (size, size, size))
    if label:
        z, y, x = rng.integers(size // 4, size * 3 // 4, 3)
        zz, yy, xx = np.mgrid[:size, :size, :size]
        volume += 800 * np.exp(-((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2) / (2 * (size / 6) ** 2))
    return volume.astype(np.float32)


def _row(skey: str, pkey: str, stkey: str, modality: str, array: np.ndarray, p: int) -> dict[str, object]:
    return {
        "series_key": skey,
        "patient_key": pkey,
        "study_key": stkey,
        "modality": modality,
        "kind": "volume" if array.ndim == 3 else "radiograph",
        "n_slices": array.shape[0] if array.ndim == 3 else 1,
        "shape": list(array.shape),
        "spacing_mm": [1.0] * array.ndim,
        "array_path": f"arrays/{skey}.npy",
        "manufacturer": ["ACME", "Globex"][p % 2],
        "site_key": f"si-{p % 3}",
        "sex": "MF"[p % 2],
        "age_band": "50-59",
    }
