"""The model registry: GTO's git tags (MODEL@vX.Y.Z registers a version, MODEL#STAGE#N promotes it).

A version is a tag on a run's lineage commit, which holds params.yaml, dvc.lock and the metrics: the
tag resolves to the exact data (by hash), code, settings and weights. Anything that speaks GTO (its
CLI `gto show`, DVC Studio) reads this registry as it is.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from radflow.errors import InputError

MODEL_OUT = "models/model.pt"
AUTHOR = ("radflow", "radflow@localhost")  # the tagger when git has no user configured


@dataclass(frozen=True)
class Version:
    """One registered version: its semver name and the lineage commit it tags."""

    name: str  # "v1.2.0"
    commit: str


def is_git_repo(root: Path) -> bool:
    """Whether ROOT is the top of a git working tree."""
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == root.resolve()


def head(root: Path) -> str | None:
    """The commit HEAD points at, or None in a repository with no commits yet."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True, text=True
    )
    return proc.stdout.strip() or None


def show_file(root: Path, commit: str, path: str) -> str | None:
    """The text of PATH at COMMIT, or None when it is not there."""
    proc = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def locked_md5(lock_text: str | None, out: str = MODEL_OUT) -> str | None:
    """The md5 dvc.lock records for output OUT (the model file), or None."""
    lock = yaml.safe_load(lock_text or "") or {}
    for stage in (lock.get("stages") or {}).values():
        for entry in stage.get("outs") or []:
            if entry.get("path") == out:
                md5 = entry.get("md5")
                return str(md5) if md5 else None
    return None


@dataclass(frozen=True)
class Snapshot:
    """MODEL's registry as GTO reads it from the tags, read once: one `gto show` serves every question."""

    rows: list[dict[str, Any]]  # `gto show MODEL`: one dict per registered version, newest first

    @property
    def versions(self) -> list[Version]:
        """Every registered version, newest first."""
        return [Version(row["version"], row["commit_hexsha"]) for row in self.rows]

    @property
    def latest(self) -> Version | None:
        """The highest version (semver order, as GTO bumps)."""
        import semver

        found = self.versions
        return max(found, key=lambda v: semver.Version.parse(v.name.removeprefix("v"))) if found else None

    def in_stage(self, stage: str) -> Version | None:
        """The version STAGE points at now: the one whose assignment there `gto show` marks active.

        `is_active` follows the latest assignment (a rollback with `gto assign --force` included;
        GTO's own find_versions_in_stage ignores that); the newest activation wins if several are.
        """
        active = [
            (entry["activated_at"], Version(row["version"], row["commit_hexsha"]))
            for row in self.rows
            for entry in row.get("stages") or []
            if entry.get("stage") == stage and entry.get("is_active")
        ]
        return max(active, key=lambda pair: pair[0])[1] if active else None


def snapshot(root: Path, model: str) -> Snapshot:
    """Read MODEL's registry (empty when MODEL was never registered)."""
    from gto import api
    from gto.exceptions import ArtifactNotFound

    try:
        rows: list[dict[str, Any]] = api.show(str(root), model)
    except ArtifactNotFound:
        rows = []
    return Snapshot([row for row in rows if row.get("commit_hexsha")])


def latest(root: Path, model: str) -> Version | None:
    """The highest registered version of MODEL."""
    return snapshot(root, model).latest


def in_stage(root: Path, model: str, stage: str) -> Version | None:
    """The version of MODEL that STAGE points at now."""
    return snapshot(root, model).in_stage(stage)


def all_versions(root: Path, model: str) -> list[Version]:
    """Every registered version of MODEL, newest first."""
    return snapshot(root, model).versions


def resolve(root: Path, model: str, version: str | None, stage: str) -> Version:
    """VERSION of MODEL, or the version in STAGE when no version is given; one sentence when neither is."""
    registry = snapshot(root, model)
    if version is not None:
        wanted = version if version.startswith("v") else f"v{version}"
        for found in registry.versions:
            if found.name == wanted:
                return found
        raise InputError(f"{model}@{wanted} is not registered; `radflow models` lists the versions.")
    current = registry.in_stage(stage)
    if current is None:
        raise InputError(
            f"no version of {model} is in {stage}; promote one (gto assign {model} --version V --stage "
            f"{stage}) or name one with --version."
        )
    return current


def next_version(previous: str | None, major: bool) -> str:
    """v0.1.0 first; then a minor bump, or a major one when the model needs different inputs."""
    import semver

    if previous is None:
        return "v0.1.0"
    current = semver.Version.parse(previous.removeprefix("v"))
    return f"v{current.bump_major() if major else current.bump_minor()}"


def register(root: Path, model: str, commit: str, version: str, message: str) -> str:
    """Tag COMMIT as MODEL@VERSION; returns the tag."""
    from gto import api

    author, email = _author(root)
    found = api.register(
        str(root), model, commit, version=version, message=message, author=author, author_email=email
    )
    return str(found.tag)


def assign(root: Path, model: str, stage: str, version: str, message: str) -> str:
    """Promote MODEL@VERSION to STAGE; returns the tag."""
    from gto import api

    author, email = _author(root)
    found = api.assign(
        str(root), model, stage, version=version, message=message, author=author, author_email=email
    )
    return str(found.tag)


def model_bytes(root: Path, commit: str, path: str = MODEL_OUT) -> bytes:
    """The weights a lineage commit's dvc.lock records, from the DVC cache (or its remote)."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        with dvc.api.open(path, repo=str(root), rev=commit, mode="rb") as fh:
            return bytes(fh.read())
    except (DvcException, FileNotFoundError) as err:
        raise InputError(
            f"the weights of commit {commit[:10]} ({path}) are in neither the DVC cache nor its remote "
            f"({type(err).__name__}); run `dvc pull` or promote by hand with `gto assign`."
        ) from None


def _author(root: Path) -> tuple[str | None, str | None]:
    """radflow as the tagger when git has no identity configured (CI, service accounts)."""
    proc = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, text=True)
    if proc.stdout.strip() or os.environ.get("GIT_COMMITTER_EMAIL"):
        return None, None
    return AUTHOR
