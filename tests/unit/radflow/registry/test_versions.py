"""Registry versions: semver bumps, the model hash in dvc.lock, and GTO tags in a real git repository."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from radflow.registry import versions

LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: python -m tasks.train
    deps:
    - path: data/clean
      md5: aaaa.dir
    outs:
    - path: models/model.pt
      md5: 0123456789abcdef
      size: 10
"""


def test_versions_start_at_0_1_0_and_bump_minor_or_major() -> None:
    assert versions.next_version(None, major=False) == "v0.1.0"
    assert versions.next_version("v0.1.0", major=False) == "v0.2.0"
    assert versions.next_version("v0.9.3", major=True) == "v1.0.0"


def test_the_model_hash_comes_from_dvc_lock() -> None:
    assert versions.locked_md5(LOCK) == "0123456789abcdef"
    assert versions.locked_md5(LOCK, "data/other") is None
    assert versions.locked_md5(None) is None


def test_register_and_assign_write_gto_tags_that_gto_reads_back(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "run")
    commit = git("rev-parse", "HEAD").strip()
    assert versions.latest(tmp_path, "net") is None and versions.in_stage(tmp_path, "net", "prod") is None

    assert versions.register(tmp_path, "net", commit, "v0.1.0", "first") == "net@v0.1.0"
    assert versions.assign(tmp_path, "net", "prod", "v0.1.0", "gate passed") == "net#prod#1"

    assert versions.latest(tmp_path, "net") == versions.Version("v0.1.0", commit)
    assert versions.in_stage(tmp_path, "net", "prod") == versions.Version("v0.1.0", commit)
    assert versions.all_versions(tmp_path, "net") == [versions.Version("v0.1.0", commit)]
    assert versions.show_file(tmp_path, commit, "missing.txt") is None
    assert git("tag", "-l", "--format=%(contents:subject)", "net@v0.1.0").strip() == "first"


def test_the_stage_follows_the_latest_assignment_including_a_rollback(tmp_path: Path) -> None:
    from gto import api

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    commits = []
    for name in ("one", "two"):
        git(
            "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", name
        )
        commits.append(git("rev-parse", "HEAD").strip())
    for version, commit in zip(("v0.1.0", "v0.2.0"), commits, strict=True):
        versions.register(tmp_path, "net", commit, version, "registered")
        versions.assign(tmp_path, "net", "prod", version, "promoted")
        time.sleep(1.1)  # GTO orders assignments by their tags' times, which git keeps in whole seconds
    assert versions.in_stage(tmp_path, "net", "prod") == versions.Version("v0.2.0", commits[1])

    api.assign(str(tmp_path), "net", "prod", version="v0.1.0", force=True, author="t", author_email="t@e.org")

    assert versions.in_stage(tmp_path, "net", "prod") == versions.Version("v0.1.0", commits[0])
