"""Bootstrap CIs: contain the estimate, narrow with n, are seeded, and resample whole patients."""

from __future__ import annotations

import numpy as np

from radflow.metrics.binary import classification_metrics
from radflow.metrics.bootstrap import bootstrap_intervals, resampling_unit


def _scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(0.5 + 0.25 * (2 * y - 1) + rng.normal(0, 0.25, n), 0, 1)


def test_intervals_contain_the_point_estimate() -> None:
    y, p = _scores(300)
    point = classification_metrics(y, p, 0.5)
    ci = bootstrap_intervals(y, p, 0.5, None, 200, seed=1).ci95
    for metric, value in point.items():
        lo, hi = ci[metric]
        assert lo <= value <= hi, metric
        assert hi - lo > 0


def test_intervals_narrow_as_n_grows() -> None:
    small = bootstrap_intervals(*_scores(60), 0.5, None, 150, seed=0).ci95
    large = bootstrap_intervals(*_scores(1000), 0.5, None, 150, seed=0).ci95
    for metric in ("auc", "accuracy", "sensitivity", "specificity"):
        assert large[metric][1] - large[metric][0] < 0.5 * (small[metric][1] - small[metric][0]), metric


def test_same_seed_same_intervals_and_zero_resamples_disable_them() -> None:
    y, p = _scores(100)
    assert (
        bootstrap_intervals(y, p, 0.5, None, 50, 7).ci95 == bootstrap_intervals(y, p, 0.5, None, 50, 7).ci95
    )
    off = bootstrap_intervals(y, p, 0.5, None, 0, 7)
    assert all(v is None for v in off.ci95.values())


def test_patients_with_several_images_are_resampled_as_clusters() -> None:
    assert resampling_unit(np.array(["a", "b", "c"])) == "image"
    assert resampling_unit(np.array(["a", "a", "b"])) == "patient"
    # 40 patients x 10 identical images: by image the data look like 400 independent cases and the
    # interval is far too narrow; by patient it reflects the 40 real units.
    y1, p1 = _scores(40, seed=3)
    y, p = np.repeat(y1, 10), np.repeat(p1, 10)
    groups = np.repeat(np.arange(40), 10)
    by_patient = bootstrap_intervals(y, p, 0.5, groups, 150, 0)
    by_image = bootstrap_intervals(y, p, 0.5, None, 150, 0)
    assert by_patient.unit == "patient" and by_patient.n_units == 40
    width = lambda iv: iv.ci95["auc"][1] - iv.ci95["auc"][0]  # noqa: E731
    assert width(by_patient) > 2 * width(by_image)


def test_a_metric_never_defined_gets_no_interval() -> None:
    y = np.zeros(50, dtype=int)  # no positives: AUC and sensitivity undefined in every resample
    p = np.linspace(0, 1, 50)
    ci = bootstrap_intervals(y, p, 0.5, None, 50, 0).ci95
    assert ci["auc"] is None and ci["sensitivity"] is None
    assert ci["specificity"] is not None
