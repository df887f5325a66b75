"""Atomic saves, fingerprint-guarded resumption and the model file evaluation loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from radflow.models.checkpoint import load_checkpoint, load_lineage, load_model, save_atomic, save_model
from radflow.models.config import ModelConfig
from radflow.models.networks import build_network
from radflow.models.predict import predict_proba


def test_checkpoint_resumes_only_with_the_same_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "ck" / "last.pt"
    save_atomic({"fingerprint": "abc", "epoch": 3}, path)
    assert load_checkpoint(path, "abc") == {"fingerprint": "abc", "epoch": 3}
    assert load_checkpoint(path, "other") is None
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind
    path.write_bytes(b"truncated")
    assert load_checkpoint(path, "abc") is None


def test_model_file_rebuilds_the_same_predictions(tmp_path: Path) -> None:
    config = ModelConfig(
        network="small_cnn", spatial_size=(16, 16), modalities=("CR",), width=4, tta_flip_dims=(1,)
    )
    model = build_network(config).eval()
    save_model(tmp_path / "model.pt", model.state_dict(), config, {"seed": 0, "best_epoch": 2})
    loaded, loaded_config = load_model(tmp_path / "model.pt")
    images = np.random.default_rng(0).random((5, 1, 16, 16), dtype=np.float32)
    assert loaded_config == config and not loaded.training
    expected = predict_proba(model, images, flip_dims=(1,))
    np.testing.assert_allclose(predict_proba(loaded, images, batch_size=2), expected, rtol=1e-5)
    assert load_lineage(tmp_path / "model.pt")["best_epoch"] == 2


def test_predict_proba_flip_averaging_is_flip_invariant() -> None:
    config = ModelConfig(network="small_cnn", spatial_size=(8, 8), modalities=("CR",), width=4)
    model = build_network(config).eval()
    images = torch.rand(3, 1, 8, 8).numpy()
    flipped = images[..., ::-1].copy()
    a, b = predict_proba(model, images, flip_dims=(1,)), predict_proba(model, flipped, flip_dims=(1,))
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert ((a > 0) & (a < 1)).all()
