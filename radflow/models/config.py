"""ModelConfig: everything needed to rebuild a network and preprocess its inputs, saved with the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """How a model was built and what its inputs look like; stored in models/model.pt."""

    network: str
    spatial_size: tuple[int, ...]
    modalities: tuple[str, ...]
    width: int = 32
    stem_stride: int = 1
    dropout: float = 0.0
    in_channels: int = 1
    # volumes: the HU window mapped to [0, 1]; radiographs arrive in [0, 1] from the clean stage
    ct_window: tuple[float, float] = (-1000.0, 1000.0)
    # standardisation measured on the training split, applied after windowing and resizing
    mean: float = 0.0
    std: float = 1.0
    tta_flip_dims: tuple[int, ...] = field(default_factory=tuple)
    # members trained from consecutive seeds whose logits are averaged (1 = a single network)
    ensemble: int = 1
    # (scale, shift): probabilities are sigmoid(scale * logit + shift), Platt scaling fitted on the
    # validation split by the train stage (train.calibration); (1, 0) leaves the logits as they are
    calibration: tuple[float, float] = (1.0, 0.0)

    @property
    def spatial_dims(self) -> int:
        """2 for radiographs, 3 for volumes."""
        return len(self.spatial_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so the checkpoint loads with torch.load(weights_only=True)."""
        out = asdict(self)
        out["spatial_dims"] = self.spatial_dims
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict; unknown keys (e.g. the derived spatial_dims) are ignored."""
        names = set(cls.__dataclass_fields__)
        kept: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        kept = {k: v for k, v in kept.items() if k in names}
        return cls(**kept)
