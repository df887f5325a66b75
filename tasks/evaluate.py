"""Evaluate stage: operating point on val, test metrics with bootstrap 95% CIs, calibration,
subgroups, robustness, Grad-CAM, DVC metrics/plots and one self-contained HTML report.

Writes under --out (reports/): metrics.json, subgroups.json, robustness.json, plots/{roc,pr,
calibration,confusion}.csv, figures/*.png and report.html.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radflow.config import EvaluateParams, load_section
from radflow.data.dataset import load_split_arrays
from radflow.data.splits import data_counts
from radflow.errors import InputError, user_errors
from radflow.metrics.evaluation import SplitData, evaluate_model
from radflow.metrics.outputs import write_outputs
from radflow.models.checkpoint import load_lineage, load_model
from radflow.models.predict import predict_proba


@dataclass(frozen=True)
class EvaluateResult:
    """The headline numbers and where everything was written."""

    metrics_path: Path
    report_path: Path
    files: list[Path]
    test_auc: float | None
    test_auc_ci: list[float] | None
    threshold: float
    method: str
    n_test: int

    def describe(self) -> str:
        """One line for people."""
        auc = "undefined (one class in test)" if self.test_auc is None else f"{self.test_auc:.4f}"
        ci = f" (95% CI {self.test_auc_ci[0]:.4f} to {self.test_auc_ci[1]:.4f})" if self.test_auc_ci else ""
        return (
            f"evaluate: test AUC {auc}{ci} on {self.n_test} images at threshold {self.threshold:.4g} "
            f"({self.method}, chosen on val) → {self.metrics_path}, report {self.report_path}"
        )


def run(
    params: EvaluateParams, model_path: Path, clean_dir: Path, split_path: Path, out_dir: Path
) -> EvaluateResult:
    """Evaluate models/model.pt on the val and test splits and write every report file."""
    model, config = load_model(model_path)
    val = SplitData(*load_split_arrays(clean_dir, split_path, config, "val"))
    test = SplitData(*load_split_arrays(clean_dir, split_path, config, "test"))
    if len(test.labels) == 0:
        raise InputError(
            f"{split_path} has no test images of modalities {', '.join(config.modalities)}; "
            "check split fractions and train.modalities."
        )

    def predict(images: np.ndarray) -> np.ndarray:
        return predict_proba(model, images, batch_size=params.batch_size)

    evaluation = evaluate_model(params, model, predict, val, test, config.calibration)
    paths = write_outputs(
        evaluation, out_dir, data_counts(split_path), model_info(model_path, config.to_dict())
    )
    return EvaluateResult(
        metrics_path=paths.metrics,
        report_path=paths.report,
        files=paths.all_files(),
        test_auc=evaluation.test["auc"],
        test_auc_ci=evaluation.test["ci95"]["auc"],
        threshold=evaluation.operating_point.threshold,
        method=evaluation.operating_point.method,
        n_test=evaluation.test["n"],
    )


def model_info(model_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Model lineage for the report: file digest, network config and training lineage (no paths, no PHI)."""
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()[:16]
    info: dict[str, Any] = {"model file sha256 (first 16)": digest}
    info.update({f"config.{k}": _plain(v) for k, v in config.items()})
    info.update({f"lineage.{k}": _plain(v) for k, v in load_lineage(model_path).items()})
    return info


def _plain(value: Any) -> Any:
    """Lists as '0, 2'; an empty one as 'none' (no test-time flips), not a blank cell that looks lost."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "none"
    return value


def main(argv: list[str] | None = None) -> None:
    """DVC entry point: python -m tasks.evaluate --model ... --clean ... --split ... --out ..."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="models/model.pt")
    parser.add_argument("--clean", type=Path, required=True, help="data/clean (series.parquet + arrays)")
    parser.add_argument("--split", type=Path, required=True, help="data/split/split.parquet")
    parser.add_argument("--out", type=Path, required=True, help="reports folder")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    with user_errors():
        params = (
            load_section("evaluate", EvaluateParams, args.params)
            if args.params.exists()
            else EvaluateParams()
        )
        result = run(params, args.model, args.clean, args.split, args.out)
    print(result.describe())


if __name__ == "__main__":
    main()
