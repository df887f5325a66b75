"""The deployments, served by a long-running process: `python -m flows.deployments` (`radflow serve`).

Run it next to a Prefect server (`prefect server start`, PREFECT_API_URL set): the UI then shows
`retrain/nightly` with its cron schedule and its typed parameters as a form, and `predict/on-demand`
(no schedule: someone clicks Run with a folder of new studies).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.predict import predict
from flows.retrain import retrain

NIGHTLY_CRON = "0 2 * * *"  # 02:00 every night, when the scanners' PACS exports are quiet


def nightly(project: Path, cron: str = NIGHTLY_CRON) -> RunnerDeployment:
    """The retrain flow on PROJECT, on a cron schedule, one run at a time."""
    deployment = retrain.to_deployment(
        name="nightly",
        cron=cron,
        parameters={"project": str(project.resolve())},
        description="Retrain on the project's DICOM source; DVC reruns only what changed.",
        tags=["radflow", "retrain"],
        concurrency_limit=1,  # runs of one project never overlap (the flow also holds a file lock)
    )
    assert isinstance(deployment, RunnerDeployment)  # to_deployment is sync outside an event loop
    return deployment


def on_demand(project: Path) -> RunnerDeployment:
    """The predict flow on PROJECT's registry, run from the UI with a source and an output folder."""
    deployment = predict.to_deployment(
        name="on-demand",
        parameters={"project": str(project.resolve())},
        description="Score a folder of new studies with the model version in prod (or a named version).",
        tags=["radflow", "predict"],
    )
    assert isinstance(deployment, RunnerDeployment)
    return deployment


def main(argv: list[str] | None = None) -> None:
    """Serve the deployments until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="The radflow project folder.")
    parser.add_argument("--cron", default=NIGHTLY_CRON, help="When to retrain (cron, server time zone).")
    args = parser.parse_args(argv)
    serve(nightly(args.project, args.cron), on_demand(args.project))


if __name__ == "__main__":
    main()
