"""The retrain flow with pacs.url set: new PACS studies are pulled into ingest.source first, so DVC
sees them; a pull that finds nothing new leaves every stage skipped; refused credentials stop the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.orthanc import Orthanc
from test_retrain_flow import completed, outcomes, run_flow
from toyproject import stage_runs

from radflow.dicom.dicomweb import PASSWORD_ENV, USER_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def pacs_project(
    toy_project: Path, orthanc: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The toy project pointed at an Orthanc holding a small cohort (ingest.source: inputs/pacs)."""
    from radflow.synth.cohort import write_cohort

    orthanc.clear()
    cohort = write_cohort(tmp_path / "cohort", patients=2, seed=3)
    assert cohort is not None
    orthanc.upload(sorted(p for p in (tmp_path / "cohort").rglob("*.dcm")))
    params = toy_project / "params.yaml"
    text = params.read_text().replace("source: inputs", "source: inputs/pacs")
    params.write_text(f"pacs:\n  url: {orthanc.dicomweb}\n  modalities: []\n{text}")
    monkeypatch.setenv(USER_ENV, orthanc.auth[0])
    monkeypatch.setenv(PASSWORD_ENV, orthanc.auth[1])
    return toy_project


def test_the_flow_pulls_before_ingest_and_a_pull_with_nothing_new_changes_nothing(
    pacs_project: Path, orthanc: Orthanc
) -> None:
    first = completed(pacs_project)

    pulled = list((pacs_project / "inputs" / "pacs").rglob("*.dcm"))
    assert len(pulled) == orthanc.instances() > 0
    assert set(outcomes(first).values()) == {"ran"} and stage_runs(pacs_project)[0] == "ingest"

    second = completed(pacs_project)

    assert set(outcomes(second).values()) == {"skipped"} and stage_runs(pacs_project) == []


def test_refused_credentials_fail_the_run_in_one_sentence_without_retries(
    pacs_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")

    state = run_flow(pacs_project)

    assert state.is_failed() and "refused the credentials (HTTP 401)" in str(state.message)
    assert stage_runs(pacs_project) == [] and not list((pacs_project / "inputs").rglob("*.dcm"))
