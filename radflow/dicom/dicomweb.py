"""Pull studies from a PACS over DICOMweb (QIDO-RS to find them, WADO-RS to fetch them) into a
folder that ingest then scans like any other: <StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm.

Incremental: a study whose instances are all on disk costs nothing beyond the one paged study
query; a series with instances missing is fetched again and only the missing ones are written.
Every file is written to a temporary folder beside the target and renamed into place, so a pull
that is killed leaves whole files or none. Progress and messages give counts, never identifiers.
The folder names carry UIDs: keep `ingest.redact_paths` on (the default) for pulled folders.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from radflow.config.pacs import PacsParams
from radflow.errors import InputError

USER_ENV, PASSWORD_ENV, TOKEN_ENV = "RADFLOW_PACS_USER", "RADFLOW_PACS_PASSWORD", "RADFLOW_PACS_TOKEN"
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
STUDY_COUNT, SERIES_COUNT = "00201208", "00201209"  # Number of Study/Series Related Instances
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
TMP_PREFIX = ".radflow-pull-"


class PullError(InputError):
    """The server could not be reached or refused us; one sentence, nothing half-written."""


class CredentialsRefused(PullError):
    """The server answered 401/403: retrying with the same credentials will not help."""


class RequestFailed(PullError):
    """One request failed while the server still answers (that series is fetched on the next pull)."""


@dataclass
class PullResult:
    """What a pull found and did (counts only: they are safe to log and show)."""

    out_dir: Path
    studies: int = 0
    studies_complete: int = 0  # already whole on disk: not fetched
    series_fetched: int = 0
    written: int = 0
    failed_series: int = 0
    failures: list[str] = field(default_factory=list)  # reason sentences, no identifiers

    def describe(self) -> str:
        failed = f", {self.failed_series} series failed (a re-run fetches them)" if self.failed_series else ""
        return (
            f"pull: {self.studies} studies on the server, {self.studies_complete} already complete; "
            f"{self.series_fetched} series fetched, {self.written} new files → {self.out_dir}{failed}."
        )


def client_for(url: str) -> Any:
    """A DICOMweb client with the credentials of the environment (never of params.yaml)."""
    from dicomweb_client.api import DICOMwebClient

    headers = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"} if os.environ.get(TOKEN_ENV) else None
    from dicomweb_client.session_utils import create_session, create_session_from_user_pass

    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    session = create_session_from_user_pass(user, password) if user and password else create_session()
    client = DICOMwebClient(url=url, session=session, headers=headers, timeout=(10, 300))
    # a busy PACS (429/503/504) gets a few quick retries; a dead one fails fast and the run's own
    # retry (the flow retries a pull like ingest) waits longer between attempts
    client.set_http_retry_params(max_attempts=3, wait_exponential_multiplier=500)
    return client


def pull(
    params: PacsParams,
    out_dir: Path,
    client: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PullResult:
    """Fetch every study matching PARAMS that is not yet whole under OUT_DIR."""
    if params.url is None:
        raise InputError(
            "pacs.url is not set; give the DICOMweb root of the PACS (e.g. http://pacs/dicom-web)."
        )
    client = client or client_for(params.url)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    result = PullResult(out_dir)
    with _guarded(params.url):
        studies = _matching_studies(client, params)
    result.studies = len(studies)
    media = _media_types(params)
    bar = tqdm(studies, desc="pull studies", unit="study", disable=None)
    for done, study in enumerate(bar, start=1):
        uid = _uid(study, STUDY_UID)
        if uid is None:
            result.failures.append("a study without a valid StudyInstanceUID was skipped")
            continue
        count = _count(study, STUDY_COUNT)
        if count is not None and _on_disk(out_dir / uid) >= count:
            result.studies_complete += 1
        else:
            _pull_study(client, params.url, uid, out_dir, media, result)
        if on_progress is not None:
            on_progress(done, len(studies))
    return result


def _matching_studies(client: Any, params: PacsParams) -> list[dict[str, Any]]:
    """Studies holding any of the modalities, in the date range, once each, in a stable order."""
    found: dict[str, dict[str, Any]] = {}
    modalities: list[str | None] = list(params.modalities) or [None]
    for modality in modalities:
        filters: dict[str, Any] = {}
        if modality:
            filters["ModalitiesInStudy"] = modality
        if params.study_date:
            filters["StudyDate"] = params.study_date
        for study in _paged(client, filters, params.page_size):
            uid = _uid(study, STUDY_UID)
            found.setdefault(uid or f"invalid-{len(found)}", study)
    return [found[k] for k in sorted(found)]


def _paged(client: Any, filters: dict[str, Any], page: int) -> Iterator[dict[str, Any]]:
    offset = 0
    fields = ["StudyInstanceUID", "NumberOfStudyRelatedInstances"]
    while True:
        batch = client.search_for_studies(search_filters=filters, limit=page, offset=offset, fields=fields)
        yield from batch
        if len(batch) < page:
            return
        offset += len(batch)


def _pull_study(client: Any, url: str, study: str, out_dir: Path, media: Any, result: PullResult) -> None:
    try:
        with _guarded(url):
            series_list = client.search_for_series(
                study, fields=["SeriesInstanceUID", "NumberOfSeriesRelatedInstances"]
            )
    except RequestFailed as err:  # this study's series could not be listed: the next pull tries again
        result.failed_series += 1
        result.failures.append(str(err))
        return
    for series in series_list:
        uid = _uid(series, SERIES_UID)
        if uid is None:
            result.failures.append("a series without a valid SeriesInstanceUID was skipped")
            continue
        folder = out_dir / study / uid
        try:
            if _complete(client, url, study, uid, series, folder):
                continue
            with _guarded(url):
                result.written += _write_missing(client.iter_series(study, uid, media_types=media), folder)
            result.series_fetched += 1
        except RequestFailed as err:  # an unreachable or refusing server stops the pull instead
            result.failed_series += 1
            result.failures.append(str(err))


def _complete(client: Any, url: str, study: str, series: str, found: dict[str, Any], folder: Path) -> bool:
    """Whether every instance of the series is on disk: by the server's count, or (a server that
    gives none) by listing the series' SOP Instance UIDs against the files."""
    count = _count(found, SERIES_COUNT)
    if count is not None:
        return _on_disk(folder) >= count
    with _guarded(url):
        listed = client.search_for_instances(study, series, fields=["SOPInstanceUID"])
    wanted = {uid for uid in (_uid(item, SOP_UID) for item in listed) if uid}
    return bool(wanted) and all((folder / f"{uid}.dcm").is_file() for uid in wanted)


