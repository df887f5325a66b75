"""Predict: score a folder of new DICOM studies with a registered model version (default: the one in
prod), through the same ingest and clean as training, at the operating point that version was
evaluated at.

Writes under --out: ingest/ and clean/ (every input file accounted for in clean/dispositions.parquet
and quarantine.html), predictions.csv (one row per accepted series: pseudonymised keys, probability,
call) and prediction.json (which version, which threshold, counts). Keys are the pipeline's
pseudonyms; `radflow locate OUT/ingest PATH` finds the real file of a row's series.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.config import Params, load_params
from radflow.data.dataset import input_rows, load_images
from radflow.data.preprocess import standardise
from radflow.errors import InputError, user_errors
from radflow.models.checkpoint import load_model
from radflow.models.predict import predict_proba
from radflow.registry import METRICS_FILE
from radflow.registry.versions import is_git_repo, model_bytes, resolve, show_file
from tasks import clean, ingest

COLUMNS = ["study_key", "series_key", "patient_key", "modality", "probability", "call", "note"]


@dataclass(frozen=True)
class PredictResult:
    """Which model scored what, and where the table is."""

    predictions: Path
    model: str
    version: str
    threshold: float
    files: int
    series: int
    scored: int
    positive: int

    def describe(self) -> str:
        return (
            f"predict: {self.files} files → {self.series} series, {self.scored} scored by {self.model}@"
            f"{self.version} at threshold {self.threshold:.4g}: {self.positive} positive → {self.predictions}"
        )


def run(
    project: Path,
    source: Path,
    out: Path,
    version: str | None = None,
    stage: str | None = None,
    params: Params | None = None,
) -> PredictResult:
    """Ingest and clean SOURCE into OUT, then score every series the version takes as input."""
    params = params or load_params(project / "params.yaml")
    if not is_git_repo(project):
        raise InputError(f"{project} is not a git repository, so it has no model registry.")
    name = params.register.model
    found = resolve(project, name, version, stage or params.register.stage)
    threshold = _threshold(project, found.commit, f"{name}@{found.name}")
    weights = model_bytes(project, found.commit)
    scanned = ingest.run(params.ingest.model_copy(update={"source": source}), source, out / "ingest")
    clean.run(params.clean, out / "ingest", out / "clean")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.pt").write_bytes(weights)
        model, config = load_model(Path(tmp) / "model.pt")
    rows = input_rows(out / "clean", config.modalities, config.spatial_dims)
    images = standardise(load_images(out / "clean", rows, config, desc="predict"), config)
    probs = predict_proba(model, images) if len(rows) else np.empty(0)
    table = _table(out / "clean", rows, probs, threshold)
    table.to_csv(out / "predictions.csv", index=False)
    scored = table["probability"].notna()
    result = PredictResult(
        predictions=out / "predictions.csv",
        model=name,
        version=found.name,
        threshold=threshold,
        files=scanned.files,
        series=len(table),
        scored=int(scored.sum()),
        positive=int((table["call"] == "positive").sum()),
    )
    summary = {"model": name, "version": found.name, "commit": found.commit, "threshold": threshold}
    summary |= {
        "files": result.files,
        "series": result.series,
        "scored": result.scored,
        "positive": result.positive,
    }
    (out / "prediction.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def _threshold(project: Path, commit: str, label: str) -> float:
    """The operating point the version was evaluated at (chosen on its validation split)."""
    metrics = json.loads(show_file(project, commit, METRICS_FILE.as_posix()) or "{}")
    threshold = (metrics.get("operating_point") or {}).get("threshold")
    if not isinstance(threshold, int | float):
        raise InputError(f"{label} records no operating point in {METRICS_FILE}; register a newer version.")
    return float(threshold)


def _table(clean_dir: Path, rows: pd.DataFrame, probs: np.ndarray, threshold: float) -> pd.DataFrame:
    """Every accepted series: scored ones with probability and call, the others with why not."""
    series = pd.read_parquet(
        clean_dir / "series.parquet", columns=["study_key", "series_key", "patient_key", "modality"]
    )
    scores = pd.DataFrame({"series_key": rows["series_key"], "probability": probs})
    table = series.merge(scores, on="series_key", how="left")
    table["call"] = np.where(
        table["probability"].isna(), "", np.where(table["probability"] >= threshold, "positive", "negative")
    )
    table["note"] = np.where(
        table["probability"].isna(), "not an input of this model (modality or dimensions)", ""
    )
    return table.reindex(columns=COLUMNS).sort_values(["study_key", "series_key"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    """python -m tasks.predict SOURCE --out OUT [--version V | --stage S]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of DICOM studies to score")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for ingest/, clean/ and predictions.csv"
    )
    parser.add_argument(
        "--version", default=None, help="registered version, e.g. v0.3.0 (default: the stage's)"
    )
    parser.add_argument("--stage", default=None, help="stage whose version scores (default: register.stage)")
    parser.add_argument("--project", type=Path, default=Path("."), help="the radflow project (its registry)")
    args = parser.parse_args(argv)
    with user_errors():
        result = run(args.project.resolve(), args.source, args.out, args.version, args.stage)
    print(result.describe())


if __name__ == "__main__":
    main()
