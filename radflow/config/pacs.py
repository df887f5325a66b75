"""Knobs of the PACS pull that can precede ingest: which DICOMweb server, which studies."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from radflow.config.base import Section

DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


class PacsParams(Section):
    """A DICOMweb (QIDO-RS/WADO-RS) server whose studies are pulled into ingest.source before a run.

    Credentials never live here: RADFLOW_PACS_USER and RADFLOW_PACS_PASSWORD (HTTP basic) or
    RADFLOW_PACS_TOKEN (bearer) come from the environment.
    """

    url: str | None = Field(
        default=None, description="DICOMweb root, e.g. http://pacs:8042/dicom-web; null: no pull."
    )
    modalities: list[str] = Field(
        default=["CT", "CR", "DX"], description="Studies holding any of these modalities (ModalitiesInStudy)."
    )
    study_date: str = Field(
        default="", description="DICOM date range of StudyDate: 20260101-20261231, 20260101- or empty (all)."
    )
    transfer_syntax: Literal["original", "explicit-little-endian"] = Field(
        default="original", description="original: files as the PACS stores them; or transcoded by it."
    )
    page_size: int = Field(default=500, ge=1, le=10000, description="Studies asked for per QIDO-RS request.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("pacs.url must start with http:// or https://")
        return value

    @field_validator("study_date")
    @classmethod
    def _range(cls, value: str) -> str:
        if not DATE_RANGE.match(value):
            raise ValueError("pacs.study_date must be YYYYMMDD, YYYYMMDD-, -YYYYMMDD or YYYYMMDD-YYYYMMDD")
        return value
