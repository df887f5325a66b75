"""labels.csv parsing and the study-key mapping shared with the clean stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from radflow.data.labels import read_labels, study_key
from radflow.dicom.deid import pseudonym
from radflow.errors import InputError

KEY = b"test-key"


def test_study_key_is_the_deid_pseudonym_of_the_stripped_uid() -> None:
    assert study_key(" 1.2.3\x00", KEY) == pseudonym("study", "1.2.3", KEY) == study_key("1.2.3", KEY)
    assert study_key("1.2.3", KEY) != study_key("1.2.3", b"other")


def test_read_labels_hashes_uids_and_keeps_split(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("StudyInstanceUID,label,split\n1.2.3,1,Train\n1.2.4,0,val\n1.2.3,1,train\n")
    labels = read_labels(path, KEY, need_split=True)
    assert labels.to_dict("records") == [
        {"study_key": study_key("1.2.3", KEY), "label": 1, "split": "train"},
        {"study_key": study_key("1.2.4", KEY), "label": 0, "split": "val"},
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("StudyInstanceUID,label\n1.2.3,yes\n", "not 0 or 1"),
        ("StudyInstanceUID,lbl\n1.2.3,1\n", "lacks the column"),
        ("StudyInstanceUID,label\n1.2.3,1\n1.2.3,0\n", "appear twice"),
        ("StudyInstanceUID,label,split\n1.2.3,1,holdout\n", "other than train"),
    ],
)
def test_bad_labels_are_one_sentence_without_uids(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_labels(path, KEY, need_split="split" in text)
    assert "1.2.3" not in str(err.value)


def test_missing_labels_file_names_the_param(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"split\.labels"):
        read_labels(tmp_path / "nope.csv", KEY)
