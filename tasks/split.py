"""Split stage: labels joined to studies with accepted series, assigned to train/val/test by patient.

Writes data/split/split.parquet (study_key, patient_key, label, split) and fails when a patient
would appear in two splits.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from radflow.config import SplitParams, load_section
from radflow.data.labels import read_labels
from radflow.data.splits import check_no_leakage, grouped_split
from radflow.dicom.deid import load_key
from radflow.errors import InputError, user_errors

COLUMNS = ["study_key", "patient_key", "label", "split"]


@dataclass(frozen=True)
class SplitResult:
    """Where split.parquet went and how many studies each split holds."""

    path: Path
    counts: dict[str, int]
    unlabelled_studies: int
    labels_without_study: int

    def describe(self) -> str:
        """One line for people: counts only, never identifiers."""
        parts = ", ".join(f"{name} {self.counts.get(name, 0)}" for name in ("train", "val", "test"))
        return (
            f"split: {parts} studies → {self.path}; {self.unlabelled_studies} studies had no label, "
            f"{self.labels_without_study} labels matched no accepted study."
        )


def run(params: SplitParams, clean_dir: Path, labels_csv: Path, out: Path) -> SplitResult:
    """Join labels to accepted studies, assign splits by params.strategy, check leakage, write the table."""
    studies = _accepted_studies(clean_dir)
    labels = read_labels(labels_csv, load_key(), need_split=params.strategy == "predefined")
    joined = studies.merge(labels, on="study_key", how="inner")
    if joined.empty:
        raise InputError(
            f"no study in {labels_csv} matches an accepted study in {clean_dir}; check the labels file."
        )
    if params.strategy == "grouped":
        joined["split"] = grouped_split(joined, params.train_fraction, params.val_fraction, params.seed)
    check_no_leakage(joined)
    table = joined[COLUMNS].sort_values(["split", "study_key"]).reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "split.parquet"
    table.to_parquet(path, index=False)
    return SplitResult(
        path=path,
        counts={str(k): int(v) for k, v in table["split"].value_counts().items()},
        unlabelled_studies=int((~studies["study_key"].isin(labels["study_key"])).sum()),
        labels_without_study=int((~labels["study_key"].isin(studies["study_key"])).sum()),
    )


def _accepted_studies(clean_dir: Path) -> pd.DataFrame:
    """One row per study with at least one accepted series: study_key, patient_key."""
    path = clean_dir / "series.parquet"
    if not path.is_file():
        raise InputError(f"{path} not found; run the clean stage first (dvc repro clean).")
    series = pd.read_parquet(path, columns=["study_key", "patient_key"])
    studies = series.drop_duplicates("study_key")
    if studies.empty:
        raise InputError(f"{path} lists no accepted series; check the clean stage's quarantine.csv.")
    return studies.reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    """DVC entry point: python -m tasks.split --clean data/clean --labels labels.csv --out data/split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="The clean stage's output folder.")
    parser.add_argument("--labels", type=Path, required=True, help="labels.csv keyed by StudyInstanceUID.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for split.parquet.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml to read.")
    args = parser.parse_args(argv)
    with user_errors():
        result = run(load_section("split", SplitParams, args.params), args.clean, args.labels, args.out)
    print(result.describe())


if __name__ == "__main__":
    main()
