"""The promotion gate's checks: floors on test metrics, the comparison, and failing closed."""

from __future__ import annotations

from radflow.config import RegisterParams
from radflow.metrics.compare import AucDifference
from radflow.registry.gate import Gate, comparison_check, floor_checks, unscorable_check


def _diff(difference: float | None) -> AucDifference:
    return AucDifference(
        0.9, None if difference is None else 0.9 - difference, difference, None, 50, 20, "image", 0
    )


def test_floors_check_auc_always_and_other_metrics_only_when_set() -> None:
    test = {"auc": 0.81, "sensitivity": 0.70, "specificity": 0.95}
    assert [c.name for c in floor_checks(test, RegisterParams())] == ["test auc"]
    checks = floor_checks(test, RegisterParams(min_auc=0.8, min_sensitivity=0.8, min_specificity=0.9))
    assert [(c.name, c.passed) for c in checks] == [
        ("test auc", True),
        ("test sensitivity", False),
        ("test specificity", True),
    ]
    assert checks[1].achieved == "0.700" and checks[1].required == ">= 0.800 (register.min_sensitivity)"


def test_an_undefined_metric_fails_its_floor() -> None:
    (check,) = floor_checks({"auc": None}, RegisterParams(min_auc=0.0))
    assert not check.passed and check.achieved == "undefined"


def test_the_comparison_allows_at_most_the_configured_drop() -> None:
    params = RegisterParams(max_auc_drop=0.02)
    assert comparison_check(_diff(-0.019), "v0.3.0", params).passed
    assert not comparison_check(_diff(-0.021), "v0.3.0", params).passed
    assert not comparison_check(_diff(None), "v0.3.0", params).passed


def test_a_gate_passes_only_with_checks_and_all_of_them_passed() -> None:
    assert not Gate().passed
    ok = floor_checks({"auc": 0.9}, RegisterParams())
    assert Gate(checks=ok).passed
    failed = Gate(checks=[*ok, unscorable_check("v0.1.0", "not scored: weights missing")])
    assert not failed.passed
    assert failed.failures() == [
        "AUC minus v0.1.0's: not scored: weights missing "
        "(required both models scored on this run's test split)"
    ]
