"""Score two models on one run's test split, image by image, for the paired comparison of the gate."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from radflow.data.dataset import load_split_arrays
from radflow.errors import InputError
from radflow.metrics.compare import AucDifference, paired_auc_difference
from radflow.models.checkpoint import load_model
from radflow.models.config import ModelConfig
from radflow.models.predict import predict_proba


def scores_on_test(
    model: torch.nn.Module, config: ModelConfig, clean_dir: Path, split_path: Path, batch_size: int = 64
) -> pd.DataFrame:
    """series_key, patient_key, label and P(label = 1) of every test image the model takes as input.

    Each model is given the inputs it was trained on (its own modalities, size and preprocessing,
    from its file), so a production model trained under other settings is still scored fairly.
    """
    images, labels, rows = load_split_arrays(clean_dir, split_path, config, "test")
    scores = rows[["series_key", "patient_key"]].copy()
    scores["label"] = np.asarray(labels).astype(np.int64)
    scores["prob"] = predict_proba(model, images, batch_size=batch_size)
    return scores


def compare_on_test(
    candidate: Path,
    reference: bytes,
    reference_name: str,
    clean_dir: Path,
    split_path: Path,
    resamples: int,
    seed: int,
) -> AucDifference:
    """Paired AUC difference (candidate − reference) on the test images both models take."""
    with tempfile.TemporaryDirectory() as tmp:
        reference_path = Path(tmp) / "reference.pt"
        reference_path.write_bytes(reference)
        try:
            ref_model, ref_config = load_model(reference_path)
        except InputError:
            raise InputError(
                f"the weights of {reference_name} are not a model file this radflow can read"
            ) from None
    ref = scores_on_test(ref_model, ref_config, clean_dir, split_path)
    cand = scores_on_test(*load_model(candidate), clean_dir, split_path)
    both = cand.merge(ref[["series_key", "prob"]], on="series_key", suffixes=("", "_reference"))
    if both.empty:
        raise InputError(
            f"{reference_name} takes none of this run's test images (other modalities or dimensions): "
            "a model for another task wants its own register.model name"
        )
    return paired_auc_difference(
        both["label"].to_numpy(),
        both["prob"].to_numpy(),
        both["prob_reference"].to_numpy(),
        both["patient_key"].to_numpy(),
        resamples,
        seed,
    )
