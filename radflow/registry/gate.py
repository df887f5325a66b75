"""The promotion gate: absolute floors on the test metrics, then no worse than the model in the stage.

Every check is recorded with what was required and what was achieved, passed or not, so the model
card shows why a version was or was not promoted. A check that cannot be made (a metric undefined,
the production model's weights missing) fails: the gate never promotes on missing evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from radflow.config import RegisterParams
from radflow.metrics.compare import AucDifference

FLOORS = (("auc", "min_auc"), ("sensitivity", "min_sensitivity"), ("specificity", "min_specificity"))


@dataclass(frozen=True)
class Check:
    """One condition of the gate."""

    name: str
    required: str
    achieved: str
    passed: bool


@dataclass
class Gate:
    """Every check of one candidate, and the comparison with the model in the stage (if any)."""

    checks: list[Check] = field(default_factory=list)
    reference: str | None = None  # the version in the stage it was compared with
    comparison: AucDifference | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[str]:
        """`test auc 0.712 < 0.750`-style phrases, one per failed check."""
        return [f"{c.name}: {c.achieved} (required {c.required})" for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "reference": self.reference,
            "comparison": asdict(self.comparison) if self.comparison else None,
        }


def floor_checks(test: dict[str, Any], params: RegisterParams) -> list[Check]:
    """Test AUC, sensitivity and specificity (at the operating point chosen on val) against the floors."""
    checks = []
    for metric, knob in FLOORS:
        floor = float(getattr(params, knob))
        if floor == 0 and metric != "auc":
            continue  # a floor of 0 is no requirement; AUC is always shown
        raw = test.get(metric)
        value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
        defined = value is not None
        checks.append(
            Check(
                name=f"test {metric}",
                required=f">= {floor:.3f} (register.{knob})",
                achieved=f"{value:.3f}" if defined else "undefined",
                passed=value is not None and value >= floor,
            )
        )
    return checks


def comparison_check(diff: AucDifference, reference: str, params: RegisterParams) -> Check:
    """Candidate AUC no more than register.max_auc_drop below the reference's, on the same images."""
    required = f">= {-params.max_auc_drop:+.3f} (register.max_auc_drop)"
    if diff.difference is None:
        return Check(f"AUC minus {reference}'s", required, "undefined (one class in test)", False)
    ci = f" (95% CI {diff.ci95[0]:+.3f} to {diff.ci95[1]:+.3f})" if diff.ci95 else ""
    return Check(
        name=f"AUC minus {reference}'s",
        required=required,
        achieved=f"{diff.difference:+.3f}{ci} on {diff.n} test images",
        passed=diff.difference >= -params.max_auc_drop,
    )


def unscorable_check(reference: str, why: str) -> Check:
    """The comparison could not be made: a failed check that says why."""
    return Check(f"AUC minus {reference}'s", "both models scored on this run's test split", why, False)
