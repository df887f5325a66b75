"""params.yaml, validated: one pydantic model per stage section, unknown keys are errors.

A stage reads its own section (`load_section("train")`), never the whole tree. Errors are turned
into one sentence that names the key and what was expected.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from radflow.config.base import Section
from radflow.config.clean import CleanParams
from radflow.config.evaluate import EvaluateParams
from radflow.config.ingest import IngestParams
from radflow.config.pacs import PacsParams
from radflow.config.register import RegisterParams
from radflow.config.split import SplitParams
from radflow.config.train import TrainParams
from radflow.errors import ConfigError

__all__ = [
    "CleanParams",
    "EvaluateParams",
    "IngestParams",
    "PacsParams",
    "Params",
    "RegisterParams",
    "SplitParams",
    "TrainParams",
    "apply_overrides",
    "load_params",
    "load_section",
]

DEFAULT_PARAMS = Path("params.yaml")
S = TypeVar("S", bound=Section)


# `register` is also the name of ABCMeta.register on the class (pydantic warns); on instances, where
# params are read, the field wins: params.register is the section.
warnings.filterwarnings("ignore", message='Field name "register" in "Params" shadows', category=UserWarning)


class Params(Section):
    """The whole of params.yaml: one section per stage (register runs in the flow, after DVC's)."""

    pacs: PacsParams = (
        PacsParams()
    )  # pulled into ingest.source by the flow before the stages, when url is set
    ingest: IngestParams = IngestParams()
    clean: CleanParams = CleanParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    register: RegisterParams = RegisterParams()


def load_params(path: Path = DEFAULT_PARAMS, overrides: Mapping[str, Any] | None = None) -> Params:
    """Read and validate params.yaml, with optional dotted-key overrides (`{"train.epochs": 3}`)."""
    raw = _read_yaml(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_sentence(path, err)) from None


def load_section(name: str, model: type[S], path: Path = DEFAULT_PARAMS) -> S:
    """Validate params.yaml and return one stage's section."""
    section = getattr(load_params(path), name)
    assert isinstance(section, model)
    return section


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with dotted keys set; unknown keys are left for validation to reject."""
    merged: dict[str, Any] = _deep_copy(raw)
    for dotted, value in overrides.items():
        node = merged
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is a value, not a section.")
            node = child
        node[leaf] = value
    return merged


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the project root or pass the path of params.yaml.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}; fix the syntax there.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of stage sections (ingest, clean, ...).")
    return raw


def _sentence(path: Path, err: ValidationError) -> str:
    """The first validation problem as one sentence naming the key."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        parent = _model_at(first["loc"][:-1])
        known = ", ".join(parent.model_fields) if parent is not None else ""
        hint = f"; known keys there: {known}" if known else ""
        return f"{path}: '{key}' is not a known key{hint}. Fix the spelling or remove it."
    return f"{path}: '{key}' is invalid: {first['msg']} (got {first.get('input')!r})."


def _model_at(loc: tuple[int | str, ...]) -> type[Section] | None:
    model: type[Section] = Params
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            return None
        model = annotation
    return model
