"""Knobs of the split stage (patient-grouped train/val/test assignment)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from radflow.config.base import Section


class SplitParams(Section):
    """Where the labels are and how studies are assigned to splits."""

    labels: Path = Field(
        default=Path("data/demo/labels.csv"), description="CSV keyed by StudyInstanceUID with a label column."
    )
    strategy: Literal["grouped", "predefined"] = Field(
        default="grouped",
        description="grouped: patient-grouped and stratified; predefined: the labels file's split column.",
    )
    train_fraction: float = Field(default=0.6, gt=0, lt=1)
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _fractions_leave_a_test_split(self) -> SplitParams:
        if self.train_fraction + self.val_fraction >= 1:
            raise ValueError(
                "split.train_fraction + split.val_fraction must be below 1 to leave a test split"
            )
        return self
