"""Shared fixtures: the reference corpus (skipped when absent), a fixed de-identification key, Orthanc."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fixtures.orthanc import Orthanc

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"

# A fixed test key: pseudonyms are stable across the suite and never depend on a developer's key.
os.environ.setdefault("RADFLOW_DEID_KEY", "radflow-test-key-not-secret")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared reference corpus; tests that need it skip in a user's clone where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent (a user's clone); corpus tests skipped")
    return CORPUS


@pytest.fixture(scope="session")
def dicom_corpus(corpus: Path) -> Path:
    return corpus / "dicom"


@pytest.fixture(scope="session")
def medmnist_corpus(corpus: Path) -> Path:
    return corpus / "medmnist"


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """A real Orthanc PACS (DICOMweb plugin) on loopback for the session; skipped where not installed."""
    from fixtures.orthanc import available, running_orthanc

    why = available()
    if why:
        pytest.skip(why)
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server
