"""Redaction of patient identifiers in source paths: windows, forms, idempotence, memo, the source map."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from radflow.dicom import deid
from radflow.dicom.paths import (
    Redactor,
    SourcePaths,
    identifier_forms,
    is_uid_run,
    keyed_paths,
    normalise,
    path_keyer,
    source_paths,
    token_digest,
)
from radflow.errors import ConfigError, InputError

KEY = b"paths-unit-test-key"
SOP = "1.2.840.113619.2.55.3.604688119.969"
VALUES = ["12345", "DOE^JOHN^Q", "20150722", "ACC-9981", SOP, "1.2.840.113619.2.55.3.7"]


def redactor(values: list[str] = VALUES, key: bytes = KEY) -> Redactor:
    return Redactor(key, {token_digest(key, f) for f in identifier_forms(values)})


def tag(value: str, key: bytes = KEY) -> str:
    """The token a redacted identifier becomes."""
    return f"id-{token_digest(key, normalise(value))[:8]}"


def test_forms_are_normalised_values_name_components_and_multivalues() -> None:
    assert normalise("Doe, John-Q.") == "doejohnq" and normalise("Müller") == "mller"
    # The plain-ASCII shortcut gives what the rule gives: casefolded, only [a-z0-9] kept.
    for text in (SOP, "MRN12345", "ACC-9981", "1.2.a_B", "", ".", "ÅSE.1", "x\x00y", "Straße"):
        assert normalise(text) == re.sub("[^a-z0-9]", "", text.casefold()), text
    forms = identifier_forms(["DOE^JOHN^Q", "MRN-1\\OLD-77", "19610203"])
    # 'q' is too short; a number of 6 digits or more also gives its prefix form (found inside runs)
    assert forms == {"doejohnq", "doe", "john", "mrn1", "old77", "19610203", "^196102"}
    assert identifier_forms(["MRN9205654"]) == {"mrn9205654", "9205654", "^920565"}  # its number bare
    assert identifier_forms(["AB", "x^Y", ""]) == set()


def test_digest_is_deid_hmac_under_the_key() -> None:
    digest = token_digest(KEY, "doe")
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert digest == deid._digest(KEY, "path-token", "doe").hex()[:16]
    assert token_digest(b"another-key", "doe") != digest


def test_a_folder_named_after_the_patient_is_redacted_token_by_token_or_whole() -> None:
    r = redactor(["12345", "DOE^JOHN"])
    assert r.redact("12345_DOE_JOHN/a.dcm") == f"{tag('12345')}_{tag('doejohn')}/a.dcm"
    # 'John Doe' is not the whole name in order, so each component goes on its own.
    assert r.redact("John Doe") == f"{tag('john')} {tag('doe')}"
    assert r.redact("Doe, John") == tag("doejohn")
    assert redactor().redact("DOE_JOHN_Q") == tag("doejohnq")  # the longest window wins
    assert redactor().redact("DOE_JOHN") == f"{tag('doe')}_{tag('john')}"


def test_dates_with_separators_and_accession_numbers_match() -> None:
    r = redactor()
    assert r.redact("2015-07-22/x") == f"{tag('20150722')}/x"
    assert r.redact("2015.07.22_CT") == f"{tag('20150722')}_CT"
    assert r.redact("acc-9981.zip") == f"{tag('acc9981')}.zip"


def test_uid_like_runs_are_redacted_whole_known_or_not() -> None:
    # More than 6 dotted numbers is a UID: redacted whole without a digest, so instance UIDs need
    # none (identifier_forms skips them) and a companion file named after one is covered too.
    assert identifier_forms([SOP, "1.2.3.4.5.6"]) == {"123456", "^123456"}  # a short one as usual
    for text in (
        SOP,
        "1.2.3.4.5.6",
        "1.2.3.4.5.6.",
        ".1.2.3.4.5.6",
        "1.2..3.4.5.6.7",
        "1.2.3.4.5.6.x",
        "١.2.3.4.5.6.7",
    ):
        parts = text.split(".")
        expected = len(parts) > 6 and all(p.isdigit() and p.isascii() for p in parts)
        assert is_uid_run(text) == expected, text
    for r in (redactor(), Redactor(KEY, [])):
        assert r.redact(f"{SOP}.dcm") == f"{tag(SOP)}.dcm"
        assert r.redact(f"s/{SOP}.12.dcm") == f"s/{tag(SOP + '.12')}.dcm"  # '<UID>.<n>': one run
        assert r.redact(f"{SOP}.json") == f"{tag(SOP)}.json"
    # A window may not run into a UID: PatientID 'MR1' does not take the UID's first number.
    assert redactor([*VALUES, "MR1"]).redact(f"MR.{SOP}") == f"MR.{tag(SOP)}"
    assert redactor([*VALUES, "MR1"]).redact("MR.1_x") == f"{tag('mr1')}_x"
    assert redactor(["1.2.3.4.5.6"]).redact("1.2.3.4.5.6/a") == f"{tag('123456')}/a"
    assert Redactor(KEY, []).redact("v1.2.3/1.2.3.4.5.6") == "v1.2.3/1.2.3.4.5.6"  # short runs: kept


def test_ordinary_names_and_short_values_are_kept() -> None:
    r = redactor(["Q", "01", "12345"])
    for path in ("CT/IM0001", "01/Q.dcm", "series_3/1.dcm", "123456/x", "IM1234500", "CTHead/T1_MPRAGE"):
        assert r.redact(path) == path
    assert Redactor(KEY, []).redact("12345_DOE") == "12345_DOE"


def test_identifiers_glued_to_other_text_are_redacted() -> None:
    """Digits meeting letters and a capitalised word starting split a name: each piece can match."""
    r = redactor(["12345", "DOE^JOHN", "MRN-4711", "20150722"])
    assert r.redact("DOE12345/a.dcm") == f"{tag('doe')}{tag('12345')}/a.dcm"
    assert r.redact("DoeJohn_CT") == f"{tag('doejohn')}_CT"
    assert r.redact("DOEJohn") == tag("doejohn")
    assert r.redact("MRN4711.dcm") == f"{tag('mrn4711')}.dcm"
    assert r.redact("a12345") == f"a{tag('12345')}"
    assert r.redact("CT20150722DOE") == f"CT{tag('20150722')}{tag('doe')}"
    assert r.redact("IM1234500") == "IM1234500"  # within a run of digits nothing splits
    assert Redactor(KEY, []).redact("scan2019-03-04") == f"scan{tag('20190304')}"  # a date after letters
    for path in ("DOE12345/a.dcm", "CT20150722DOE", "xDoeJohn12345y"):  # id-tokens stay whole, glued too
        once = r.redact(path)
        assert r.redact(once) == once and redactor().redact(once) == redactor().redact(
            redactor().redact(once)
        )


def test_a_number_inside_a_longer_run_of_digits_redacts_the_run() -> None:
    """A run of digits never splits, but one holding a known number of 6 digits or more (an MRN glued
    to a counter) is redacted whole; shorter numbers inside runs are kept (counters hold them all)."""
    r = redactor(["471100", "MRN9205654", "12345", "20150722"])
    assert r.redact("IM4711000001.dcm") == f"IM{tag('4711000001')}.dcm"  # at the start
    assert r.redact("00471100/x") == f"{tag('00471100')}/x"  # at the end
    assert r.redact("s/92056540017") == f"s/{tag('92056540017')}"  # an MRN's number without 'MRN'
    assert r.redact("9205654_CT") == f"{tag('9205654')}_CT"  # and bare, on its own
    assert r.redact("CT2015072201") == f"CT{tag('2015072201')}"  # a date glued to a counter
    assert r.redact("IM1234500") == "IM1234500"  # 12345 is under 6 digits: kept
    for kept in ("IM4711010", "47110", "IM000001", "4711", "1.2.840.4711.5", "v1.2.3"):
        assert r.redact(kept) == kept, kept
    once = r.redact("IM4711000001_DOE")
    assert r.redact(once) == once


def test_redaction_is_idempotent_and_safe_with_a_larger_set() -> None:
    small = redactor(["DOE^JOHN"])
    once = small.redact("12345_DOE_JOHN/2015-07-22")
    assert small.redact(once) == once
    big = redactor()
    again = big.redact(once)
    assert again == big.redact(again)
    assert tag("doejohn") in again and "12345" not in again and "2015" not in again


class CountingRedactor(Redactor):
    """A redactor that counts the digests it computes."""

    calls = 0

    def digest(self, normalised: str) -> str:
        self.calls += 1
        return super().digest(normalised)


def test_components_are_memoised() -> None:
    r = CountingRedactor(KEY, redactor().digests)
    first = r.redact("12345_DOE_JOHN/IM0001.dcm")
    n = r.calls
    assert n > 6 and r.redact("12345_DOE_JOHN/IM0001.dcm") == first and r.calls == n
    assert r.redact("12345_DOE_JOHN/b.dcm").startswith(first.split("/")[0] + "/")
    assert r.calls - n == 1  # only "bdcm": the folder and "dcm" are memoised, "b" is too short


def _ingest_dir(tmp_path: Path, root: Path, digests: list[str] | None, fingerprint: str) -> Path:
    out = tmp_path / "ingest"
    out.mkdir()
    record = {"root": root.as_posix(), "key_fingerprint": fingerprint, "scan_version": 1}
    if digests is not None:
        record["redact_paths"] = True
        (out / "redaction.json").write_text(json.dumps({"key_fingerprint": fingerprint, "digests": digests}))
    (out / "source.json").write_text(json.dumps(record))
    return out


def test_source_paths_find_each_file_by_its_path_key(tmp_path: Path) -> None:
    root = tmp_path / "src"
    for rel in ("12345_DOE/a.dcm", "12345_DOE/b.dcm", "other/c.dcm"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    digests = sorted(token_digest(KEY, f) for f in identifier_forms(["12345", "DOE^JANE"]))
    ingest = _ingest_dir(tmp_path, root, digests, deid.key_fingerprint(KEY))
    source = source_paths(ingest, KEY)
    path_key = path_keyer(KEY)
    shown = f"{tag('12345')}_{tag('doe')}/a.dcm"
    assert source.resolve(shown, path_key("12345_DOE/a.dcm")) == "12345_DOE/a.dcm"
    assert source.resolve("other/c.dcm", path_key("other/c.dcm")) == "other/c.dcm"
    assert source.resolve(shown, path_key("12345_DOE/gone.dcm")) is None
    assert source.resolve(shown, path_keyer(b"another key")("12345_DOE/a.dcm")) is None
    assert "re-run ingest" in source.why_unresolved()
    with pytest.raises(ConfigError, match="another de-identification key"):
        source_paths(ingest, b"wrong-key")


def test_plain_source_paths_are_the_paths_and_alike_redacted_paths_keep_apart(tmp_path: Path) -> None:
    ingest = _ingest_dir(tmp_path, tmp_path, None, "f")
    assert (
        source_paths(ingest, KEY) == SourcePaths(tmp_path) and SourcePaths(tmp_path).resolve("a", "") == "a"
    )
    real = ["2015-07-22/1.dcm", "20150722/1.dcm", "caf\udce9/1.dcm"]  # the last: a non-UTF-8 name
    for rel in real:
        (tmp_path / "s" / rel).parent.mkdir(parents=True)
        (tmp_path / "s" / rel).write_text("x")
    # Both dates redact to one path; their path keys still tell the two files apart.
    assert {redactor().redact(p) for p in real[:2]} == {f"{tag('20150722')}/1.dcm"}
    found = keyed_paths(tmp_path / "s", KEY)
    assert sorted(found.values()) == sorted(real) and set(found) == {path_keyer(KEY)(p) for p in real}
    assert all(re.fullmatch(r"[0-9a-f]{16}", k) for k in found)
    (ingest / "source.json").write_text("{}")
    with pytest.raises(InputError, match="root"):
        source_paths(ingest, KEY)


def test_dates_are_redacted_whether_or_not_a_header_holds_them() -> None:
    """An export's folder may carry a scan or birth date that the (de-identified) files no longer do."""
    r = redactor([])
    day = tag("20190304")
    for shown, redacted in (
        ("scan_2019-03-04/a.dcm", f"scan_{day}/a.dcm"),
        ("04.03.2019/a.dcm", f"{day}/a.dcm"),
        ("CT 2019 03 04/a.dcm", f"CT {day}/a.dcm"),
        ("20190304/a.dcm", f"{day}/a.dcm"),
        ("CT20190304/a.dcm", f"CT{day}/a.dcm"),  # glued to letters
        ("20190304101500.dcm", f"{tag('20190304101500')}.dcm"),  # a DICOM date-time
        ("2019_3_4/a.dcm", f"{day}/a.dcm"),  # every written form is keyed as YYYYMMDD
    ):
        assert r.redact(shown) == redacted, shown
    for kept in ("1234-56-78/12345678", "2019-13-45/a", "v2.5.10/x", "series_0001/00000001", "IM20190399"):
        assert r.redact(kept) == kept
    assert redactor().redact("22.07.2015/x") == f"{tag('20150722')}/x"  # as the header's StudyDate
    uid = "1.2.840.10008.5.1.4.1.1.2.20190304.1"
    assert r.redact(f"{uid}/x") == f"{tag(uid.replace('.', ''))}/x"  # the UID rule, whole


