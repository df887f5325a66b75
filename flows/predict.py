"""The `predict` flow: score a folder of new studies with the model version in prod (or a named one).

The work is `tasks.predict.run` (ingest, clean, score); the flow adds a Prefect UI form, a counts
table and a one-line summary as artifacts. Nothing identifying is published: counts and versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed, State

from radflow.errors import RadflowError
from tasks.predict import PredictResult
from tasks.predict import run as run_predict


@flow(name="predict", validate_parameters=True)
def predict(
    source: str, out: str, version: str | None = None, stage: str | None = None, project: str = "."
) -> PredictResult | State[Any]:
    """Score SOURCE's studies into OUT/predictions.csv.

    Args:
        source: Folder of DICOM studies, on the machine that runs the flow.
        out: Folder for ingest/, clean/, predictions.csv and prediction.json.
        version: A registered version (e.g. v0.3.0); empty: the version in `stage`.
        stage: The stage whose version scores (default: params register.stage, normally prod).
        project: The radflow project whose registry holds the model.
    """
    try:
        result = run_predict(Path(project).resolve(), Path(source), Path(out), version or None, stage or None)
    except RadflowError as err:
        get_run_logger().error(str(err))
        return Failed(message=str(err))
    get_run_logger().info(result.describe())
    rows: list[dict[str, Any]] = [
        {"what": "model", "value": f"{result.model}@{result.version}"},
        {"what": "threshold", "value": f"{result.threshold:.4g}"},
        {"what": "files", "value": result.files},
        {"what": "series", "value": result.series},
        {"what": "scored", "value": result.scored},
        {"what": "positive calls", "value": result.positive},
    ]
    create_table_artifact(rows, key="predict-summary", description=result.describe())
    return result
