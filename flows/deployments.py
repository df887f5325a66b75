"""The nightly retrain deployment, served by a long-running process: `python -m flows.deployments`.

Run it next to a Prefect server (`prefect server start`, PREFECT_API_URL set): the UI then shows
the `retrain/nightly` deployment with its cron schedule and the typed parameters as a form.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

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


def main(argv: list[str] | None = None) -> None:
    """Serve the nightly deployment until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="The radflow project folder.")
    parser.add_argument("--cron", default=NIGHTLY_CRON, help="When to retrain (cron, server time zone).")
    args = parser.parse_args(argv)
    serve(nightly(args.project, args.cron))


if __name__ == "__main__":
    main()
