"""Patient identifiers redacted from source paths (ingest.redact_paths, on by default; `all` hides
every folder and file name instead, see Redactor).

PACS exports name folders and files after the patient ('12345_DOE_JOHN/2015-07-22/<SOP UID>.dcm').
While reading headers, ingest turns each identifier value (PatientID, names, dates, accession
number, short UIDs) into a keyed digest of its normalised text; raw values never leave the reading
process. A path is then split into tokens (runs of letters and digits, split again where digits
meet letters or a capitalised word starts: an identifier glued to other text, 'DOE12345', is
tokens of its own), and every run of tokens whose normalised text has a known digest becomes
`id-<8 hex>`; so does a run of digits holding a known number of 6 digits or more ('IM4711000001',
found by the digest of the number's first digits), every UID-like run of more than MAX_WINDOW
dotted numbers, known or not, which spares a digest per instance UID and keeps redaction.json
to the shared identifiers, and every calendar date, known or not (YYYYMMDD, glued to letters too,
or written out with separators). Without the key nobody can test a guessed name
against the digests or the redacted path. A redacted path need not name one file (two folders
may redact alike), so each manifest row also carries `path_key`, a keyed digest of its real path:
clean and `radflow locate` find a row's file by it, and incremental ingest matches walked files to
reused rows by it without redacting them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple

from radflow.dicom import deid
from radflow.dicom.scan_walk import Stat, list_files
from radflow.errors import ConfigError, InputError

__all__ = [
    "INSIDE_PREFIX",
    "KEPT_EXTENSIONS",
    "MIN_INSIDE_DIGITS",
    "MIN_LENGTH",
    "Redactor",
    "SourcePaths",
    "by_path_key",
    "digester",
    "identifier_forms",
    "is_uid_run",
    "keyed_paths",
    "locate",
    "normalise",
    "path_keyer",
    "source_paths",
    "token_digest",
]

MIN_LENGTH = 3  # shorter values ('M', 'Q', '01') would redact ordinary folder names
MAX_WINDOW = 6  # dotted numbers up to which a run is a value, not a UID: '1.2.3.4.5.6' is digested
# A known identifier inside a longer run of digits is found from this many digits: fewer would
# match the counters file names are made of ('IM000123' holds every 3-digit PatientID up to 123).
MIN_INSIDE_DIGITS = 6
INSIDE_PREFIX = "^"  # marks a prefix form: a normalised window text never holds it
MAX_PIECES = 16  # tokens per window: 'DOE_JOHN_Q', '2015-07-22', 'MRN-12-345', 'DOE12345', 'AB1CD2EF3'
# A redacted token stays whole and never matches again. Any other run of letters and digits splits
# where digits meet letters and where a capitalised word starts, so an identifier glued to other
# text is a window of its own ('DOE12345' is DOE + 12345, 'DoeJohn' Doe + John, 'MRN4711' MRN + 4711)
# while a window still joins the pieces of a whole value. A run of digits never splits: one that
# holds a known identifier of MIN_INSIDE_DIGITS or more digits is redacted whole (Redactor._match).
_REDACTED_TOKEN = re.compile(r"id-[0-9a-f]{8}(?![^\W_])")  # anywhere, glued to letters too: 'CTid-…'
_PIECES = re.compile(
    r"[0-9]+"
    r"|[A-Z]+(?=[A-Z][a-z])"  # capitals before a capitalised word: 'DOE' in 'DOEJohn'
    r"|[A-Z]?[a-z]+"  # a word, capitalised or not
    r"|[A-Z]+"
    r"|[^\W\d_]+"  # letters outside ASCII, with any that follow: 'üller' in 'Müller'
    r"|[^\W_]"  # a digit outside ASCII
)
_NOT_KEPT = re.compile(r"[^a-z0-9]")
_NAME_PARTS = re.compile(r"[\^=]")


def normalise(text: str) -> str:
    """Casefolded, only [a-z0-9] kept: 'Doe, John' and 'DOE^JOHN' both read 'doejohn'."""
    if text.isascii():  # the common case, a UID or a plain ID, without a regex
        plain = text.lower().replace(".", "")
        if plain.isalnum():
            return plain
    return _NOT_KEPT.sub("", text.casefold())


def identifier_forms(values: Iterable[str]) -> set[str]:
    """The normalised forms of header values worth redacting: each value, each multi-value, each name
    part, the numbers in them (see _number_forms)."""
    forms: set[str] = set()
    for value in values:
        for item in value.split("\\"):  # a multi-valued element (OtherPatientIDs) as read
            if is_uid_run(item):  # redacted in any path without a digest (Redactor._match)
                continue
            whole = normalise(item)
            if len(whole) >= MIN_LENGTH:
                forms.add(whole)
            forms.update(_number_forms(whole))
            if "^" in item or "=" in item:  # a name: each component and group too
                forms.update(n for n in map(normalise, _NAME_PARTS.split(item)) if len(n) >= MIN_LENGTH)
    return forms


_DIGIT_RUNS = re.compile(rf"[0-9]{{{MIN_INSIDE_DIGITS},}}")


def _number_forms(normalised: str) -> set[str]:
    """The forms by which a value's numbers are found: each run of MIN_INSIDE_DIGITS or more digits
    (the number of 'MRN9205654', which an export may write bare), and for each the prefix form of its
    first MIN_INSIDE_DIGITS digits, by which Redactor finds the number inside a longer digit run."""
    runs = _DIGIT_RUNS.findall(normalised)
    return {*runs, *(INSIDE_PREFIX + run[:MIN_INSIDE_DIGITS] for run in runs)}


def is_uid_run(text: str) -> bool:
    """Whether `text` is more than MAX_WINDOW numbers joined by single dots: a UID, as paths split it."""
    return (
        text.count(".") >= MAX_WINDOW
        and text.isascii()
        and text.replace(".", "").isdigit()
        and ".." not in text
        and not text.startswith(".")
        and not text.endswith(".")
    )


def _keyed(key: bytes, label: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 under `key` over label, NUL, the text's bytes (16 hex): deid's message layout,
    keyed once and copied per value (HMAC's key schedule costs more than a digest)."""
    prefix = hmac.new(key, label + b"\x00", hashlib.sha256)

    def digest(text: str) -> str:
        mac = prefix.copy()
        mac.update(text.encode("utf-8", "surrogateescape"))  # a name undecodable as UTF-8 keeps its bytes
        return mac.hexdigest()[:16]

    return digest


