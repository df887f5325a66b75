"""Knobs of the clean stage (triage, series assembly, decoding, de-identification)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from radflow.config.base import Section


class CleanParams(Section):
    """Tolerances and policies of series cleaning; defaults follow dcm2niix/GDCM practice."""

    workers: int = Field(0, ge=0, description="Series-assembly processes; 0 means one per CPU core.")
    modalities: list[str] = Field(
        ["CT", "MR", "CR", "DX"], description="Modalities kept; others are quarantined."
    )
    min_slices: int = Field(4, ge=1, description="Fewest slices a volume may have (radiographs exempt).")
    orientation_tolerance: float = Field(
        1e-3, gt=0, description="Largest allowed difference per direction cosine."
    )
    spacing_tolerance_mm: float = Field(
        0.2, ge=0, description="Absolute slice-gap tolerance along the normal."
    )
    spacing_tolerance_fraction: float = Field(0.05, ge=0, description="Relative slice-gap tolerance.")
    max_gantry_tilt_deg: float = Field(
        0.5, ge=0, description="Tilt measured from geometry above which a series is tilted."
    )
    gantry_tilt: Literal["quarantine", "deshear"] = Field(
        "quarantine", description="What to do with a tilted series."
    )
    irregular_spacing: Literal["quarantine", "resample"] = Field(
        "quarantine",
        description=(
            "What to do with a stack whose slice gaps vary (SPACING_NONUNIFORM): set it apart, or "
            "resample it onto its smallest gap along the normal (as dcm2niix's _Eq output). Missing "
            "slices are always set apart."
        ),
    )
    keep_for_processing: bool = Field(
        False, description="Keep radiographs marked FOR PROCESSING (otherwise set apart)."
    )
