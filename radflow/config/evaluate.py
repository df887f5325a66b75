"""Knobs of the evaluate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from radflow.config.base import Section


class EvaluateParams(Section):
    """How metrics, intervals and the operating point are computed."""

    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for 95% confidence intervals; 0 disables them.")
    operating_point: Literal["youden", "sensitivity"] = Field(
        "youden", description="How the threshold is chosen on the validation split."
    )
    target_sensitivity: float = Field(0.9, gt=0, lt=1, description="Used when operating_point is 'sensitivity'.")
    seed: int = 0