def digester(key: bytes) -> Callable[[str], str]:
    """token_digest under `key`, keyed once."""
    return _keyed(key, b"path-token")


def path_keyer(key: bytes) -> Callable[[str], str]:
    """The manifest's `path_key` of a relative path under `key` (16 hex). One file's key is the same
    on every run; without the key it tells nothing about the path.

    Keyed BLAKE2b (a MAC by design, personalised 'source-path'), not HMAC: an incremental ingest
    keys every walked file, and a copied BLAKE2b state costs a quarter of a copied HMAC here.
    """
    secret = key if len(key) <= 64 else hashlib.blake2b(key).digest()  # BLAKE2b keys hold 64 bytes
    keyed = hashlib.blake2b(key=secret, digest_size=8, person=b"source-path")

    def path_key(text: str) -> str:
        mac = keyed.copy()
        mac.update(text.encode("utf-8", "surrogateescape"))  # a name undecodable as UTF-8 keeps its bytes
        return mac.hexdigest()

    return path_key


def by_path_key(files: Sequence[Stat], key: bytes) -> dict[str, Stat]:
    """Each file by its path_key; a collision of the 64-bit keys (about 1 in 10^7 for a million
    files) stops the run rather than lose a file silently."""
    path_key = path_keyer(key)
    found = {path_key(f[0]): f for f in files}
    if len(found) != len(files):
        raise RuntimeError("two source paths share a path_key; report this, and ingest with --real-paths")
    return found


