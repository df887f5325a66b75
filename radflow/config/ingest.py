"""Knobs of the ingest stage (header scan into the manifest)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from radflow.config.base import Section


class IngestParams(Section):
    """Where the DICOM lives, how many processes read its headers, whether paths are redacted."""

    source: Path = Field(default=Path("data/demo"), description="Folder scanned recursively for DICOM files.")
    workers: int = Field(default=0, ge=0, description="Header-reading processes; 0 means one per CPU core.")
    redact_paths: bool = Field(
        default=True,
        description="Replace patient identifiers in folder and file names by keyed tokens in outputs "
        "(false: outputs show the source's own paths, for sources known to hold no identifiers).",
    )
