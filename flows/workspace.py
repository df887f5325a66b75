"""Where a run happens and how it is recorded, without touching the user's branch, index or files.

A run with overrides happens in its own git worktree under `.radflow/runs/<run-id>/` that shares the
project's DVC cache; every run's lineage (code, params.yaml, dvc.lock, metrics) becomes a commit at
`refs/radflow/runs/<run-id>`, built with a temporary index so nothing of the user's changes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from radflow.errors import ConfigError, RadflowError

RUNS_DIR = Path(".radflow") / "runs"
REF_PREFIX = "refs/radflow/runs/"
LOCK_FILE = Path(".dvc") / "tmp" / "radflow-run.lock"
# Local state and secrets (the de-identification key lives in .radflow/), even where .gitignore forgets.
NEVER_COMMITTED = (".radflow", ".env", ".dvc")
# Untracked files bigger than this stay out of a lineage commit (code and configs are small).
MAX_UNTRACKED_BYTES = 1024 * 1024


class WorkspaceError(RadflowError):
    """git could not do what a run needs (no repository, a broken worktree)."""


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run one git command in ROOT and return its stdout; a failure becomes one sentence."""
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise WorkspaceError(f"git {args[0]} failed in {root.name}: {why.rstrip('.')}.")
    return proc.stdout.strip()


@contextmanager
def run_lock(root: Path, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Serialise runs of one project: two runs never write the same outputs or cache at once."""
    from filelock import FileLock, Timeout

    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        on_wait("another radflow run holds this project; waiting for it to finish")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def commit_workspace(
    root: Path, parent: str | None, message: str, extra: list[str], exclude: list[str]
) -> str:
    """Commit ROOT's files as they are (tracked, small untracked code, EXTRA even if ignored); no ref moves.

    Untracked files under EXCLUDE (pipeline inputs and outputs), large ones and DICOM never enter git:
    patient data belongs in the DVC cache, recorded by hash in dvc.lock.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **_identity(root), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(root, "read-tree", *([parent] if parent else ["--empty"]), env=env)
        git(root, "add", "-u", env=env)
        untracked = [p for p in _untracked(root, env) if _is_code(root / p, p, exclude)]
        forced = [p for p in extra if (root / p).is_file()]
        for batch in (untracked, forced):
            if batch:
                git(root, "add", "-f", "--", *batch, env=env)
        tree = git(root, "write-tree", env=env)
        return git(root, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message, env=env)


def record_run(root: Path, run_id: str, commit: str) -> str:
    """Point refs/radflow/runs/RUN_ID at COMMIT and return the ref."""
    ref = REF_PREFIX + run_id
    git(root, "update-ref", ref, commit)
    return ref


def open_worktree(project: Path, run_id: str, commit: str) -> Path:
    """Check COMMIT out into .radflow/runs/RUN_ID (detached: no branch is created or moved)."""
    _exclude_runs_dir(project)
    path = project / RUNS_DIR / run_id
    path.parent.mkdir(parents=True, exist_ok=True)
    git(project, "worktree", "add", "--detach", str(path), commit)
    return path


def share_cache(worktree: Path, cache_dir: Path) -> None:
    """Make the worktree's DVC use the project's cache, so unchanged stages are restored, not rerun.

    Hard links (where the filesystem has no reflinks) keep a run's data from taking its size again;
    DVC makes cached files read-only and copies a persisted output before a stage rewrites it.
    """
    local = worktree / ".dvc" / "config.local"  # git-ignored by DVC: never part of the lineage
    local.write_text(f"[cache]\n    dir = {cache_dir.resolve()}\n    type = reflink,hardlink,copy\n")


def link_inputs(project: Path, worktree: Path, inputs: list[str]) -> list[str]:
    """Symlink external inputs (DICOM folder, labels) that git does not carry into the worktree."""
    linked = []
    for rel in inputs:
        if Path(rel).is_absolute() or (worktree / rel).exists():
            continue
        if rel.startswith("../"):
            raise ConfigError(f"input '{rel}' lies outside the project; give it as an absolute path.")
        source = project / rel
        if source.exists():
            (worktree / rel).parent.mkdir(parents=True, exist_ok=True)
            (worktree / rel).symlink_to(source.resolve(), target_is_directory=source.is_dir())
            linked.append(rel)
    return linked


def _untracked(root: Path, env: dict[str, str]) -> list[str]:
    out = git(root, "ls-files", "-z", "--others", "--exclude-standard", env=env)
    return [p for p in out.split("\0") if p and (root / p).is_file() and not (root / p).is_symlink()]


def _is_code(path: Path, rel: str, exclude: list[str]) -> bool:
    """Whether an untracked file may enter a lineage commit: small, not data, not DICOM, not a secret."""
    if any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in [*exclude, *NEVER_COMMITTED]):
        return False
    if path.stat().st_size > MAX_UNTRACKED_BYTES or path.suffix.lower() in {".dcm", ".dicom"}:
        return False
    with path.open("rb") as fh:
        return fh.read(132)[128:] != b"DICM"


def _identity(root: Path) -> dict[str, str]:
    """The user's git identity when configured, otherwise radflow's (commit-tree needs one)."""
    proc = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, text=True)
    if proc.stdout.strip():
        return {}
    return {
        f"GIT_{who}_{what}": value
        for who in ("AUTHOR", "COMMITTER")
        for what, value in (("NAME", "radflow"), ("EMAIL", "radflow@localhost"))
    }


def _exclude_runs_dir(project: Path) -> None:
    """Keep run worktrees out of `git status` even where .gitignore does not list .radflow/."""
    probe = subprocess.run(["git", "check-ignore", "-q", str(RUNS_DIR / "x")], cwd=project)
    if probe.returncode == 0:
        return
    exclude = Path(git(project, "rev-parse", "--git-common-dir"))
    exclude = (exclude if exclude.is_absolute() else project / exclude) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as fh:
        fh.write("\n/.radflow/\n")
