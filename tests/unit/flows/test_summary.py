"""What a run tells people about quarantined files: counts always, the files only under redacted paths."""

from __future__ import annotations

import json
from pathlib import Path

from flows.summary import QUARANTINE_FILE, SOURCE_FILE, quarantine_counts, quarantined_files

ROWS = [
    ("id-1a2b3c4d/IM0001.dcm", "LOCALIZER", "An orientation group of 2 images is a localizer."),
    ("id-1a2b3c4d/IM0002.dcm", "LOCALIZER", "An orientation group of 2 images is a localizer."),
    ("notes/readme.txt", "NOT_DICOM", "not DICOM: a text file"),
]


def _run_folder(tmp_path: Path, redacted: bool | str | None) -> Path:
    (tmp_path / QUARANTINE_FILE).parent.mkdir(parents=True)
    lines = ["path,disposition,reason,detail", *(f'{p},quarantined,{r},"{d}"' for p, r, d in ROWS)]
    (tmp_path / QUARANTINE_FILE).write_text("\n".join(lines) + "\n")
    if redacted is not None:
        (tmp_path / SOURCE_FILE).parent.mkdir(parents=True)
        record = {"root": "src", "key_fingerprint": "x", "scan_version": 1}
        mode = {"redact_paths": redacted} if redacted else {}
        (tmp_path / SOURCE_FILE).write_text(json.dumps(record | mode))
    return tmp_path


def test_redacted_paths_are_listed_with_reason_and_detail_up_to_the_limit(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, redacted=True)
    assert quarantine_counts(run) == {"LOCALIZER": 2, "NOT_DICOM": 1}
    files = quarantined_files(run)
    assert [f["path"] for f in files] == [p for p, _, _ in ROWS]
    assert files[2] == {"path": "notes/readme.txt", "reason": "NOT_DICOM", "detail": "not DICOM: a text file"}
    assert len(quarantined_files(run, limit=2)) == 2
    assert len(quarantined_files(_run_folder(tmp_path / "all", redacted="all"))) == 3  # every name hidden


def test_real_paths_or_an_unknown_source_give_counts_only(tmp_path: Path) -> None:
    assert quarantined_files(_run_folder(tmp_path / "real", redacted=False)) == []
    unknown = _run_folder(tmp_path / "unknown", redacted=None)
    assert quarantined_files(unknown) == [] and quarantine_counts(unknown) == {"LOCALIZER": 2, "NOT_DICOM": 1}
