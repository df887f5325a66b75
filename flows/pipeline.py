"""The DVC side of a run: which stages exist, in what order, and running one with `dvc repro`.

Nothing here imports Prefect: a line callback carries DVC's output to whoever listens.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from radflow.errors import ConfigError

Outcome = Literal["ran", "skipped", "restored", "failed"]

_RAN = re.compile(r"^Running stage '(?P<stage>[^']+)'")
_SKIPPED = re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping")
_RESTORED = re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run")
_USER_ERROR = re.compile(r"^error: (?P<sentence>.+)$")
_DVC_ERROR = re.compile(r"^ERROR: (?P<sentence>.+)$")
# DVC's after-run hints (git add dvc.lock, autostage, dvc push): advice for an interactive shell, noise
# in a run's log, and wrong for a run in its own worktree.
_HINTS = (
    "To track the changes with git",
    "git add ",
    "To enable auto staging",
    "dvc config core.autostage",
    "Use `dvc push`",
)


@dataclass(frozen=True)
class Stage:
    """One DVC pipeline stage as the flow needs it."""

    name: str  # the address `dvc repro` takes
    inputs: tuple[str, ...]  # file/folder deps, relative to the project root
    outputs: tuple[str, ...]
    uncached_outputs: tuple[str, ...]  # metrics/plots kept in git rather than in the DVC cache


@dataclass(frozen=True)
class Pipeline:
    """The stages of a DVC project in an order that respects their dependencies."""

    root: Path
    stages: tuple[Stage, ...]
    cache_dir: Path

    def external_inputs(self) -> list[str]:
        """Inputs no stage produces (the DICOM folder, labels): they come from outside the pipeline."""
        produced = {out for stage in self.stages for out in stage.outputs}
        inputs = {dep for stage in self.stages for dep in stage.inputs}
        return sorted(dep for dep in inputs if not any(_within(dep, out) for out in produced))


def read_pipeline(root: Path) -> Pipeline:
    """Read dvc.yaml (with params interpolated) through DVC itself, stages in dependency order."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root = root.resolve()
    try:
        with warnings.catch_warnings(), Repo(str(root)) as repo:
            warnings.simplefilter("ignore", DeprecationWarning)  # DVC's internals, not ours to fix
            return _pipeline(repo, root)
    except DvcException as err:
        why = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise ConfigError(f"DVC cannot read the pipeline in {root.name}: {why}; fix dvc.yaml.") from None


def _pipeline(repo: Any, root: Path) -> Pipeline:
    """The pipeline stages of an open DVC repo, dependencies first, in dvc.yaml order where free."""
    import networkx as nx
    from dvc.dependency.param import ParamsDependency
    from dvc.stage import PipelineStage

    graph = repo.index.graph.reverse()  # DVC's edges point from a stage to what it needs
    declared = {stage: i for i, stage in enumerate(repo.index.stages)}
    ordered = nx.lexicographical_topological_sort(graph, key=lambda s: f"{declared.get(s, 0):06d}")
    stages = tuple(
        Stage(
            name=_address(root, stage.path, stage.name),
            inputs=tuple(_rel(root, d.fs_path) for d in stage.deps if not isinstance(d, ParamsDependency)),
            outputs=tuple(_rel(root, o.fs_path) for o in stage.outs),
            uncached_outputs=tuple(_rel(root, o.fs_path) for o in stage.outs if not o.use_cache),
        )
        for stage in ordered
        if isinstance(stage, PipelineStage)
    )
    cache_dir = Path(repo.cache.local_cache_dir)
    return Pipeline(root=root, stages=stages, cache_dir=cache_dir)


@dataclass
class StageRun:
    """What one `dvc repro --single-item` did."""

    stage: str
    outcome: Outcome = "skipped"
    seconds: float = 0.0
    exit_code: int = 0
    error: str = ""
    lines: list[str] = field(default_factory=list, repr=False)


def repro_stage(
    workdir: Path, stage: str, force: bool = False, on_line: Callable[[str], None] = print
) -> StageRun:
    """Run `dvc repro --single-item STAGE` in WORKDIR, streaming its output; DVC decides if it reruns."""
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", stage, *(["--force"] if force else [])]
    result = StageRun(stage=stage)
    start = time.monotonic()
    with subprocess.Popen(
        cmd, cwd=workdir, env=stage_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:  # universal newlines: a progress bar's \r updates arrive as lines
            line = raw.rstrip()
            if line and not line.lstrip().startswith(_HINTS):
                result.lines.append(line)
                on_line(line)
    result.seconds = time.monotonic() - start
    result.exit_code = proc.returncode
    result.outcome = "failed" if proc.returncode else outcome_of(stage, result.lines)
    if proc.returncode:
        result.error = failure_sentence(stage, proc.returncode, result.lines)
    return result


def up_to_date(workdir: Path, stages: list[str]) -> set[str]:
    """The leading stages DVC's status finds unchanged: `dvc repro` would skip them too.

    One in-process status check instead of one `dvc repro` process per stage keeps a run with nothing
    to do fast; once a stage has changed, every later stage is left to `dvc repro`, since its inputs
    may change with it.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    root = workdir.resolve()
    try:
        with warnings.catch_warnings(), Repo(str(root)) as repo, repo.lock:
            warnings.simplefilter("ignore", DeprecationWarning)
            changed = {
                _address(root, stage.path, stage.name)
                for stage in repo.index.stages
                if isinstance(stage, PipelineStage) and stage.status()
            }
    except DvcException:
        return set()  # let `dvc repro` decide every stage, and say why
    unchanged: set[str] = set()
    for stage in stages:
        if stage in changed:
            break
        unchanged.add(stage)
    return unchanged


def stage_environment() -> dict[str, str]:
    """The environment for DVC and the stages it runs: this interpreter's `python`, unbuffered output."""
    env = dict(os.environ)
    # The stage commands say `python`: make that this virtualenv's, even when it is not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TQDM_MININTERVAL", "5")  # progress bars in a log: one line every few seconds
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def outcome_of(stage: str, lines: list[str]) -> Outcome:
    """Whether DVC ran the stage, found it unchanged, or restored it from its run cache."""
    for line in lines:
        for pattern, outcome in ((_RAN, "ran"), (_RESTORED, "restored"), (_SKIPPED, "skipped")):
            match = pattern.match(line)
            if match and match["stage"] == stage:
                return outcome  # type: ignore[return-value]
    return "skipped"


def failure_sentence(stage: str, exit_code: int, lines: list[str]) -> str:
    """One sentence for a failed stage: the stage's own error sentence when it printed one."""
    for pattern in (_USER_ERROR, _DVC_ERROR):
        found = [m["sentence"] for line in lines if (m := pattern.match(line))]
        if found:
            return f"stage '{stage}' failed: {found[-1].rstrip('.')}."
    return f"stage '{stage}' failed with exit code {exit_code}; its output is in the run's log."


def _address(root: Path, dvcfile: str, name: str) -> str:
    """`train` for the root dvc.yaml, `sub/dvc.yaml:train` for a nested one (what `dvc repro` takes)."""
    where = Path(dvcfile).relative_to(root).as_posix()
    return name if where == "dvc.yaml" else f"{where}:{name}"


def _rel(root: Path, path: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path  # outside the project (an absolute DICOM folder): left as it is


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")
