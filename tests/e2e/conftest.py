"""E2E fixtures: one Prefect test server per session, and a tiny throwaway DVC project per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from toyproject import make_toy_project


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect API (SQLite in a temp dir) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def toy_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh three-stage DVC project, and the current directory set to it."""
    root = make_toy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root
