"""The base every params section derives from: unknown keys are errors, values are frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A params.yaml section: strict about keys, immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
