"""Pulling studies from a real PACS (Orthanc over DICOMweb): complete, incremental, atomic, and
failing in one sentence when the server is unreachable or refuses the credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from fixtures.orthanc import Orthanc
from typer.testing import CliRunner

from radflow.cli import app
from radflow.config.pacs import PacsParams
from radflow.dicom.dicomweb import PASSWORD_ENV, USER_ENV, PullError, pull

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radflow.synth.cohort import write_cohort

    root = tmp_path_factory.mktemp("pacs") / "cohort"
    write_cohort(root, patients=4, seed=5)
    return root


@pytest.fixture
def pacs(orthanc: Orthanc, cohort: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Orthanc]:
    """Orthanc holding the cohort (what it accepts of it), and the credentials in the environment."""
    orthanc.clear()
    orthanc.upload(dicom_files(cohort))
    monkeypatch.setenv(USER_ENV, orthanc.auth[0])
    monkeypatch.setenv(PASSWORD_ENV, orthanc.auth[1])
    yield orthanc
    orthanc.clear()


def dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".csv")


def by_sop(files: list[Path]) -> dict[str, list[pydicom.Dataset]]:
    """Datasets by SOP Instance UID (the cohort plants a duplicate: a UID can have two files)."""
    found: dict[str, list[pydicom.Dataset]] = {}
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # the cohort's planted non-DICOM and truncated files
            continue
        found.setdefault(str(ds.SOPInstanceUID), []).append(ds)
    return found


def test_a_pull_fetches_every_instance_with_its_pixels_as_stored(
    pacs: Orthanc, cohort: Path, tmp_path: Path
) -> None:
    result = pull(PacsParams(url=pacs.dicomweb, modalities=[]), tmp_path / "pulled")

    pulled = sorted((tmp_path / "pulled").rglob("*.dcm"))
    assert result.written == len(pulled) == pacs.instances() and result.failed_series == 0
    source, fetched = by_sop(dicom_files(cohort)), by_sop(pulled)
    assert set(fetched) <= set(source) and len(fetched) == len(pulled)
    for sop, (ds,) in fetched.items():
        stored_as = [(o.file_meta.TransferSyntaxUID, o.get("PixelData")) for o in source[sop]]
        assert (ds.file_meta.TransferSyntaxUID, ds.get("PixelData")) in stored_as, sop
    layout = pulled[0].relative_to(tmp_path / "pulled").parts
    (ds,) = fetched[pulled[0].stem]
    assert layout == (ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
    assert not list(tmp_path.glob(".radflow-pull-*"))  # no temporary folder left beside it


def test_a_second_pull_fetches_nothing_and_a_new_study_alone_is_fetched(
    pacs: Orthanc, tmp_path: Path
) -> None:
    from radflow.synth.cohort import write_cohort

    params = PacsParams(url=pacs.dicomweb, modalities=[])
    first = pull(params, tmp_path / "pulled")
    again = pull(params, tmp_path / "pulled")
    assert again.written == 0 and again.series_fetched == 0 and again.studies_complete == first.studies

    extra = write_cohort(tmp_path / "more", patients=2, seed=99)
    assert extra is not None
    before = pacs.instances()
    pacs.upload(dicom_files(tmp_path / "more"))
    grown = pull(params, tmp_path / "pulled")
    assert grown.written == pacs.instances() - before > 0 and grown.studies_complete == first.studies
    assert grown.studies > first.studies


def test_a_partly_pulled_series_gets_only_its_missing_files(pacs: Orthanc, tmp_path: Path) -> None:
    params = PacsParams(url=pacs.dicomweb, modalities=[])
    pull(params, tmp_path / "pulled")
    files = sorted((tmp_path / "pulled").rglob("*.dcm"))
    kept_bytes = files[1].read_bytes()
    files[0].unlink()  # as if the last pull had been killed before this one was renamed into place

    again = pull(params, tmp_path / "pulled")

    assert again.written == 1 and again.series_fetched == 1 and files[0].is_file()
    assert files[1].read_bytes() == kept_bytes  # files already there are not rewritten


def test_modalities_select_studies(pacs: Orthanc, tmp_path: Path) -> None:
    only_ct = pull(PacsParams(url=pacs.dicomweb, modalities=["CT"]), tmp_path / "ct")
    everything = pull(PacsParams(url=pacs.dicomweb, modalities=[]), tmp_path / "all")
    modalities = {
        pydicom.dcmread(p, stop_before_pixels=True).Modality for p in (tmp_path / "ct").rglob("*.dcm")
    }
    assert modalities == {"CT"} and 0 < only_ct.studies < everything.studies


def test_refused_credentials_and_an_unreachable_server_are_one_sentence(
    pacs: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(PullError, match=r"refused the credentials \(HTTP 401\); set RADFLOW_PACS_USER"):
        pull(PacsParams(url=pacs.dicomweb), tmp_path / "pulled")
    with pytest.raises(PullError, match=r"no DICOMweb server answers at http://127\.0\.0\.1:9/dicom-web"):
        pull(PacsParams(url="http://127.0.0.1:9/dicom-web"), tmp_path / "pulled")
    assert not list((tmp_path / "pulled").rglob("*.dcm"))


def test_the_cli_pulls_then_ingest_accounts_for_every_pulled_file(pacs: Orthanc, tmp_path: Path) -> None:
    from radflow.config import IngestParams
    from tasks import ingest

    runner = CliRunner()
    result = runner.invoke(
        app, ["pull", pacs.dicomweb, "--out", str(tmp_path / "pulled"), "--modality", "CR"]
    )
    assert result.exit_code == 0, result.output
    assert "new files" in result.output and "1.2." not in result.output  # counts, never UIDs

    pulled = sorted((tmp_path / "pulled").rglob("*.dcm"))
    scanned = ingest.run(
        IngestParams(source=tmp_path / "pulled", workers=1), tmp_path / "pulled", tmp_path / "ing"
    )
    assert scanned.files == scanned.dicom == len(pulled) > 0 and scanned.unreadable == 0

    bad = runner.invoke(app, ["pull", "http://127.0.0.1:9/dicom-web", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "error: no DICOMweb server answers" in bad.output


def test_without_the_servers_counts_a_series_is_checked_by_its_instance_list(
    pacs: Orthanc, tmp_path: Path
) -> None:
    """NumberOfSeriesRelatedInstances is optional in QIDO-RS: the SOP UIDs decide instead."""
    from radflow.dicom.dicomweb import _complete, client_for

    pull(PacsParams(url=pacs.dicomweb, modalities=[]), tmp_path / "pulled")
    files = sorted((tmp_path / "pulled").rglob("*.dcm"))
    folder = files[0].parent
    study, series = folder.parent.name, folder.name
    client = client_for(pacs.dicomweb)
    uncounted = {
        "0020000E": {"vr": "UI", "Value": [series]}
    }  # the series as a server without counts gives it

    assert _complete(client, pacs.dicomweb, study, series, uncounted, folder)
    files[0].unlink()
    assert not _complete(client, pacs.dicomweb, study, series, uncounted, folder)


def test_a_failed_request_to_a_live_server_is_retried_next_time_not_fatal(pacs: Orthanc) -> None:
    """A 404 from a server that answers is a RequestFailed (one series lost this pull), not the end."""
    from radflow.dicom.dicomweb import CredentialsRefused, RequestFailed, _guarded, client_for

    client = client_for(pacs.dicomweb)
    failed = r"failed \(HTTP 404\); the next pull tries again"
    with pytest.raises(RequestFailed, match=failed) as caught, _guarded(pacs.dicomweb):
        client.retrieve_study("1.2.826.0.1.3680043.8.498.1")
    assert not isinstance(caught.value, CredentialsRefused)