def token_digest(key: bytes, normalised: str) -> str:
    """Keyed digest (16 hex) of a normalised identifier: HMAC-SHA256 over 'path-token', NUL, the text."""
    return digester(key)(normalised)


class _Tokens(NamedTuple):
    """One path component's tokens: their spans, normalised texts, and the windows allowed from each."""

    spans: list[tuple[int, int]]
    texts: list[str]  # normalised; a window's text is the concatenation of its tokens'
    free: list[int]  # from token i, windows may reach up to (not including) this token
    runs: list[tuple[int, int]]  # the long dotted run (a UID) token i is in, else (i, i)
    dates: list[int]  # 3 where a written-out date (YYYY-MM-DD, DD.MM.YYYY) starts at token i, else 0


class _Piece(NamedTuple):
    start: int
    end: int
    text: str
    redacted: bool  # an id-token from an earlier redaction: it never joins a window


def _pieces(text: str) -> list[_Piece]:
    """The component's tokens in order: id-tokens whole, the text between them split by _PIECES."""
    if "id-" not in text:  # the common case: nothing redacted yet
        return [_Piece(p.start(), p.end(), p.group(), False) for p in _PIECES.finditer(text)]
    out: list[_Piece] = []
    at = 0
    for m in (*_REDACTED_TOKEN.finditer(text), None):
        stop = m.start() if m is not None else len(text)
        out += [_Piece(p.start(), p.end(), p.group(), False) for p in _PIECES.finditer(text, at, stop)]
        if m is not None:
            out.append(_Piece(m.start(), m.end(), m.group(), True))
            at = m.end()
    return out


def _tokens(text: str) -> _Tokens:
    found = _pieces(text)
    spans = [(p.start, p.end) for p in found]
    texts = [normalise(p.text) for p in found]
    digits = [p.text.isdigit() and p.text.isascii() for p in found]
    runs = [(i, i) for i in range(len(found))]
    start = 0
    for i in range(1, len(found) + 1):  # runs of digit tokens joined by single dots
        joined = i < len(found) and digits[i] and digits[i - 1] and text[spans[i - 1][1] : spans[i][0]] == "."
        if not joined:
            if i - start > MAX_WINDOW:
                runs[start:i] = [(start, i)] * (i - start)
            start = i
    dates = _dates(text, found, digits)
    free, limit = [0] * len(found), len(found)
    for i in range(len(found) - 1, -1, -1):
        if found[i].redacted:  # an id-token never joins a window
            limit = i
        elif runs[i][1] > runs[i][0] and i == runs[i][0]:
            limit = i  # a window from outside may not run into a UID
        free[i] = limit
    return _Tokens(spans, texts, free, runs, dates)


_DATE_SEPARATORS = frozenset("-_. ")
# YYYYMMDD, or with hhmm or hhmmss, between non-digits (letters may touch it)
_GLUED_DATE = re.compile(r"(?<![0-9])(?:19|20)[0-9]{6}(?:[0-9]{4}(?:[0-9]{2})?)?(?![0-9])")


def _is_date(year: str, month: str, day: str) -> bool:
    """Whether the digits name a day from 1900 to 2099 (PS3.15: every date is an identifier)."""
    try:
        return 1900 <= int(year) <= 2099 and bool(date(int(year), int(month), int(day)))
    except ValueError:
        return False


def _canonical_date(texts: list[str]) -> str:
    """YYYYMMDD of a written-out date's three tokens (YYYY-MM-DD or DD.MM.YYYY)."""
    year, month, day = texts if len(texts[0]) == 4 else texts[::-1]
    return f"{year}{int(month):02d}{int(day):02d}"


