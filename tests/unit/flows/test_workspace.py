"""Lineage commits never move the user's branch and never take patient data into git; runs serialise."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from flows.workspace import commit_workspace, record_run, run_lock


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("/reports/\n")
    (tmp_path / "code.py").write_text("print(1)\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def test_a_lineage_commit_leaves_branch_index_and_files_alone(repo: Path) -> None:
    (repo / "code.py").write_text("print(2)\n")
    (repo / "new.py").write_text("x = 1\n")
    (repo / "inputs").mkdir()
    (repo / "inputs" / "a.txt").write_text("pixel data")
    (repo / "scan").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)  # DICOM without an extension
    (repo / ".radflow").mkdir()
    (repo / ".radflow" / "deid.key").write_text("secret")  # not ignored here: must still stay out
    (repo / "reports").mkdir()
    (repo / "reports" / "metrics.json").write_text("{}")
    head, status = git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")

    commit = commit_workspace(repo, head, "run", extra=["reports/metrics.json"], exclude=["inputs"])
    ref = record_run(repo, "r1", commit)

    assert (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain")) == (head, status)
    assert sorted(git(repo, "ls-tree", "-r", "--name-only", ref).split()) == [
        ".gitignore",
        "code.py",
        "new.py",
        "reports/metrics.json",
    ]
    assert git(repo, "show", f"{ref}:code.py") == "print(2)"
    assert git(repo, "rev-parse", f"{ref}^") == head


def test_a_second_run_waits_for_the_first(tmp_path: Path) -> None:
    waits: list[str] = []
    order: list[str] = []

    def second() -> None:
        with run_lock(tmp_path, waits.append):
            order.append("second")

    with run_lock(tmp_path, waits.append):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        order.append("first")
    thread.join(timeout=10)

    assert order == ["first", "second"]
    assert waits == ["another radflow run holds this project; waiting for it to finish"]
