"""The retrain flow's typed parameters (the form the Prefect UI renders) and their validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from radflow.config import Params, load_params
from radflow.errors import ConfigError

# The commonly tuned knobs get their own form fields; everything else goes through `set`.
FIELD_KEYS = {
    "train_epochs": "train.epochs",
    "train_learning_rate": "train.learning_rate",
    "train_network": "train.network",
    "train_max_minutes": "train.max_minutes",
    "ingest_source": "ingest.source",
    "ingest_redact_paths": "ingest.redact_paths",
    "split_strategy": "split.strategy",
    "register_promote": "register.promote",
}


class RetrainParameters(BaseModel):
    """What one retrain run may change: parameter overrides for this run only, and whether to force."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_epochs: int | None = Field(default=None, ge=1, description="train.epochs for this run.")
    train_learning_rate: float | None = Field(
        default=None, gt=0, description="train.learning_rate for this run."
    )
    # Names, not Literals: params.yaml's own models decide what is valid, in one place.
    train_network: str | None = Field(default=None, description="train.network, e.g. small_cnn or resnet18.")
    train_max_minutes: float | None = Field(
        default=None,
        gt=0,
        description="train.max_minutes: fit training into this many minutes (fewer ensemble networks, or a "
        "shorter schedule, rather than an overrun).",
    )
    ingest_source: str | None = Field(default=None, description="ingest.source (DICOM folder) for this run.")
    ingest_redact_paths: str | None = Field(
        default=None,
        description="ingest.redact_paths for that folder: true (identifiers the headers hold), all (every "
        "folder and file name, when names may carry notes or IDs no header holds) or false (real paths).",
    )
    split_strategy: str | None = Field(default=None, description="split.strategy: grouped or predefined.")
    register_promote: str | None = Field(
        default=None,
        description="register.promote: gate, approve (the run waits for a reviewer's sign-off here, "
        "in the Prefect UI) or never.",
    )
    set: list[str] = Field(
        default_factory=list, description="Further overrides as key=value, e.g. evaluate.bootstrap=200."
    )
    force: bool = Field(default=False, description="Re-run every stage even when DVC finds nothing changed.")

    def raw_overrides(self) -> dict[str, Any]:
        """Dotted key → value, form fields first, then `set` entries (which win)."""
        merged: dict[str, Any] = {
            key: getattr(self, field) for field, key in FIELD_KEYS.items() if getattr(self, field) is not None
        }
        for item in self.set:
            key, value = parse_assignment(item)
            merged[key] = value
        return merged


def parse_assignment(item: str) -> tuple[str, Any]:
    """Split `train.epochs=3` into a key and a YAML-typed value."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not key=value; write it like train.epochs=3.")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"override {item!r} has a value that is not valid YAML; quote it.") from None
    return key, value


def parameters_from(overrides: list[str], force: bool = False) -> RetrainParameters:
    """The flow parameters for `radflow run --set ...` strings."""
    for item in overrides:
        parse_assignment(item)  # a malformed item fails here, as one sentence
    return RetrainParameters(set=list(overrides), force=force)


def validated_overrides(params_file: Path, parameters: RetrainParameters) -> dict[str, Any]:
    """Validate the overrides against params.yaml and return them as params.yaml would hold them."""
    raw = parameters.raw_overrides()
    validated = load_params(params_file, overrides=raw)
    return {key: value_at(validated, key) for key in raw}


def value_at(params: Params, dotted: str) -> Any:
    """The validated value of one dotted key, in its YAML form (paths as strings)."""
    node: Any = params.model_dump(mode="json")
    for part in dotted.split("."):
        node = node[part]
    return node
