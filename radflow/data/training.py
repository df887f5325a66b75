"""From TrainParams and clean arrays (or any in-memory arrays) to the tensors the training loop uses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from radflow.config.train import TrainParams
from radflow.data.dataset import load_images, sample_rows
from radflow.data.preprocess import standardise
from radflow.errors import InputError
from radflow.models.config import ModelConfig
from radflow.models.fit import TrainData


def model_config(params: TrainParams, mean: float = 0.0, std: float = 1.0) -> ModelConfig:
    """The ModelConfig these params describe; mean/std come from the training images."""
    return ModelConfig(
        network=params.network,
        spatial_size=tuple(params.spatial_size),
        modalities=tuple(params.modalities),
        width=params.width,
        stem_stride=params.stem_stride,
        dropout=params.dropout,
        ct_window=(params.ct_window[0], params.ct_window[1]),
        mean=mean,
        std=std,
        tta_flip_dims=tuple(params.augment.flip_axes) if params.tta_flip else (),
        ensemble=params.ensemble,
    )


def from_arrays(
    params: TrainParams, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray
) -> tuple[ModelConfig, TrainData]:
    """Windowed, resized (N, 1, *spatial) images in [0, 1] and 0/1 labels → config and tensors."""
    mean, std = float(train_x.mean()), float(train_x.std()) or 1.0
    config = model_config(params, mean, std)
    data = TrainData(
        train_images=torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32)),
        train_labels=torch.tensor(np.asarray(train_y), dtype=torch.float32),
        val_images=torch.from_numpy(standardise(val_x, config)),
        val_labels=np.asarray(val_y, dtype=np.int64),
    )
    return config, data


def load_training_data(
    clean_dir: Path, split_path: Path, params: TrainParams
) -> tuple[ModelConfig, TrainData]:
    """Train and val samples of the params' modalities, preloaded once into memory."""
    dims = len(params.spatial_size)
    rows = sample_rows(clean_dir, split_path, tuple(params.modalities), dims)
    shape = model_config(params)
    parts = {}
    for name in ("train", "val"):
        chosen = rows[rows["split"] == name]
        if chosen.empty or chosen["label"].nunique() < (2 if name == "train" else 1):
            kind = "radiographs" if dims == 2 else "volumes"
            raise InputError(
                f"the {name} split has no usable {kind} of modalities {params.modalities} with both labels; "
                f"check train.modalities and train.spatial_size against data/clean/series.parquet."
            )
        parts[name] = (load_images(clean_dir, chosen, shape, desc=name), chosen["label"].to_numpy())
    return from_arrays(params, *parts["train"], *parts["val"])


def fingerprint(params: TrainParams, config: ModelConfig, data: TrainData) -> str:
    """Hash of the knobs, the model config and the exact input tensors: checkpoints resume only on a match."""
    # the time limit decides where a run stops, not what it computes: raising it resumes the run;
    # calibration is fitted after training, so changing it re-fits two numbers, not the networks
    digest = hashlib.sha256(params.model_dump_json(exclude={"resume", "max_minutes", "calibration"}).encode())
    digest.update(repr(sorted(config.to_dict().items())).encode())
    for tensor in (data.train_images, data.train_labels, data.val_images):
        digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(data.val_labels).tobytes())
    return digest.hexdigest()
