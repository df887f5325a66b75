"""Knobs of the train stage: inputs, network, optimisation, augmentation, resumption."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from radflow.config.base import Section

# MONAI's DenseNet121 halves its input five times (stride-2 7x7 convolution and 3x3 max-pool, then three
# 2x2 average-pool transitions): 29 px leaves 15, 8, 4, 2, 1; 28 px leaves 0 and torch's pooling fails
# (tests/unit/radflow/models/test_networks.py checks the bound against the network itself).
DENSENET_MIN_SIZE = 29


class AugmentParams(Section):
    """Random training-time perturbations, applied per sample on whole batches (never at evaluation)."""

    flip_axes: list[int] = Field(
        default=[], description="Spatial axes (0 = rows/slices first) flipped with probability 0.5."
    )
    rotate_deg: float = Field(
        default=0.0, ge=0, le=180, description="Largest in-plane rotation, degrees (3D: about each axis)."
    )
    scale: float = Field(default=0.0, ge=0, lt=1, description="Largest relative zoom in or out.")
    translate: float = Field(
        default=0.0, ge=0, lt=1, description="Largest shift as a fraction of the image size."
    )
    noise_std: float = Field(
        default=0.0,
        ge=0,
        description="Standard deviation of added Gaussian noise, in [0, 1] intensity units.",
    )
    contrast: float = Field(
        default=0.0, ge=0, lt=1, description="Largest relative change of contrast about the image mean."
    )
    probability: float = Field(
        default=0.8, ge=0, le=1, description="Chance that a sample gets the affine/noise/contrast change."
    )
    mixup_alpha: float = Field(
        default=0.0,
        ge=0,
        description="Mixup (Zhang et al. 2018): each augmented sample is blended with another of its "
        "batch, image and target alike, by a weight drawn from Beta(alpha, alpha); 0 turns it off.",
    )


class TrainParams(Section):
    """What the model sees and how it is fitted."""

    modalities: list[str] = Field(
        default=["CR", "DX"], description="Series of these modalities are the model's inputs."
    )
    spatial_size: list[int] = Field(
        default=[64, 64], min_length=2, max_length=3, description="Input size: 2 values for 2D, 3 for 3D."
    )
    ct_window: list[float] = Field(
        default=[-1000.0, 1000.0],
        min_length=2,
        max_length=2,
        description="Volume intensity window (HU) mapped to [0, 1].",
    )
    network: Literal["densenet121", "resnet18", "resnet10", "small_cnn"] = Field(
        default="small_cnn",
        description=f"MONAI network; densenet121 needs at least {DENSENET_MIN_SIZE} px on every axis.",
    )
    width: int = Field(
        default=32, ge=4, description="Channels of the first stage (resnet/small_cnn); doubled per stage."
    )
    stem_stride: int = Field(
        default=1, ge=1, le=4, description="Stride of the first convolution (resnet); 1 suits 28-64 px."
    )
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout before the classifier.")
    epochs: int = Field(default=12, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = Field(
        default="cosine", description="Learning-rate schedule per step."
    )
    warmup_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="Share of steps warming up (onecycle only)."
    )
    label_smoothing: float = Field(
        default=0.0, ge=0, lt=0.5, description="Targets pulled towards 0.5 by this much."
    )
    class_balance: Literal["none", "pos_weight", "sampler"] = Field(
        default="pos_weight",
        description="Counter class imbalance by weighting the loss or resampling batches.",
    )
    patience: int = Field(
        default=5, ge=1, description="Epochs without a better validation AUC before stopping early."
    )
    min_epochs: int = Field(
        default=1, ge=1, description="Epochs always run before early stopping may end training."
    )
    select: Literal["best", "last"] = Field(
        default="best",
        description="Weights kept: the epoch with the best validation AUC, or the last epoch run "
        "(less noisy when the validation split is small; early stopping still ends the run).",
    )
    ema_decay: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Validate and keep an exponential moving average of the weights, updated every "
        "step with this decay (e.g. 0.99); 0 keeps the raw weights.",
    )
    ensemble: int = Field(
        default=1, ge=1, le=16, description="Networks trained from seeds seed, seed+1, ...; logits averaged."
    )
    tta_flip: bool = Field(
        default=False, description="Average predictions over the augmentation flips at evaluation."
    )
    calibration: Literal["platt", "none"] = Field(
        default="platt",
        description="Probabilities the model reports: platt fits sigmoid(scale * logit + shift) to the "
        "validation split after training (monotone: AUC and rankings unchanged; it undoes the high "
        "probabilities a class-balanced loss gives), none keeps the raw sigmoid of the logit.",
    )
    max_minutes: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Wall-clock limit on training's epochs, all ensemble networks together. Networks train one "
            "after another, each to its full schedule while the time lasts, else to a schedule shortened "
            "to the epochs that fit (its first epoch's length decides), so that the learning rate still "
            "anneals; a network after the first with under half its schedule's time left is not trained "
            "(the model averages those that were). An epoch that would end past the limit is not "
            "started. Where it bites depends on the machine's speed; raising it continues a stopped run "
            "from its checkpoint, or trains a shortened one again in full. null: no limit."
        ),
    )
    augment: AugmentParams = AugmentParams()
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(default=True, description="Mixed precision when training on CUDA; ignored on CPU.")
    processes: int = Field(
        default=1,
        ge=0,
        le=64,
        description=(
            "Training processes (PyTorch DDP under torchrun): one per GPU, or CPU processes sharing the "
            "cores; 0 means one per visible GPU; 1 trains in the stage's own process."
        ),
    )
    resume: bool = Field(
        default=True, description="Resume from checkpoints/train when it matches these params and data."
    )

    @model_validator(mode="after")
    def _flip_axes_exist(self) -> TrainParams:
        dims = len(self.spatial_size)
        if any(axis < 0 or axis >= dims for axis in self.augment.flip_axes):
            raise ValueError(f"train.augment.flip_axes must be spatial axes between 0 and {dims - 1}")
        if self.ct_window[0] >= self.ct_window[1]:
            raise ValueError("train.ct_window must be [low, high] with low < high")
        if self.network == "densenet121" and min(self.spatial_size) < DENSENET_MIN_SIZE:
            raise ValueError(
                "train.network densenet121 halves its input five times and needs every train.spatial_size "
                f"axis to be at least {DENSENET_MIN_SIZE}, not {self.spatial_size}; choose resnet10, "
                "resnet18 or small_cnn for smaller inputs, or a larger spatial_size"
            )
        return self
