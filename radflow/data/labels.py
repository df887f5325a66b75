"""labels.csv (keyed by StudyInstanceUID) read, validated and pseudonymised onto study keys."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from radflow.dicom.deid import pseudonym
from radflow.errors import InputError

SPLITS = ("train", "val", "test")


def study_key(uid: str, key: bytes) -> str:
    """The pseudonymous study key of a raw StudyInstanceUID; ingest/clean and split must both use this."""
    return pseudonym("study", str(uid).strip().strip(" \x00"), key)


def read_labels(path: Path, key: bytes, need_split: bool = False) -> pd.DataFrame:
    """labels.csv as (study_key, label[, split]); raw UIDs are dropped as soon as they are hashed."""
    if not path.is_file():
        raise InputError(f"labels file {path} not found; set split.labels in params.yaml to your labels.csv.")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"StudyInstanceUID", "label"} - set(raw.columns)
    if need_split:
        missing |= {"split"} - set(raw.columns)
    if missing:
        names = ", ".join(sorted(missing))
        raise InputError(f"{path} lacks the column(s) {names}; add them or use split.strategy grouped.")
    out = pd.DataFrame({"study_key": [study_key(u, key) for u in raw["StudyInstanceUID"]]})
    out["label"] = _labels(raw["label"], path)
    if "split" in raw.columns:
        out["split"] = raw["split"].str.strip().str.lower()
        if need_split and not out["split"].isin(SPLITS).all():
            bad = int((~out["split"].isin(SPLITS)).sum())
            raise InputError(f"{path}: {bad} row(s) have a split other than train, val or test; fix them.")
    return _unique_studies(out, path)


def _labels(column: pd.Series, path: Path) -> pd.Series:
    """0/1 integers; anything else is an input error (counted, never echoed: it could be PHI)."""
    values = column.str.strip()
    ok = values.isin(["0", "1"])
    if not ok.all():
        raise InputError(f"{path}: {int((~ok).sum())} label(s) are not 0 or 1; use 0/1 in the label column.")
    return values.astype(int)


def _unique_studies(labels: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One row per study; a study listed twice with different labels or splits is an error."""
    conflicts = labels.drop_duplicates().duplicated("study_key").sum()
    if conflicts:
        raise InputError(
            f"{path}: {int(conflicts)} study(ies) appear twice with different values; keep one row."
        )
    return labels.drop_duplicates("study_key").reset_index(drop=True)
