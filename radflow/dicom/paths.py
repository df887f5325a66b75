"""Patient identifiers redacted from source paths (ingest.redact_paths, on by default).

PACS exports name folders and files after the patient ('12345_DOE_JOHN/2015-07-22/<SOP UID>.dcm').
While reading headers, ingest turns each identifier value (PatientID, names, dates, accession and
instance UIDs) into a keyed digest of its normalised text; raw values never leave the reading
process. A path is then split into alphanumeric tokens, and every run of tokens whose normalised
text has a known digest becomes `id-<8 hex>`. Without the key nobody can test a guessed name
against the digests or the redacted path; with it, `radflow locate` maps a redacted path back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from radflow.dicom import deid
from radflow.dicom.scan_walk import list_files
from radflow.errors import ConfigError, InputError

__all__ = [
    "MIN_LENGTH",
    "Redactor",
    "SourcePaths",
    "digester",
    "identifier_forms",
    "locate",
    "normalise",
    "real_paths",
    "source_paths",
    "token_digest",
]

MIN_LENGTH = 3  # shorter values ('M', 'Q', '01') would redact ordinary folder names
MAX_WINDOW = 6  # tokens per window: 'DOE_JOHN_Q', a date written '2015-07-22', 'MRN-12-345'
# Components whose queried digests a Redactor keeps, so that grown() can reuse their redaction
# (tens of digests each: beyond this many, components are redacted afresh instead).
MAX_TRACKED = 200_000
# A redacted token stays whole and never matches again; any other run of letters/digits is a token.
_TOKENS = re.compile(r"id-[0-9a-f]{8}(?![^\W_])|[^\W_]+")
_REDACTED = re.compile(r"id-[0-9a-f]{8}")
_NOT_KEPT = re.compile(r"[^a-z0-9]")


def normalise(text: str) -> str:
    """Casefolded, only [a-z0-9] kept: 'Doe, John' and 'DOE^JOHN' both read 'doejohn'."""
    return _NOT_KEPT.sub("", text.casefold())


def identifier_forms(values: Iterable[str]) -> set[str]:
    """The normalised forms of header values worth redacting: each value, each multi-value, each name part."""
    forms: set[str] = set()
    for value in values:
        for item in value.split("\\"):  # a multi-valued element (OtherPatientIDs) as read
            parts = [item, *re.split(r"[\^=]", item)]  # a name: whole, each component and group
            forms.update(n for n in map(normalise, parts) if len(n) >= MIN_LENGTH)
    return forms


def _prefix(key: bytes) -> hmac.HMAC:
    # The same message as deid's HMAC helper (parts joined by NUL), keyed once and copied per token.
    return hmac.new(key, b"path-token\x00", hashlib.sha256)


def digester(key: bytes) -> Callable[[str], str]:
    """token_digest under `key`, keyed once (HMAC's key schedule costs more than a digest)."""
    prefix = _prefix(key)

    def digest(normalised: str) -> str:
        mac = prefix.copy()
        mac.update(normalised.encode())
        return mac.hexdigest()[:16]

    return digest


def token_digest(key: bytes, normalised: str) -> str:
    """Keyed digest (16 hex) of a normalised identifier: HMAC-SHA256 over 'path-token', NUL, the text."""
    return digester(key)(normalised)


class _Tokens(NamedTuple):
    """One path component's tokens: their spans, normalised texts, and the windows allowed from each."""

    spans: list[tuple[int, int]]
    texts: list[str]  # normalised; a window's text is the concatenation of its tokens'
    free: list[int]  # from token i, windows may reach up to (not including) this token
    runs: list[tuple[int, int]]  # the long dotted run (a UID) token i is in, else (i, i)


def _tokens(text: str) -> _Tokens:
    found = list(_TOKENS.finditer(text))
    spans = [m.span() for m in found]
    texts = [normalise(m.group()) for m in found]
    digits = [m.group().isdigit() and m.group().isascii() for m in found]
    runs = [(i, i) for i in range(len(found))]
    start = 0
    for i in range(1, len(found) + 1):  # runs of digit tokens joined by single dots
        joined = i < len(found) and digits[i] and digits[i - 1] and text[spans[i - 1][1] : spans[i][0]] == "."
        if not joined:
            if i - start > MAX_WINDOW:
                runs[start:i] = [(start, i)] * (i - start)
            start = i
    free, limit = [0] * len(found), len(found)
    for i in range(len(found) - 1, -1, -1):
        if _REDACTED.fullmatch(found[i].group()):  # an id-token never joins a window
            limit = i
        elif runs[i][1] > runs[i][0] and i == runs[i][0]:
            limit = i  # a window from outside may not run into a UID
        free[i] = limit
    return _Tokens(spans, texts, free, runs)


class Redactor:
    """Redacts paths under one key and one digest set; memoised per path component."""

    def __init__(self, key: bytes, digests: Iterable[str]) -> None:
        self.digests = frozenset(digests)
        self._key = key
        self._digester = digester(key)
        self._memo: dict[str, str] = {}
        self._folders: dict[str, str] = {}  # a folder's files share it: one lookup per path, not per part
        self._short: dict[str, str] = {}  # digests of short window texts, which recur ('dcm', 'im0001')
        self._queried: dict[str, frozenset[str]] = {}  # component → every digest its redaction looked up
        self._asked: set[str] = set()

    def grown(self, digests: Iterable[str]) -> Redactor:
        """A Redactor for a larger digest set that keeps this one's work where it still holds.

        Redaction is a function of which looked-up digests are known, so a component none of whose
        looked-up digests is new redacts exactly as before: an incremental ingest that learns a few
        new identifiers re-redacts only the components that may hold them.
        """
        bigger = Redactor(self._key, digests)
        added = bigger.digests - self.digests
        if not self.digests or not (bigger.digests >= self.digests):
            return bigger
        bigger._short = self._short
        for text, asked in self._queried.items():
            if added.isdisjoint(asked):
                bigger._memo[text], bigger._queried[text] = self._memo[text], asked
        return bigger

    def digest(self, normalised: str) -> str:
        """token_digest under this redactor's key."""
        return self._digester(normalised)

    def redact(self, path: str) -> str:
        """`path` (POSIX, relative) with every identifier run replaced by `id-<8 hex>`."""
        if not self.digests:
            return path
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
            self._asked = set()
            found = self._memo[text] = self._redact_component(text)
            if len(self._queried) < MAX_TRACKED:
                self._queried[text] = frozenset(self._asked)
        return found

    def _redact_component(self, text: str) -> str:
        tokens = _tokens(text)
        out, end = [], 0
        for i, width, digest in self._spans(tokens, 0, len(tokens.texts)):
            out += [text[end : tokens.spans[i][0]], f"id-{digest[:8]}"]
            end = tokens.spans[i + width - 1][1]
        return "".join(out) + text[end:]

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
        """The widest known window of tokens[i:hi] starting at `i`, and its digest; (0, '') if none."""
        for width in _widths(tokens, i, hi):
            text = "".join(tokens.texts[i : i + width])
            if len(text) < MIN_LENGTH:
                continue
            digest = self._short.get(text) or self.digest(text)
            self._asked.add(digest)
            if len(text) <= 12:
                self._short[text] = digest
            if digest in self.digests:
                return width, digest
        return 0, ""


def _widths(tokens: _Tokens, i: int, hi: int) -> range | list[int]:
    """Window widths from token i within hi, longest first: up to MAX_WINDOW tokens; in a UID-like run
    (more dotted numbers than that) only its prefixes and its suffix from i, never inner windows."""
    start, stop = tokens.runs[i]
    if stop > start:
        stop = min(stop, hi)
        return range(stop - i, 0, -1) if i == start else [stop - i]
    return range(min(MAX_WINDOW, hi - i, tokens.free[i] - i), 0, -1)


def real_paths(root: Path, redactor: Redactor, exclude: Path | None = None) -> dict[str, list[str]]:
    """Each redacted path under `root` → the real relative paths that redact to it (walked once)."""
    found: dict[str, list[str]] = {}
    for f in list_files(root, exclude=exclude):
        found.setdefault(redactor.redact(f.path), []).append(f.path)
    return found


@dataclass(frozen=True)
class SourcePaths:
    """Where the files an ingest manifest lists are: its paths are real, or redacted (then mapped)."""

    root: Path
    real: dict[str, list[str]] | None = None  # redacted path → real relative paths; None: paths are real

    def resolve(self, shown: str) -> str | None:
        """The real relative path of a manifest path; None when no file, or several, redact to it."""
        if self.real is None:
            return shown
        found = self.real.get(shown, [])
        return found[0] if len(found) == 1 else None

    def why_unresolved(self, shown: str) -> str:
        """One sentence for a manifest path that maps to no single file (never the real path)."""
        if self.real is not None and len(self.real.get(shown, [])) > 1:
            return "Several source files redact to this path; rename one of them and re-run ingest."
        return "No file under the source redacts to this path any more (moved or deleted); re-run ingest."


def source_paths(ingest_dir: Path, key: bytes) -> SourcePaths:
    """The source of an ingest output; with redacted paths, the source walked once and redacted."""
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
    return SourcePaths(root, real_paths(root, Redactor(key, found[1]), exclude=ingest_dir))


def locate(ingest_dir: Path, shown: Sequence[str]) -> list[str]:
    """The real source file (root joined) of each path as outputs show it; several when ambiguous."""
    source = source_paths(ingest_dir, deid.load_key())
    out: list[str] = []
    for path in shown:
        found = [path] if source.real is None else source.real.get(path, [])
        if not found or not all((source.root / p).is_file() for p in found):
            raise InputError(
                f"{path} matches no file under the source of {ingest_dir}; copy it from the manifest "
                "or quarantine report, or re-run ingest if the file has moved."
            )
        out += [(source.root / p).as_posix() for p in found]
    return out
