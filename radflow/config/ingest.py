"""Knobs of the ingest stage (header scan into the manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from radflow.config.base import Section


class IngestParams(Section):
    """Where the DICOM lives, how many processes read its headers, whether paths are redacted."""

    source: Path = Field(default=Path("data/demo"), description="Folder scanned recursively for DICOM files.")
    workers: int = Field(default=0, ge=0, description="Header-reading processes; 0 means one per CPU core.")
    redact_paths: bool | Literal["all"] = Field(
        default=True,
        description="Replace patient identifiers in folder and file names by keyed tokens in outputs "
        "(all: every folder and file name, for exports whose names may carry free text or IDs that no "
        "header holds; false: the source's own paths, for sources known to hold no identifiers).",
    )

    @field_validator("redact_paths", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        """true, false or all (the strings too, as a form or an override gives them); nothing else."""
        if isinstance(value, str):
            value = {"true": True, "false": False, "all": "all"}.get(value.strip().lower(), value)
        if value is True or value is False or value == "all":
            return value
        raise ValueError("must be true, false or all")