def _write_missing(datasets: Iterable[Any], folder: Path) -> int:
    """Write each instance not yet on disk, atomically (temporary file beside the tree, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=folder.parents[1].parent))
    written = 0
    try:
        for ds in datasets:
            sop = str(getattr(ds, "SOPInstanceUID", ""))
            if not UID.match(sop):
                continue  # cannot be named safely; the count check will fetch the series again
            target = folder / f"{sop}.dcm"
            if target.exists():
                continue
            tmp = tmp_root / target.name
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, target)
            written += 1
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return written


@contextmanager
def _guarded(url: str) -> Iterator[None]:
    """Turn the HTTP failure of a request into one sentence naming the server."""
    import requests

    try:
        yield
    except (requests.ConnectionError, requests.Timeout):
        raise PullError(f"no DICOMweb server answers at {url}; check pacs.url and the network.") from None
    except requests.RequestException as err:
        status = getattr(err.response, "status_code", None)
        if status in (401, 403):
            raise CredentialsRefused(
                f"the DICOMweb server at {url} refused the credentials (HTTP {status}); "
                f"set {USER_ENV} and {PASSWORD_ENV}, or {TOKEN_ENV}."
            ) from None
        raise RequestFailed(
            f"a request to {url} failed (HTTP {status or '?'}); the next pull tries again."
        ) from None


def _media_types(params: PacsParams) -> tuple[tuple[str, str], ...]:
    syntax = "*" if params.transfer_syntax == "original" else "1.2.840.10008.1.2.1"
    return (("application/dicom", syntax),)


def _uid(item: dict[str, Any], tag: str) -> str | None:
    values = (item.get(tag) or {}).get("Value") or []
    value = str(values[0]).strip() if values else ""
    return value if UID.match(value) and len(value) <= 64 else None


def _count(item: dict[str, Any], tag: str) -> int | None:
    """The server's instance count (an optional attribute in QIDO-RS: None when it gives none)."""
    values = (item.get(tag) or {}).get("Value") or []
    try:
        return int(values[0])
    except (IndexError, TypeError, ValueError):
        return None


def _on_disk(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.dcm")) if folder.is_dir() else 0


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary folders a killed pull left beside the tree."""
    for stale in out_dir.parent.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