def _dates(text: str, found: list[_Piece], digits: list[bool]) -> list[int]:
    """Per token, 3 where a written-out date starts there, else 0: three digit tokens joined by one
    separator repeated ('-', '_', '.', ' '), YYYY-MM-DD or DD.MM.YYYY. Compact dates (YYYYMMDD and
    date-times, alone or glued to letters) are left to Redactor._glued_dates. Dates are redacted
    whether or not a header holds them: an export's folder may carry a scan or birth date the
    de-identified files no longer do.
    """
    words = [p.text for p in found]
    out = [0] * len(found)
    for i, word in enumerate(words):
        if not digits[i]:
            continue
        if i + 2 >= len(words) or not (digits[i + 1] and digits[i + 2]):
            continue
        first = text[found[i].end : found[i + 1].start]
        second = text[found[i + 1].end : found[i + 2].start]
        if first != second or first not in _DATE_SEPARATORS:
            continue
        a, b, c = word, words[i + 1], words[i + 2]
        if (len(a) == 4 and len(b) <= 2 and len(c) <= 2 and _is_date(a, b, c)) or (
            len(a) <= 2 and len(b) <= 2 and len(c) == 4 and _is_date(c, b, a)
        ):
            out[i] = 3
    return out


# With redact_paths: all, a file keeps its extension only when it is one of these (an extension may
# be free text too: 'Doe.John'), and a component keeps its name only when it is DICOM's own.
KEPT_EXTENSIONS = frozenset({
    "dcm", "dicom", "dic", "ima", "img", "gz", "bz2", "xz", "zip", "tar", "txt", "xml", "json", "csv",
    "htm", "html", "pdf", "jpg", "jpeg", "png", "bmp", "tif", "tiff", "nii", "mha", "nrrd", "raw", "dat",
    "bin", "log", "ini",
})  # fmt: skip
KEPT_NAMES = frozenset({"DICOMDIR"})


