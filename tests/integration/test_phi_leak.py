"""No PHI value of the input may reach any output byte, table cell, model field or log line.

The synthetic cohort fills every keyword of radflow.synth.phi.PHI_KEYWORDS with distinctive values.
`phi_values` reads them back from every input header, together with every DA/DT/TM value anywhere in
the dataset (sequences included), the Study/Series/SOP Instance and Frame of Reference UIDs. The rule
for what is searched (documented so a reviewer can judge false alarms and misses):

- values are compared case-insensitively, whole, after stripping spaces and NULs;
- person names also as each `^`-separated component (a surname alone is still PHI);
- dates (DA, and the date part of DT) also as YYYY-MM-DD and YYYY/MM/DD, the forms code writes;
- skipped: values under 4 characters (e.g. 'M', 'F', '045Y' is kept but 'Dr' is not), generic words
  (GENERIC), and TM values under 6 characters (HHMM alone collides with ordinary numbers).

`find_leaks` scans each output file three ways: its raw bytes (latin-1, lower-cased), its decoded
tables (every parquet cell as text, since parquet pages are compressed) and, for .pt files, every
non-tensor value of the checkpoint (config, lineage). Captured stdout/stderr (including worker
processes, via capfd) and log records are scanned as text.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset

from radflow.synth.phi import PHI_KEYWORDS, UID_KEYWORDS

GENERIC = {"NONE", "UNKNOWN", "ANONYMOUS", "CHEST", "OTHER", "YES", "NO"}
MIN_LENGTH = 4
MIN_TIME_LENGTH = 6


def _date_forms(value: str) -> set[str]:
    """A DA (or the date part of a DT) as written and in the two ISO-like forms code emits."""
    day = value[:8]
    if len(day) == 8 and day.isdigit():
        return {value, day, f"{day[:4]}-{day[4:6]}-{day[6:]}", f"{day[:4]}/{day[4:6]}/{day[6:]}"}
    return {value}


def _values_of(ds: Dataset) -> Iterator[tuple[str, str]]:
    """(keyword, value) for every PHI-bearing element of one dataset, recursing into sequences."""
    wanted = set(PHI_KEYWORDS) | set(UID_KEYWORDS) | {"PatientID"}
    for elem in ds.iterall():
        if elem.keyword not in wanted and elem.VR not in ("DA", "DT", "TM"):
            continue
        values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        for value in values:
            text = str(value).strip().strip("\x00").strip()
            if elem.VR == "TM" and len(text) < MIN_TIME_LENGTH:
                continue
            forms = _date_forms(text) if elem.VR in ("DA", "DT") else {text}
            if elem.VR == "PN":
                forms |= set(text.split("^"))
            for form in forms:
                yield elem.keyword or elem.VR, form


def phi_values(source: Path) -> dict[str, str]:
    """Lower-cased PHI value → its keywords ('StudyDate/SeriesDate'), over every readable header."""
    found: dict[str, set[str]] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # labels.csv, defects.json, the marker: not DICOM, no header values
            continue
        for keyword, value in _values_of(ds):
            if len(value) >= MIN_LENGTH and value.upper() not in GENERIC:
                found.setdefault(value.lower(), set()).add(keyword)
    return {value: "/".join(sorted(keywords)) for value, keywords in found.items()}


def _plain_values(obj: Any) -> Iterator[str]:
    """Every key and non-tensor leaf of a nested checkpoint structure, as text."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _plain_values(v)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from _plain_values(v)
    elif not hasattr(obj, "shape"):  # tensors and arrays are numbers; their raw bytes are scanned anyway
        yield str(obj)


