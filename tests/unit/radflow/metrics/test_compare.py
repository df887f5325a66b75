"""The paired AUC difference: zero for one model against itself, signed, and paired by patient."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radflow.metrics.compare import paired_auc_difference


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = y + rng.normal(0, 0.6, n)
    weak = y + rng.normal(0, 1.5, n)
    return y, good, weak


def test_a_model_against_itself_differs_by_exactly_zero() -> None:
    y, good, _ = _data(200)
    diff = paired_auc_difference(y, good, good.copy(), None, 100, seed=0)
    assert diff.difference == 0.0 and diff.ci95 == [0.0, 0.0]


def test_the_difference_is_signed_and_its_interval_excludes_zero_when_one_model_is_clearly_better() -> None:
    y, good, weak = _data(400)
    diff = paired_auc_difference(y, good, weak, None, 300, seed=1)
    assert diff.candidate == pytest.approx(roc_auc_score(y, good))
    assert diff.reference == pytest.approx(roc_auc_score(y, weak))
    assert diff.difference == pytest.approx(diff.candidate - diff.reference) and diff.difference > 0.1
    assert diff.ci95 is not None and 0 < diff.ci95[0] <= diff.difference <= diff.ci95[1]
    reverse = paired_auc_difference(y, weak, good, None, 300, seed=1)
    assert reverse.difference == pytest.approx(-diff.difference)
    assert reverse.ci95 == pytest.approx([-diff.ci95[1], -diff.ci95[0]])


def test_pairing_makes_the_interval_narrower_than_the_two_aucs_alone() -> None:
    """Two close retrained models: their difference is far better known than either AUC."""
    rng = np.random.default_rng(3)
    y, base, _ = _data(300, seed=3)
    other = base + rng.normal(0, 0.1, base.size)
    diff = paired_auc_difference(y, other, base, None, 300, seed=0)
    assert diff.ci95 is not None and diff.ci95[1] - diff.ci95[0] < 0.03


def test_patients_are_resampled_whole_and_one_class_leaves_the_difference_undefined() -> None:
    y, good, weak = _data(120)
    patients = np.repeat(np.arange(40), 3)
    diff = paired_auc_difference(y, good, weak, patients, 50, seed=0)
    assert diff.unit == "patient" and diff.n == 120
    flat = paired_auc_difference(np.ones(10), np.arange(10.0), np.arange(10.0), None, 50, seed=0)
    assert flat.difference is None and flat.ci95 is None
    with pytest.raises(ValueError, match="same images"):
        paired_auc_difference(y, good, weak[:-1], None, 10, seed=0)
