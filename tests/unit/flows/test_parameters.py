"""Flow parameters: form fields and `--set` strings become validated dotted overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.parameters import RetrainParameters, parameters_from, parse_assignment, validated_overrides
from radflow.errors import ConfigError


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 12\n  learning_rate: 0.001\n")
    return path


def test_values_are_read_as_yaml() -> None:
    assert parse_assignment("train.epochs=3") == ("train.epochs", 3)
    assert parse_assignment("train.modalities=[CR, DX]") == ("train.modalities", ["CR", "DX"])
    assert parse_assignment(" train.network = resnet18") == ("train.network", "resnet18")


def test_an_item_without_equals_is_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"^override 'train.epochs' is not key=value; write it like"):
        parameters_from(["train.epochs"])


def test_overrides_are_validated_and_normalised(params_file: Path) -> None:
    parameters = RetrainParameters(train_epochs=2, set=["train.learning_rate=1e-2", "ingest.source=/dicom"])

    overrides = validated_overrides(params_file, parameters)

    assert overrides == {"train.epochs": 2, "train.learning_rate": 0.01, "ingest.source": "/dicom"}


def test_set_wins_over_a_form_field(params_file: Path) -> None:
    parameters = RetrainParameters(train_epochs=2, set=["train.epochs=5"])
    assert validated_overrides(params_file, parameters) == {"train.epochs": 5}


def test_a_misspelled_key_names_itself(params_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"'train.epochz' is not a known key"):
        validated_overrides(params_file, parameters_from(["train.epochz=3"]))


def test_a_wrong_type_names_the_key(params_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"'train.epochs' is invalid"):
        validated_overrides(params_file, parameters_from(["train.epochs=many"]))


def test_the_promotion_policy_field_is_checked_by_params_yaml(params_file: Path) -> None:
    assert validated_overrides(params_file, RetrainParameters(register_promote="approve")) == {
        "register.promote": "approve"
    }
    with pytest.raises(ConfigError, match=r"'register.promote' is invalid"):
        validated_overrides(params_file, RetrainParameters(register_promote="always"))


def test_the_path_redaction_field_takes_true_false_or_all(params_file: Path) -> None:
    for given, read in (("all", "all"), ("true", True), ("False", False)):
        parameters = RetrainParameters(ingest_redact_paths=given)
        assert validated_overrides(params_file, parameters) == {"ingest.redact_paths": read}
    with pytest.raises(ConfigError, match=r"'ingest.redact_paths' is invalid.*true, false or all"):
        validated_overrides(params_file, RetrainParameters(ingest_redact_paths="names"))
