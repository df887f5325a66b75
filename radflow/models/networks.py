"""Build the classification network named in ModelConfig from MONAI's networks (2D or 3D)."""

from __future__ import annotations

import torch
from monai.networks.nets import Classifier, DenseNet121, ResNet

from radflow.models.config import ModelConfig

_RESNET_LAYERS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2]}


class Ensemble(torch.nn.Module):
    """Mean logit of several networks of one architecture (members differ only in seed)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1) averaged logits."""
        return torch.stack([member(images) for member in self.members]).mean(dim=0)


def build_model(config: ModelConfig) -> torch.nn.Module:
    """The saved model's module: one network, or an Ensemble of config.ensemble networks."""
    if config.ensemble <= 1:
        return build_network(config)
    return Ensemble([build_network(config) for _ in range(config.ensemble)])


def build_network(config: ModelConfig) -> torch.nn.Module:
    """A network with one output logit for `config` (spatial_dims from len(spatial_size))."""
    dims = config.spatial_dims
    if config.network in _RESNET_LAYERS:
        return _resnet(config, _RESNET_LAYERS[config.network])
    if config.network == "densenet121":
        return DenseNet121(
            spatial_dims=dims, in_channels=config.in_channels, out_channels=1, dropout_prob=config.dropout
        )
    if config.network == "small_cnn":
        return _small_cnn(config)
    raise ValueError(f"unknown network {config.network!r}")


def _resnet(config: ModelConfig, layers: list[int]) -> torch.nn.Module:
    # Small inputs (28-64 px): a 3x3 stem without max-pooling keeps early resolution, as in
    # MedMNIST's ResNet-18 (28); the width sets the first stage's channels.
    w = config.width
    net = ResNet(
        block="basic",
        layers=layers,
        block_inplanes=[w, 2 * w, 4 * w, 8 * w],
        spatial_dims=config.spatial_dims,
        n_input_channels=config.in_channels,
        conv1_t_size=3,
        conv1_t_stride=config.stem_stride,
        no_max_pool=True,
        num_classes=1,
    )
    if config.dropout > 0 and net.fc is not None:
        net.fc = torch.nn.Sequential(torch.nn.Dropout(config.dropout), net.fc)  # type: ignore[assignment]
    return net


def _small_cnn(config: ModelConfig) -> torch.nn.Module:
    """MONAI's residual Classifier: three stride-2 stages of width w, 2w, 4w."""
    w = config.width
    return Classifier(
        in_shape=(config.in_channels, *config.spatial_size),
        classes=1,
        channels=(w, 2 * w, 4 * w),
        strides=(2, 2, 2),
        num_res_units=1,
        act="RELU",
        norm="BATCH",
        dropout=config.dropout or None,
    )
