"""params.yaml validation: unknown keys and wrong types become one sentence naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from radflow.config import TrainParams, load_params, load_section
from radflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.train.epochs >= 1


@pytest.mark.parametrize(
    "recipe", sorted((ROOT / "configs" / "medmnist").glob("*.yaml")), ids=lambda p: p.stem
)
def test_benchmark_recipes_are_complete_valid_params(recipe: Path) -> None:
    """Each recipe replaces params.yaml whole: every stage's section present (pacs is optional), every key
    known, predefined splits, and a registry name other than the demo's (so the gate never compares them)."""
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = yaml.safe_load(recipe.read_text())
    stages = set(shipped) - {"pacs"}
    assert stages <= set(raw), f"{recipe.name} lacks {sorted(stages - set(raw))}"
    params = load_params(recipe)
    assert params.split.strategy == "predefined"
    assert params.register.model != shipped["register"]["model"]


def test_misspelled_key_names_the_key_and_the_known_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, {"train": {"epocs": 3}})
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert "'train.epocs' is not a known key" in message
    assert "epochs" in message
    assert "\n" not in message


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'trian' is not a known key"):
        load_params(_write(tmp_path, {"trian": {}}))


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'train.epochs' is invalid.*'ten'"):
        load_params(_write(tmp_path, {"train": {"epochs": "ten"}}))


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {})
    assert load_params(path, {"train.epochs": 3}).train.epochs == 3
    with pytest.raises(ConfigError, match=r"'train\.epoch' is not a known key"):
        load_params(path, {"train.epoch": 3})


def test_section_is_frozen(tmp_path: Path) -> None:
    section = load_section("train", TrainParams, _write(tmp_path, {}))
    with pytest.raises(ValueError):
        section.epochs = 99  # type: ignore[misc]


def test_cli_prints_one_sentence_and_exits_non_zero(tmp_path: Path) -> None:
    path = _write(tmp_path, {"evaluate": {"bootstrapp": 10}})
    proc = subprocess.run(
        [sys.executable, "-m", "radflow.cli", "check-params", "--params", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'evaluate.bootstrapp' is not a known key" in lines[0]


def test_redact_paths_takes_true_false_or_all(tmp_path: Path) -> None:
    for given, read in ((True, True), (False, False), ("all", "all")):
        assert load_params(_write(tmp_path, {"ingest": {"redact_paths": given}})).ingest.redact_paths == read
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, {"ingest": {"redact_paths": "names"}}))
    assert "'ingest.redact_paths' is invalid" in str(err.value) and "\n" not in str(err.value)
