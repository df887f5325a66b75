"""A run's place and record: the isolated worktree for a run with overrides, and its lineage commit."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from flows.pipeline import Pipeline, read_pipeline, stage_environment
from flows.workspace import (
    WorkspaceError,
    commit_workspace,
    link_inputs,
    open_worktree,
    record_run,
    share_cache,
)
from radflow.config import apply_overrides
from radflow.registry import CARD_FILE, RECORD_FILE
from radflow.registry.versions import head, is_git_repo

Log = Callable[[str], None]


def isolated_workdir(project: Path, run_id: str, overrides: dict[str, Any], log: Log) -> Path:
    """A worktree holding the workspace as it is, with OVERRIDES in its params.yaml and the cache shared."""
    if not is_git_repo(project):
        why = "a run with overrides needs one to keep params.yaml untouched (git init)"
        raise WorkspaceError(f"{project.name} is not a git repository; {why}.")
    pipeline = read_pipeline(project)
    snapshot = commit_workspace(
        project, head(project), f"radflow run {run_id}: workspace", extra=[], exclude=_data_paths(pipeline)
    )
    worktree = open_worktree(project, run_id, snapshot)
    raw = yaml.safe_load((project / "params.yaml").read_text()) or {}
    (worktree / "params.yaml").write_text(yaml.safe_dump(apply_overrides(raw, overrides), sort_keys=False))
    share_cache(worktree, pipeline.cache_dir)
    linked = link_inputs(project, worktree, read_pipeline(worktree).external_inputs())
    share_deid_key(project, worktree)
    _copy_uncached_outputs(project, worktree, pipeline)
    where = worktree.relative_to(project)
    log(f"run {run_id} isolated in {where} (inputs linked: {', '.join(linked) or 'none'})")
    _checkout(worktree, log)
    return worktree


def record_lineage(project: Path, workdir: Path, run_id: str, message: str) -> str | None:
    """Commit the run's code, params.yaml, dvc.lock and metrics to refs/radflow/runs/RUN_ID."""
    if not is_git_repo(project):
        return None
    pipeline = read_pipeline(workdir)
    extra = ["params.yaml", "dvc.lock", "dvc.yaml", *(o for s in pipeline.stages for o in s.uncached_outputs)]
    extra += [CARD_FILE.as_posix(), RECORD_FILE.as_posix()]  # written by registration, outside DVC
    commit = commit_workspace(workdir, head(project), message, extra=extra, exclude=_data_paths(pipeline))
    return record_run(project, run_id, commit)


def share_deid_key(project: Path, worktree: Path) -> None:
    """Give the worktree the project's de-identification key, so pseudonyms match across runs."""
    from radflow.dicom.deid import KEY_ENV, KEY_FILE, load_key

    if os.environ.get(KEY_ENV):
        return  # the key comes from the environment, which the stages inherit
    with contextlib.chdir(project):
        load_key()  # creates the project's key file on a first run, exactly as a stage would
    (worktree / KEY_FILE).parent.mkdir(parents=True, exist_ok=True)
    (worktree / KEY_FILE).symlink_to((project / KEY_FILE).resolve())


def _copy_uncached_outputs(project: Path, worktree: Path, pipeline: Pipeline) -> None:
    """Bring the metrics and plots (`cache: false`, so no `dvc checkout`) that dvc.lock vouches for."""
    for rel in (out for stage in pipeline.stages for out in stage.uncached_outputs):
        source, target = project / rel, worktree / rel
        if target.exists() or not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def _checkout(worktree: Path, log: Log) -> None:
    """Restore the outputs dvc.lock records from the shared cache, so unchanged stages are skipped."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "checkout", "--allow-missing", "--quiet"],
        cwd=worktree,
        env=stage_environment(),
        capture_output=True,
        text=True,
    )
    if proc.returncode:  # not fatal: a stage whose outputs are missing simply runs again
        log(f"dvc checkout in the run's worktree reported: {proc.stderr.strip().splitlines()[-1:]}")


def _data_paths(pipeline: Pipeline) -> list[str]:
    """Pipeline inputs and outputs: data, never committed to git."""
    return [*pipeline.external_inputs(), *(o for s in pipeline.stages for o in s.outputs)]
