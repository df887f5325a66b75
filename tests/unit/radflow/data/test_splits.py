"""Patient-grouped stratified assignment and the leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.data.splits import check_no_leakage, grouped_split
from radflow.errors import InputError


def _studies(n_patients: int, per_patient: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"pt-{i}" for i in range(n_patients)], per_patient)
    return pd.DataFrame({"patient_key": patients, "label": rng.integers(0, 2, len(patients))})


def test_grouped_split_is_patient_disjoint_proportional_and_seeded() -> None:
    studies = _studies(200)
    split = grouped_split(studies, 0.6, 0.2, seed=1)
    assert studies.assign(split=split).groupby("patient_key")["split"].nunique().max() == 1
    shares = split.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.05) and shares["test"] == pytest.approx(0.2, abs=0.05)
    rates = studies.groupby(split)["label"].mean()
    assert rates.max() - rates.min() < 0.1
    assert grouped_split(studies, 0.6, 0.2, seed=1).equals(split)
    assert not grouped_split(studies, 0.6, 0.2, seed=2).equals(split)


def test_grouped_split_with_few_patients_still_fills_every_split() -> None:
    split = grouped_split(_studies(8, per_patient=1, seed=3).assign(label=[0, 1] * 4), 0.6, 0.2, seed=0)
    assert set(split) == {"train", "val", "test"}


def test_leakage_is_reported_as_a_count() -> None:
    table = pd.DataFrame({"patient_key": ["pt-a", "pt-a", "pt-b"], "split": ["train", "test", "val"]})
    with pytest.raises(InputError, match=r"^1 patient\(s\)") as err:
        check_no_leakage(table)
    assert "pt-a" not in str(err.value)
    check_no_leakage(table.iloc[1:])
