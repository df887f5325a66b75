"""Knobs of the train stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from radflow.config.base import Section


class TrainParams(Section):
    """What the model sees and how it is fitted."""

    modalities: list[str] = Field(["CR", "DX"], description="Series of these modalities are the model's inputs.")
    spatial_size: list[int] = Field([64, 64], min_length=2, max_length=3, description="Input size: 2 values for 2D, 3 for 3D.")
    network: Literal["densenet121", "resnet18", "resnet10", "small_cnn"] = "small_cnn"
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="Mixed precision when training on CUDA; ignored on CPU.")
