"""The training/evaluation samples: accepted series of the model's modalities whose study is labelled.

Datasets here are small, so every array is read, windowed and resized once into one in-memory
array; the training loop then only indexes tensors and the input pipeline is never the bottleneck.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from radflow.data.preprocess import prepare, standardise
from radflow.errors import InputError
from radflow.models.config import ModelConfig

ROW_COLUMNS = [
    "series_key",
    "study_key",
    "patient_key",
    "modality",
    "site_key",
    "manufacturer",
    "sex",
    "age_band",
]


def sample_rows(
    clean_dir: Path, split_path: Path, modalities: tuple[str, ...], spatial_dims: int
) -> pd.DataFrame:
    """One row per usable series: ROW_COLUMNS + array_path, label, split (sorted, so order is stable)."""
    rows = input_rows(clean_dir, modalities, spatial_dims).drop(columns="patient_key")
    split = _read_table(split_path, "run the split stage first (dvc repro split)")
    rows = rows.merge(split[["study_key", "patient_key", "label", "split"]], on="study_key", how="inner")
    return rows.sort_values(["split", "study_key", "series_key"]).reset_index(drop=True)


def input_rows(clean_dir: Path, modalities: tuple[str, ...], spatial_dims: int) -> pd.DataFrame:
    """Every accepted series a model of these modalities and dimensions takes: ROW_COLUMNS + array_path."""
    series = _read_table(clean_dir / "series.parquet", "run the clean stage first (dvc repro clean)")
    kind = "radiograph" if spatial_dims == 2 else "volume"
    chosen = series[series["modality"].isin(modalities) & (series["kind"] == kind)]
    rows = chosen.reindex(columns=[*ROW_COLUMNS, "array_path"]).fillna("")
    return rows.sort_values(["study_key", "series_key"]).reset_index(drop=True)


def _read_table(path: Path, fix: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path} not found; {fix}.")
    return pd.read_parquet(path)


def load_images(clean_dir: Path, rows: pd.DataFrame, config: ModelConfig, desc: str = "load") -> np.ndarray:
    """(N, 1, *spatial_size) float32 in [0, 1]: each clean array windowed and resized, not standardised."""
    out = np.empty((len(rows), 1, *config.spatial_size), dtype=np.float32)
    paths = rows["array_path"].tolist()
    for i, rel in enumerate(tqdm(paths, desc=desc, unit="series", leave=False, disable=None)):
        path = clean_dir / rel
        if not path.is_file():
            raise InputError(f"{path} is listed in series.parquet but missing; rerun the clean stage.")
        out[i] = prepare(np.load(path), config)
    return out


def load_split_arrays(
    clean_dir: Path, split_path: Path, config: ModelConfig, split: str
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Preprocessed inputs (N, C, *spatial), labels (N,) and one row per sample for one split."""
    rows = sample_rows(clean_dir, split_path, config.modalities, config.spatial_dims)
    rows = rows[rows["split"] == split].reset_index(drop=True)
    images = standardise(load_images(clean_dir, rows, config, desc=split), config)
    labels = rows["label"].to_numpy(dtype=np.int64)
    return images, labels, rows[ROW_COLUMNS].copy()