class Redactor:
    """Redacts paths under one key and one digest set; memoised per path component.

    With `every_name` (ingest.redact_paths: all), each folder and file name becomes one keyed token
    whatever it says, `id-<8 hex>` plus a KEPT_EXTENSIONS extension: nothing a header does not hold
    (a clinician's note, an MRN the de-identified files dropped) can survive in a path.
    """

    def __init__(self, key: bytes, digests: Iterable[str], every_name: bool = False) -> None:
        self.digests = frozenset(digests)
        self.every_name = every_name
        self._digester = digester(key)
        self._name_digest = _keyed(key, b"path-name")
        self._memo: dict[str, str] = {}
        self._folders: dict[str, str] = {}  # a folder's files share it: one lookup per path, not per part
        self._short: dict[str, str] = {}  # digests of short window texts, which recur ('dcm', 'im0001')
        self._inside: dict[str, bool] = {}  # digit runs checked for an identifier inside them

    def digest(self, normalised: str) -> str:
        """token_digest under this redactor's key."""
        return self._digester(normalised)

    def redact(self, path: str) -> str:
        """`path` (POSIX, relative) with every identifier run replaced by `id-<8 hex>`."""
        folder, slash, name = path.rpartition("/")
        if not slash:
            return self._component(name)
        shown = self._folders.get(folder)
        if shown is None:
            shown = self._folders[folder] = "/".join(map(self._component, folder.split("/")))
        return f"{shown}/{self._component(name)}"

    def _component(self, text: str) -> str:
        found = self._memo.get(text)
        if found is None:
            hide = self._hidden_name if self.every_name else self._redact_component
            found = self._memo[text] = hide(text)
        return found

    def _hidden_name(self, text: str) -> str:
        """The whole name as one keyed token (the raw name: 'IM1' and 'im1' are two files)."""
        if text in KEPT_NAMES or not text:
            return text
        stem, dot, extension = text.rpartition(".")
        kept = f".{extension}" if dot and stem and extension.lower() in KEPT_EXTENSIONS else ""
        return f"id-{self._name_digest(text)[:8]}{kept}"

    def _redact_component(self, text: str) -> str:
        tokens = _tokens(text)
        out, end = [], 0
        for i, width, digest in self._spans(tokens, 0, len(tokens.texts)):
            out += [self._glued_dates(text[end : tokens.spans[i][0]]), f"id-{digest[:8]}"]
            end = tokens.spans[i + width - 1][1]
        return "".join(out) + self._glued_dates(text[end:])

    def _glued_dates(self, text: str) -> str:
        """Compact dates in the text between redacted windows, alone or glued to letters ('20150722',
        'CT20150722', 'scan_20150722T1015', a date-time '20150722101500'), each keyed as its digits."""
        if not any(c.isdigit() for c in text):
            return text

        def redact(m: re.Match[str]) -> str:
            digits = m.group()
            if not _is_date(digits[:4], digits[4:6], digits[6:8]):
                return digits
            return f"id-{self.digest(digits)[:8]}"

        return _GLUED_DATE.sub(redact, text)

    def _spans(self, tokens: _Tokens, lo: int, hi: int) -> list[tuple[int, int, str]]:
        """Matched windows within tokens[lo:hi] as (start, width, digest), in order; the widest first.

        Widest first, not leftmost first: in 'MR.1.3.12.2.1107.5.2...' the SOP UID must win over a
        PatientID 'MR1' that would leave the rest of the UID behind.
        """
        best = (0, 0, "")
        for i in range(lo, hi):
            width, digest = self._match(tokens, i, hi)
            if width > best[1]:
                best = (i, width, digest)
        if not best[1]:
            return []
        start, width = best[0], best[1]
        return [*self._spans(tokens, lo, start), best, *self._spans(tokens, start + width, hi)]

    def _match(self, tokens: _Tokens, i: int, hi: int) -> tuple[int, str]:
        """The widest known window of tokens[i:hi] starting at `i`, and its digest; (0, '') if none.

        A UID-like run (more dotted numbers than MAX_WINDOW) is one window from its first token,
        redacted whether or not a header holds it: UIDs are never digested (identifier_forms).
        """
        start, stop = tokens.runs[i]
        if stop > start:
            if i != start:
                return 0, ""
            stop = min(stop, hi)
            return stop - start, self.digest("".join(tokens.texts[start:stop]))
        dated = tokens.dates[i] if tokens.dates[i] <= min(hi, tokens.free[i]) - i else 0
        for width in range(min(MAX_PIECES, hi - i, tokens.free[i] - i), dated, -1):
            text = "".join(tokens.texts[i : i + width])
            if len(text) < MIN_LENGTH:
                continue
            if digest := self._known(text):
                return width, digest
        if dated:  # a written-out date, known or not, keyed as YYYYMMDD as a header holds it
            return dated, self.digest(_canonical_date(tokens.texts[i : i + dated]))
        if i < tokens.free[i] and self._holds_identifier(tokens.texts[i]):
            return 1, self.digest(tokens.texts[i])
        return 0, ""

    def _known(self, text: str) -> str:
        """The digest of a normalised window text when it is a known identifier's, else ''."""
        digest = self._short.get(text) or self.digest(text)
        if len(text) <= 12:
            self._short[text] = digest
        return digest if digest in self.digests else ""

    def _holds_identifier(self, token: str) -> bool:
        """Whether a run of digits holds a known identifier of at least MIN_INSIDE_DIGITS digits that
        is not the whole run (PatientID 471100 in 'IM4711000001': a number glued to a counter). The
        whole run is then redacted: no split of a digit run is more plausible than another. Each
        identifier's first MIN_INSIDE_DIGITS digits are digested too (identifier_forms), so a run
        costs one digest per position, and longer widths are tried only where a prefix is known."""
        n = len(token)
        if n <= MIN_INSIDE_DIGITS or not token.isdigit() or not token.isascii():
            return False
        found = self._inside.get(token)
        if found is None:
            found = self._inside[token] = any(
                self._known(token[start : start + width])
                for start in range(n - MIN_INSIDE_DIGITS + 1)
                if self._known(INSIDE_PREFIX + token[start : start + MIN_INSIDE_DIGITS])
                for width in range(n - start, MIN_INSIDE_DIGITS - 1, -1)
                if width < n  # the whole run was matched as a window already
            )
        return found