def _views(path: Path) -> Iterator[tuple[str, str]]:
    """(view name, lower-cased text) of one output file: raw bytes, then decoded content where it hides."""
    raw = path.read_bytes()
    yield "bytes", raw.decode("latin-1").lower()
    if path.suffix == ".gz":
        yield "gunzip", gzip.decompress(raw).decode("latin-1").lower()
    if path.suffix == ".parquet":
        table = pd.read_parquet(io.BytesIO(raw))
        cells = [str(c) for c in table.columns] + [str(v) for v in table.astype(str).to_numpy().ravel()]
        yield "cells", "\n".join(cells).lower()
    if path.suffix in (".pt", ".pth", ".ckpt"):
        import torch

        yield (
            "checkpoint",
            "\n".join(
                _plain_values(torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False))
            ).lower(),
        )


def _pattern(values: dict[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


def find_leaks(outputs: list[Path], texts: dict[str, str], values: dict[str, str]) -> list[str]:
    """'<keyword> value found in <where>' for every PHI value in any output file or captured text."""
    pattern, leaks = _pattern(values), []
    for root in outputs:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            for view, text in _views(path):
                leaks += [
                    f"{values[m]} {m!r} in {path.name} ({view})" for m in sorted(set(pattern.findall(text)))
                ]
    for where, text in texts.items():
        leaks += [f"{values[m]} {m!r} in {where}" for m in sorted(set(pattern.findall(text.lower())))]
    return leaks


# ---- the scanner itself can fail: planted values are found in every kind of file it reads ----------


def test_scanner_finds_values_planted_in_each_kind_of_output(tmp_path: Path) -> None:
    values = {"thornbury": "PatientName", "mrn0012345": "PatientID", "2015-07-22": "StudyDate"}
    clean_dir = tmp_path / "out"
    clean_dir.mkdir()
    pd.DataFrame({"series_key": ["se-1"], "notes": ["ok"]}).to_parquet(clean_dir / "series.parquet")
    np.save(clean_dir / "a.npy", np.zeros((4, 4), np.float32))
    assert find_leaks([clean_dir], {"log": "clean: 3 files"}, values) == []
    # gzip pages, no min/max statistics: the planted cell is not in the raw bytes, only in the cells.
    pd.DataFrame({"series_key": ["se-1"], "notes": [["time point 1", "MRN0012345"]]}).to_parquet(
        clean_dir / "series.parquet", compression="gzip", write_statistics=False
    )
    assert b"mrn0012345" not in (clean_dir / "series.parquet").read_bytes().lower()
    assert find_leaks([clean_dir], {}, values) == ["PatientID 'mrn0012345' in series.parquet (cells)"]
    import torch

    torch.save(
        {"state_dict": {"w": torch.zeros(2)}, "config": {"site": "x"}, "lineage": {"study": "2015-07-22"}},
        tmp_path / "model.pt",
    )
    assert any(
        "StudyDate" in leak and "model.pt" in leak for leak in find_leaks([tmp_path / "model.pt"], {}, values)
    )
    assert find_leaks([], {"stderr": "reading THORNBURY^Eleanor"}, values) == [
        "PatientName 'thornbury' in stderr"
    ]


def test_phi_values_keep_names_dates_and_uids_and_skip_generic(tmp_path: Path) -> None:
    from fixtures.scanner_cases_special import case_signed12

    case_signed12(tmp_path)
    values = phi_values(tmp_path)
    assert {
        "scannercase",
        "adversa",
        "scannercase^adversa",
        "scn-case-0042",
        "19610407",
        "1961-04-07",
        "accscn77231",
        "fixture valley hospital",
        "101500",
    } <= set(values)
    assert not {"f", "063y", "hfs", "chest"} & set(values)  # short or generic: not searched
    assert any(v.startswith("2.25.") for v in values)  # UIDs


# ---- the whole pipeline on the synthetic cohort ------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radflow.synth.cohort import write_cohort

    root = tmp_path_factory.mktemp("phi") / "cohort"
    write_cohort(root, patients=6, seed=11)
    return root


def _run_stages(cohort: Path, work: Path) -> list[Path]:
    """ingest → clean → split → train (1 epoch) → evaluate (10 bootstraps); every output folder."""
    from radflow.config import CleanParams, EvaluateParams, IngestParams, SplitParams, TrainParams
    from tasks import clean, evaluate, ingest, split, train

    print(ingest.run(IngestParams(source=cohort, workers=2), cohort, work / "ingest").describe())
    print(clean.run(CleanParams(workers=2), work / "ingest", work / "clean").describe())
    print(
        split.run(
            SplitParams(labels=cohort / "labels.csv"), work / "clean", cohort / "labels.csv", work / "split"
        ).describe()
    )
    split_path = work / "split" / "split.parquet"
    trained = train.run(
        TrainParams(epochs=1, batch_size=8, device="cpu", amp=False),
        work / "clean",
        split_path,
        work / "models",
        work / "checkpoints",
        work / "reports" / "train",
    )
    print(trained.describe())
    print(
        evaluate.run(
            EvaluateParams(bootstrap=10), trained.model_path, work / "clean", split_path, work / "reports"
        ).describe()
    )
    _write_model_card(work)
    return [work / d for d in ("ingest", "clean", "split", "models", "checkpoints", "reports")]


def _write_model_card(work: Path) -> None:
    """reports/model_card.md as registration writes it, from these outputs laid out as in a project."""
    from radflow.config import RegisterParams
    from radflow.registry.card import CardInputs, render

    layout = work / "project"
    (layout / "data").mkdir(parents=True)
    for link, target in (("reports", "reports"), ("models", "models"), ("data/split", "split")):
        (layout / link).symlink_to(work / target)
    inputs = CardInputs.read(layout, code_commit=None)
    assert inputs.test and inputs.subgroups and inputs.data_counts and inputs.model_config
    card = render("radflow-model", "v0.1.0", "registered", RegisterParams().intended_use, {}, inputs)
    (work / "reports" / "model_card.md").write_text(card)


@pytest.mark.slow
def test_no_input_phi_value_reaches_any_output_or_log(
    cohort: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    values = phi_values(cohort)
    kinds = {k for keywords in values.values() for k in keywords.split("/")}
    assert set(PHI_KEYWORDS) <= kinds and {"StudyInstanceUID", "SOPInstanceUID", "StudyTime"} <= kinds
    caplog.set_level(logging.DEBUG)
    outputs = _run_stages(cohort, tmp_path)
    captured = capfd.readouterr()
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    written = [p for d in outputs for p in d.rglob("*") if p.is_file()]
    assert {".parquet", ".npy", ".pt", ".json", ".csv", ".html", ".md"} <= {p.suffix for p in written}
    leaks = find_leaks(outputs, {"stdout": captured.out, "stderr": captured.err, "logs": logs}, values)
    assert not leaks, f"{len(leaks)} PHI value(s) leaked:\n" + "\n".join(leaks[:40])
    # The same scan fails on a copy of a real output with one value planted (gzip hides it from raw bytes).
    planted = tmp_path / "planted"
    planted.mkdir()
    series = pd.read_parquet(tmp_path / "clean" / "series.parquet")
    victim = next(v for v, k in values.items() if k == "AccessionNumber")
    series.loc[0, "notes"] = f"{series.loc[0, 'notes']} {victim.upper()}"
    series.to_parquet(planted / "series.parquet", compression="gzip", write_statistics=False)
    shutil.copy(tmp_path / "clean" / "dispositions.parquet", planted / "dispositions.parquet")
    assert find_leaks([planted], {}, values) == [f"{values[victim]} {victim!r} in series.parquet (cells)"]


def _phi_named_export(cohort: Path, tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    """A copy of the cohort exported PACS-style: '<PatientID>_<Surname>_<Given>/<StudyDate>/', a file
    named by its SOP Instance UID. Returns the source, the values planted in paths, the renamed paths."""
    src = tmp_path / "export"
    shutil.copytree(cohort, src)
    first = src / "p001" / "study1" / "series1" / "IM0001.dcm"
    header = pydicom.dcmread(first, stop_before_pixels=True)
    surname, given = str(header.PatientName).split("^")[:2]
    day = str(header.StudyDate)
    first.rename(first.with_name(f"{header.SOPInstanceUID}.dcm"))
    (src / "p001" / "study1").rename(src / "p001" / f"{day[:4]}-{day[4:6]}-{day[6:]}")
    folder = f"{header.PatientID}_{surname}_{given}"
    (src / "p001").rename(src / folder)
    # Dates no header holds (the export's scan date), written out and glued to letters
    other = sorted(p for p in src.iterdir() if p.is_dir() and p.name != folder)[0]
    study = sorted(p for p in other.iterdir() if p.is_dir())[0]
    series = sorted(p for p in study.iterdir() if p.is_dir())[0]
    series.rename(series.with_name("11.06.1987"))
    study.rename(study.with_name("CT19870611"))
    # Another patient's folder: surname and PatientID glued together, without a separator
    theirs = pydicom.dcmread(next(other.rglob("*.dcm")), stop_before_pixels=True)
    their_surname, their_id = str(theirs.PatientName).split("^")[0].replace("-", ""), str(theirs.PatientID)
    # ... and one of their files named by the PatientID's number (without 'MRN') glued to a counter
    number = "".join(c for c in their_id if c.isdigit())
    assert len(number) >= 6, their_id
    counted = sorted(other.rglob("*.dcm"))[-1]
    counted.rename(counted.with_name(f"{number}0017.dcm"))
    other.rename(other.with_name(f"{their_surname}{their_id}"))
    values = {
        "19870611": "a date no header holds, glued in a folder name",
        "11.06.1987": "a date no header holds, as a folder name",
        str(header.PatientID).lower(): "PatientID in a folder name",
        surname.lower(): "PatientName in a folder name",
        given.lower(): "PatientName in a folder name",
        f"{day[:4]}-{day[4:6]}-{day[6:]}": "StudyDate in a folder name",
        str(header.SOPInstanceUID).lower(): "SOPInstanceUID as a file name",
        their_id.lower(): "PatientID glued to the surname in a folder name",
        their_surname.lower(): "a surname glued to the PatientID in a folder name",
        number: "the PatientID's number glued to a counter in a file name",
    }
    named = (src / folder, src / f"{their_surname}{their_id}")
    renamed = sorted(p.relative_to(src).as_posix() for d in named for p in d.rglob("*") if p.is_file())
    return src, values, renamed


@pytest.mark.slow
def test_phi_in_folder_names_does_not_reach_outputs(cohort: Path, tmp_path: Path) -> None:
    from radflow.config import CleanParams, IngestParams
    from tasks import clean, ingest

    src, values, renamed = _phi_named_export(cohort, tmp_path)
    params = IngestParams(source=src, workers=1)  # redaction is the default: nobody has to ask for it
    ingest.run(params, src, tmp_path / "ingest")
    result = clean.run(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "clean")
    leaks = find_leaks([tmp_path / "ingest", tmp_path / "clean"], {"summary": result.describe()}, values)
    assert not leaks, "\n".join(leaks)
    # Clean read the files through their redacted paths: the patient's images still became series.
    table = pd.read_parquet(tmp_path / "clean" / "dispositions.parquet")
    mine = table[table.path.str.startswith("id-")]
    assert len(mine) == len(renamed) and "accepted" in set(mine.disposition)
    assert "UNREADABLE" not in set(table.reason)  # every redacted path found its file
    assert "MISSING_SLICES" in set(mine.reason)  # the cohort's gapped series: judged on file contents


@pytest.mark.slow
def test_free_text_in_folder_names_is_hidden_when_every_name_is(cohort: Path, tmp_path: Path) -> None:
    """redact_paths: all — a note and an ID that no header holds leave no trace either."""
    from radflow.config import CleanParams, IngestParams
    from tasks import clean, ingest

    src, values, renamed = _phi_named_export(cohort, tmp_path)
    folder = src / next(p for p in renamed if "_" in p.split("/")[0]).split("/")[0]
    noted = folder.rename(folder.with_name(f"{folder.name} reread Dr Hausmann MRN-998877"))
    values |= {"hausmann": "a clinician's name no header holds", "998877": "an ID no header holds"}
    ingest.run(IngestParams(source=src, workers=1, redact_paths="all"), src, tmp_path / "ingest")
    result = clean.run(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "clean")
    leaks = find_leaks([tmp_path / "ingest", tmp_path / "clean"], {"summary": result.describe()}, values)
    assert not leaks, "\n".join(leaks)
    table = pd.read_parquet(tmp_path / "clean" / "dispositions.parquet")
    assert "UNREADABLE" not in set(table.reason)  # every hidden path found its file
    files = [p for p in src.rglob("*") if p.is_file()]
    manifest = pd.read_parquet(tmp_path / "ingest" / "manifest.parquet")
    assert len(table) == len(manifest) == len(files) and manifest.path_key.is_unique
    assert len([p for p in files if noted in p.parents]) > 0
    assert table.path.str.fullmatch(r"id-[0-9a-f]{8}(/id-[0-9a-f]{8})*(\.dcm|\.csv|\.json)?").all()
    assert {"accepted", "quarantined"} <= set(table.disposition)  # judged on file contents, as before


@pytest.mark.slow
def test_paths_are_the_real_ones_when_redaction_is_off(cohort: Path, tmp_path: Path) -> None:
    from radflow.config import CleanParams, IngestParams
    from tasks import clean, ingest

    src, _, renamed = _phi_named_export(cohort, tmp_path)
    ingest.run(IngestParams(source=src, workers=1, redact_paths=False), src, tmp_path / "ingest")
    clean.run(CleanParams(workers=1), tmp_path / "ingest", tmp_path / "clean")
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert pd.read_parquet(tmp_path / "ingest" / "manifest.parquet").path.tolist() == files
    assert set(renamed) <= set(pd.read_parquet(tmp_path / "clean" / "dispositions.parquet").path)
    assert not (tmp_path / "ingest" / "redaction.json").exists()
    assert "redact_paths" not in (tmp_path / "ingest" / "source.json").read_text()


MALFORMED = {
    "PatientBirthDate": "1955-09-05",  # DA with separators
    "StudyDate": "2015/07/22",
    "PatientAge": "SIXTY-THREE",
    "AccessionNumber": "ACCESSION-TOO-LONG-998877",  # over SH's 16 characters
    "PatientID": "PID-" + "7" * 70,  # over LO's 64
    "PatientName": "Verylongsurname" * 5 + "^Zebedee",  # a component over 64
}


@pytest.mark.slow
def test_malformed_phi_values_do_not_leak_through_warnings(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """pydicom warns quoting invalid values ('Invalid value for VR DA: ...'): none may reach a log."""
    import warnings

    from fixtures.dicom_writers import AXIAL, ct_slices, stack, uid

    from radflow.config import CleanParams, IngestParams
    from tasks import clean, ingest

    src = tmp_path / "src"
    with warnings.catch_warnings():  # the writer's own warnings are not the pipeline's
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            ct_slices(
                src,
                uid(src, "st"),
                uid(src, "se"),
                stack([2.0 * k for k in range(5)]),
                AXIAL,
                2.0,
                **MALFORMED,
            )
        finally:
            logging.disable(logging.NOTSET)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)
    print(ingest.run(IngestParams(source=src, workers=2), src, tmp_path / "ingest").describe())
    print(clean.run(CleanParams(workers=2), tmp_path / "ingest", tmp_path / "clean").describe())
    captured = capfd.readouterr()
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    values = {v.lower(): k for k, v in MALFORMED.items()} | {
        "verylongsurname": "PatientName",
        "zebedee": "PatientName",
    }
    texts = {"stdout": captured.out, "stderr": captured.err, "logs": logs}
    leaks = find_leaks([tmp_path / "ingest", tmp_path / "clean"], texts, values)
    assert not leaks, "\n".join(leaks)
