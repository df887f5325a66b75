"""The model card's Markdown drawn from a run's files: settings read as people write them."""

from __future__ import annotations

import json
from pathlib import Path

from radflow.registry.card import CardInputs, render


def _inputs(**changes: object) -> CardInputs:
    base: dict[str, object] = {
        "test": {},
        "operating_point": {},
        "subgroups": [],
        "robustness": [],
        "data_counts": [],
        "train_params": {"network": "resnet18", "epochs": 20},
        "model_config": {"network": "resnet18", "tta_flip_dims": [], "spatial_size": [28, 28]},
        "training": {"max_minutes": None, "out_of_time": False, "best_val_auc": 0.987654321},
        "hashes": {},
        "code_commit": None,
    }
    base.update(changes)
    return CardInputs(**base)  # type: ignore[arg-type]


def test_model_settings_read_none_and_yes_no_rather_than_python_reprs() -> None:
    card = render("m", "v1.0.0", "registered", "research only", {}, _inputs())
    assert "| config.tta_flip_dims | none |" in card
    assert "| config.spatial_size | 28, 28 |" in card
    assert "| training.max_minutes | none |" in card
    assert "| training.out_of_time | no |" in card
    assert "| training.best_val_auc | 0.987654 |" in card
    assert "None" not in card and "False" not in card
    stopped = render(
        "m", "v1.0.0", "registered", "research only", {}, _inputs(training={"out_of_time": True})
    )
    assert "| training.out_of_time | yes |" in stopped


def test_provenance_names_the_de_identification_key_by_its_fingerprint(tmp_path: Path) -> None:
    source = tmp_path / "data" / "ingest" / "source.json"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps({"root": "dicom", "key_fingerprint": "0123abcd4567ef89", "scan_version": 1}))
    inputs = CardInputs.read(tmp_path, code_commit=None)
    assert inputs.key_fingerprint == "0123abcd4567ef89"
    card = render("m", "v1.0.0", "registered", "research only", {}, inputs)
    assert "| de-identification key (fingerprint) | `0123abcd4567ef89` |" in card
    assert "under the same de-identification key" in card
    without = render("m", "v1.0.0", "registered", "research only", {}, _inputs())
    assert "de-identification key" not in without  # a run without ingest's record says nothing of a key