def test_every_name_hides_each_folder_and_file_name_whatever_it_says() -> None:
    """redact_paths: all — free text and IDs no header holds are gone; the shape and safe extensions stay."""
    hidden = Redactor(KEY, [], every_name=True)
    path = "Dr Hausmann - reread urgently/MRN 998877 Mueller Anna/IM0001.dcm"
    shown = hidden.redact(path)
    folder, patient, name = shown.split("/")
    assert re.fullmatch(r"id-[0-9a-f]{8}", folder) and re.fullmatch(r"id-[0-9a-f]{8}", patient)
    assert re.fullmatch(r"id-[0-9a-f]{8}\.dcm", name)
    assert Redactor(KEY, []).redact(path) == path  # what the default mode cannot know, it keeps
    # Deterministic under the key, different under another; one folder, one token.
    assert Redactor(KEY, [], every_name=True).redact(path) == shown
    assert Redactor(b"another-key", [], every_name=True).redact(path) != shown
    assert hidden.redact(f"{path.rsplit('/', 1)[0]}/IM0002.dcm").startswith(f"{folder}/{patient}/")
    assert hidden.redact("a/IM1") != hidden.redact("a/im1")  # two files, two names
    # An extension is kept only when it is a known one: 'Doe.John' is a name, not a file type.
    assert re.fullmatch(r"id-[0-9a-f]{8}", hidden.redact("Doe.John"))
    assert re.fullmatch(r"id-[0-9a-f]{8}\.txt", hidden.redact("notes on Doe.txt"))
    assert re.fullmatch(r"id-[0-9a-f]{8}", hidden.redact(".dcm"))  # a hidden file: no stem, no extension
    assert hidden.redact("export/DICOMDIR").endswith("/DICOMDIR")