def keyed_paths(root: Path, key: bytes, exclude: Path | None = None) -> dict[str, str]:
    """Each file under `root` (walked once) by its path_key → its real relative path."""
    files = list_files(root, exclude=exclude, hide_names=True)  # redacted paths: no folder name in logs
    return {k: f[0] for k, f in by_path_key(files, key).items()}


@dataclass(frozen=True)
class SourcePaths:
    """Where the files an ingest manifest lists are: its paths are real, or redacted (found by path_key)."""

    root: Path
    real: dict[str, str] | None = None  # path_key → real relative path; None: the paths are real

    def resolve(self, shown: str, path_key: str | None) -> str | None:
        """The real relative path of a manifest row (its path and path_key); None when it has no file."""
        if self.real is None:
            return shown
        return self.real.get(path_key or "")

    @staticmethod
    def why_unresolved() -> str:
        """One sentence for a row whose file is gone (never the real path)."""
        return "No file under the source has this row's path any more (moved or deleted); re-run ingest."


def source_paths(ingest_dir: Path, key: bytes) -> SourcePaths:
    """The source of an ingest output; with redacted paths, its files walked once and keyed."""
    from radflow.dicom import scan_manifest  # it imports the scan, which imports this module

    source = ingest_dir / scan_manifest.SOURCE
    try:
        record = json.loads(source.read_text())
        root = Path(record["root"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{source} is missing or has no 'root' entry; re-run ingest to rewrite it."
        ) from None
    if not record.get("redact_paths"):
        return SourcePaths(root)
    found = scan_manifest.read_redaction(ingest_dir)
    if found is None:
        raise InputError(
            f"{ingest_dir / scan_manifest.REDACTION} is missing or unreadable; re-run ingest to rewrite it."
        )
    if found[0] != deid.key_fingerprint(key):
        raise ConfigError(
            f"{ingest_dir / scan_manifest.REDACTION} was written under another de-identification key; "
            f"set {deid.KEY_ENV} to the key ingest used, or re-run ingest."
        )
    return SourcePaths(root, keyed_paths(root, key, exclude=ingest_dir))


def locate(ingest_dir: Path, shown: Sequence[str]) -> list[str]:
    """The real source file (root joined) of each path as outputs show it; several when ambiguous."""
    import pyarrow.parquet as pq

    from radflow.dicom import scan_manifest

    source = source_paths(ingest_dir, deid.load_key())
    keys: dict[str, list[str]] = {}
    if source.real is not None:
        try:
            table = pq.ParquetFile(ingest_dir / scan_manifest.MANIFEST).read(columns=["path", "path_key"])
        except (OSError, ValueError, KeyError):
            raise InputError(
                f"{ingest_dir / scan_manifest.MANIFEST} is missing or has no path_key column; re-run ingest."
            ) from None
        for path, path_key in zip(*(table.column(c).to_pylist() for c in ("path", "path_key")), strict=True):
            keys.setdefault(path, []).append(path_key)
    out: list[str] = []
    for path in shown:
        found = [path] if source.real is None else [source.real.get(k, "") for k in keys.get(path, [])]
        if not found or not all(p and (source.root / p).is_file() for p in found):
            raise InputError(
                f"{path} matches no file under the source of {ingest_dir}; copy it from the manifest "
                "or quarantine report, or re-run ingest if the file has moved."
            )
        out += [(source.root / p).as_posix() for p in found]
    return out
