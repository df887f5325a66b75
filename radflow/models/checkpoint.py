"""Atomic checkpoints for resuming, and the final model file (weights + config + lineage)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from radflow.errors import InputError
from radflow.models.config import ModelConfig
from radflow.models.networks import build_model


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, fsync, then os.replace: a kill leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The resumable state at `path` if it exists and was made with the same params and data, else None."""
    if not path.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a foreign or damaged file is never resumed; training starts afresh
        return None
    return state if state.get("fingerprint") == fingerprint else None


def save_model(
    path: Path, state_dict: dict[str, torch.Tensor], config: ModelConfig, lineage: dict[str, Any]
) -> None:
    """models/model.pt: everything evaluation and prediction need, in plain types."""
    cpu_state = {k: v.detach().cpu() for k, v in state_dict.items()}
    save_atomic({"state_dict": cpu_state, "config": config.to_dict(), "lineage": lineage}, path)


def load_model(path: Path) -> tuple[torch.nn.Module, ModelConfig]:
    """Rebuild the network of models/model.pt on CPU in eval mode, with its ModelConfig."""
    if not path.is_file():
        raise InputError(f"{path} not found; run the train stage first (dvc repro train).")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = ModelConfig.from_dict(saved["config"])
        model = build_model(config)
        model.load_state_dict(saved["state_dict"])
    except Exception as err:  # not a file train wrote, or one from an incompatible radflow version
        raise InputError(
            f"{path} is not a model file this radflow can read ({type(err).__name__}); "
            "re-run the train stage (dvc repro train)."
        ) from None
    model.eval()
    # predict_proba reads this so evaluation applies the same test-time flips as validation did
    model.radflow_tta_flip_dims = config.tta_flip_dims  # type: ignore[assignment]
    model.radflow_calibration = config.calibration  # type: ignore[assignment]
    return model, config


def load_lineage(path: Path) -> dict[str, Any]:
    """The lineage dict of a saved model (seed, epochs run, best epoch, best val AUC)."""
    lineage: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)["lineage"]
    return lineage
