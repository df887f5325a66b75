"""Knobs of model registration: the registry name, the stage a good model is promoted to, the gate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from radflow.config.base import Section

# GTO's rule for artifact and stage names: lower-case words joined by single dashes or slashes.
NAME_PATTERN = r"^[a-z][a-z0-9]*(?:[-/][a-z0-9]+)*$"


class RegisterParams(Section):
    """How a run's model becomes a registered version, and when it is promoted."""

    model: str = Field(
        default="radflow-model",
        pattern=NAME_PATTERN,
        description="Registry name: versions are git tags MODEL@vX.Y.Z, promotions MODEL#STAGE#N (GTO).",
    )
    stage: str = Field(
        default="prod",
        pattern=NAME_PATTERN,
        description="The stage a model that passes the gate is assigned.",
    )
    promote: Literal["gate", "approve", "never"] = Field(
        default="gate",
        description="gate: assign `stage` when every check passes; approve: when every check passes, "
        "pause the run until a reviewer approves or declines in the Prefect UI; never: register only "
        "(a person promotes with `gto assign`).",
    )
    approval_timeout_h: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="With promote: approve, how long a run waits for a reviewer before it ends unpromoted.",
    )
    min_auc: float = Field(default=0.75, ge=0, le=1, description="Lowest test AUC a promoted model may have.")
    min_sensitivity: float = Field(default=0.0, ge=0, le=1, description="Lowest test sensitivity.")
    min_specificity: float = Field(default=0.0, ge=0, le=1, description="Lowest test specificity.")
    max_auc_drop: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How far the test AUC may fall below the model in `stage`, both scored on this "
        "run's test split.",
    )
    bootstrap: int = Field(
        default=1000, ge=0, description="Paired bootstrap resamples for the AUC difference's 95% CI."
    )
    seed: int = 0
    intended_use: str = Field(
        default="Research and validation only: not for clinical decisions without local clinical evaluation.",
        max_length=500,
        description="The model card's intended-use statement.",
    )
