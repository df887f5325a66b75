"""Register step: the run's model becomes a registered version with a model card, promoted when it
passes the gate (floors on the test metrics, and no worse than the model in the stage on this run's
test split).

Not a DVC stage: it reads and writes the git registry (GTO tags), which DVC neither caches nor
versions. The retrain flow calls `run` after the DVC stages and before the run's lineage commit,
so the card and the gate's record are part of the commit the version tags, then `record` to tag it.
`python -m tasks.register` shows what the gate would decide for the workspace as it is (a dry
run: it writes reports/model_card.md and reports/registration.json, and no tag).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from radflow.config import RegisterParams, load_section
from radflow.errors import InputError, user_errors
from radflow.registry import CARD_FILE, Assessment, Registration, assess, record
from radflow.registry.versions import head, is_git_repo

__all__ = ["Assessment", "Registration", "record", "run"]


def run(project: Path, workdir: Path, params_file: Path | None = None) -> Assessment:
    """Assess WORKDIR's model for PROJECT's registry and write its card and gate record."""
    if not is_git_repo(project):
        raise InputError(f"{project} is not a git repository; the model registry is git tags (git init).")
    params = load_section("register", RegisterParams, params_file or workdir / "params.yaml")
    return assess(project, workdir, params, head(project))


def main(argv: list[str] | None = None) -> None:
    """python -m tasks.register: the gate's decision for the workspace's model, without tagging."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="project folder (the git repository)")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml (default: the project's)")
    args = parser.parse_args(argv)
    with user_errors():
        assessment = run(args.project.resolve(), args.project.resolve(), args.params)
    print(f"register (dry run): {assessment.describe()}")
    if assessment.version is not None:
        print(f"model card: {CARD_FILE}; `radflow run` registers and tags it")


if __name__ == "__main__":
    main()
