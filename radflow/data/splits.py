"""Assign labelled studies to train/val/test, grouped by patient, and check nothing leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from radflow.errors import InputError

N_FOLDS = 20  # assignment granularity: each fold is ~5% of patients


def grouped_split(studies: pd.DataFrame, train_fraction: float, val_fraction: float, seed: int) -> pd.Series:
    """Split names per row, whole patients to one split, label proportions kept (seeded).

    StratifiedGroupKFold makes N small folds that are each patient-disjoint and stratified; whole
    folds are then dealt to train, val and test in the requested proportions.
    """
    n_patients = studies["patient_key"].nunique()
    n_folds = max(3, min(N_FOLDS, n_patients, _smallest_class_patients(studies)))
    folds = _fold_of_rows(studies, n_folds, seed)
    n_val = max(1, round(val_fraction * n_folds))
    n_test = max(1, round((1 - train_fraction - val_fraction) * n_folds))
    n_train = n_folds - n_val - n_test
    if n_train < 1:
        raise InputError(f"only {n_patients} patients: too few to form train, val and test splits; add data.")
    names = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    return pd.Series(names[folds], index=studies.index, name="split")


def _smallest_class_patients(studies: pd.DataFrame) -> int:
    counts = studies.groupby("label")["patient_key"].nunique()
    return int(counts.min()) if len(counts) == 2 else int(counts.sum())


def _fold_of_rows(studies: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per row from StratifiedGroupKFold's test folds."""
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.empty(len(studies), dtype=int)
    labels, groups = studies["label"].to_numpy(), studies["patient_key"].to_numpy()
    for fold, (_, test_idx) in enumerate(splitter.split(np.zeros(len(studies)), labels, groups)):
        folds[test_idx] = fold
    return folds


def check_no_leakage(split: pd.DataFrame) -> None:
    """Fail when any patient has studies in more than one split (counts only: keys stay out of messages)."""
    per_patient = split.groupby("patient_key")["split"].nunique()
    leaking = int((per_patient > 1).sum())
    if leaking:
        raise InputError(
            f"{leaking} patient(s) have studies in more than one split; "
            "fix the labels file's split column so each patient is in one split."
        )


def data_counts(split_path: Path) -> pd.DataFrame:
    """Labelled studies, patients and positive studies per split, from split.parquet."""
    split = pd.read_parquet(split_path, columns=["study_key", "patient_key", "label", "split"])
    counts = split.groupby("split").agg(
        studies=("study_key", "nunique"),
        patients=("patient_key", "nunique"),
        positive_studies=("label", "sum"),
    )
    order = [s for s in ("train", "val", "test") if s in counts.index]
    return counts.loc[order].reset_index().rename(columns={"positive_studies": "positive studies"})
