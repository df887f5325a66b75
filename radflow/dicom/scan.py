"""Header scan of one file into one manifest row: what it is, its de-identified keys, no pixels read.

A file is DICOM when it has the 'DICM' prefix, or when it starts with a DICOM data element (raw
datasets and ACR-NEMA files have no preamble) and parses into a dataset with identifying tags.
`force=True` alone would read any text file into a junk dataset, so the first bytes decide first.
Values that are PHI are only ever passed through radflow.dicom.deid, never stored.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset, read_partial
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from radflow.dicom import deid, paths
from radflow.dicom.header import read_plain_meta
from radflow.dicom.scan_sniff import sniff

__all__ = ["COLUMNS", "DICOMDIR_SOP_CLASS", "Header", "KeyMaker", "read_header", "unreadable_file"]

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # a DICOMDIR has no SOPClassUID, only this in its meta
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})  # Pixel Data, Float, Double Float
UNDEFINED_LENGTH = 0xFFFFFFFF
# The only tags the manifest needs: pydicom still walks every element (to find Pixel Data) but
# skips the others' values instead of building elements for them.
MANIFEST_TAGS: list[BaseTag | int] = [
    BaseTag(t)
    for t in (0x00080008, 0x00080016, 0x00080018, 0x00080060, 0x00100010, 0x00100020, 0x00100030,
              0x0020000D, 0x0020000E, 0x00200011, 0x00200013, 0x00280008, 0x00280010, 0x00280011)
]  # fmt: skip
# With ingest.redact_paths, the identifiers that folder and file names may carry are read too:
# AccessionNumber, StudyDate, OtherPatientIDs (the others are in MANIFEST_TAGS already).
REDACTION_TAGS: list[BaseTag | int] = [*MANIFEST_TAGS, *map(BaseTag, (0x00080020, 0x00080050, 0x00101000))]
# PatientID, OtherPatientIDs, PatientName, PatientBirthDate, AccessionNumber, StudyDate, study and
# series UIDs: shared by many files, so each value is digested once; the SOP Instance UID is not.
# UIDs of more than radflow.dicom.paths.MAX_WINDOW components (all real ones) get no digest at all.
SHARED_IDENTIFIERS = (0x00100020, 0x00101000, 0x00100010, 0x00100030, 0x00080050, 0x00080020,
                      0x0020000D, 0x0020000E)  # fmt: skip
SOP_INSTANCE_UID = 0x00080018
# Tags whose presence shows that a preamble-less parse found a real dataset, not junk.
EVIDENCE_TAGS = (0x00080016, 0x00080018, 0x00080060, 0x0020000D, 0x0020000E, 0x00280010, 0x00100020)


class Header(NamedTuple):
    """One manifest row (docs/architecture.md): file facts and de-identified header keys."""

    path: str
    size: int
    mtime_ns: int
    is_dicom: bool
    read_error: str
    transfer_syntax_uid: str
    sop_class_uid: str
    modality: str
    patient_key: str
    study_key: str
    series_key_uid: str
    sop_instance_key: str
    series_number: int | None
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int | None
    image_type: str  # the DICOM multi-value as written: 'ORIGINAL\\PRIMARY\\AXIAL'
    has_pixel_data: bool
    # With ingest.redact_paths, a keyed digest of the real relative path (radflow.dicom.paths.path_key):
    # what ties a row to its one file, which a redacted path may not. '' when paths are real.
    path_key: str = ""


COLUMNS: tuple[str, ...] = Header._fields


_NO_HEADER = ("",) * 7 + (None,) * 5 + ("", False)  # the header columns of a file that has none


def _row(path: str, size: int, mtime_ns: int, is_dicom: bool, error: str) -> Header:
    return Header(path, size, mtime_ns, is_dicom, error, *_NO_HEADER)


# Ingest's fixed error sentences that clean tells apart (radflow.dicom.triage): never values or paths.
CANNOT_OPEN = "cannot open the file"
BAD_NAME = "the file name is not valid UTF-8; rename the file to ingest it"
UNLISTED_FOLDER = "cannot list the folder; its files were not scanned"


def unreadable_file(path: str, size: int, mtime_ns: int, err: OSError) -> Header:
    """The row of a file that cannot be opened (permissions, a dangling link)."""
    reason = err.strerror or type(err).__name__
    return _row(path, size, mtime_ns, False, f"{CANNOT_OPEN}: {reason.lower()}")


def read_header(path: str | Path, rel: str, size: int, mtime_ns: int, keys: KeyMaker) -> Header:
    """Read one file's header (never its pixels) into a manifest row; any failure becomes the row's error.

    A path ending in '/' is a folder the walk could not list: its row says so (see list_files).
    """
    if rel.endswith("/"):
        return _row(rel, size, mtime_ns, False, UNLISTED_FOLDER)
    if not rel.isascii() and not _utf8(rel):  # parquet strings are UTF-8; clean could not reopen it
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return _row(shown, size, mtime_ns, False, BAD_NAME)
    try:
        fp = _unnamed(path)
    except OSError as err:
        return unreadable_file(rel, size, mtime_ns, err)
    with fp:
        kind = sniff(fp.read(132))
        if kind not in ("dicom", "raw"):
            return _row(rel, size, mtime_ns, False, kind)
        pixel_lengths: list[int] = []
        tags = MANIFEST_TAGS if keys.path_digests is None else REDACTION_TAGS
        read = _read_part10(fp, pixel_lengths, tags) if kind == "dicom" else None
        if read is None:
            fp.seek(0)
            pixel_lengths.clear()
            try:
                full = read_partial(fp, _stop_at_pixels(pixel_lengths), force=True, specific_tags=tags)
            except Exception as err:  # a parse failure is a disposition, never a crash
                return _row(rel, size, mtime_ns, kind == "dicom", _parse_error(err))
            read = _Read(full, full.file_meta, full.preamble is not None)
        ds = read.ds
        end = fp.tell()
    if kind == "raw" and not any(t in ds for t in EVIDENCE_TAGS):
        return _row(rel, size, mtime_ns, False, "not DICOM: no 'DICM' prefix and no DICOM header found")
    text, failure = _texts_or_failure(ds)
    if keys.path_digests is not None and failure is None:
        keys.note_identifiers(text)  # a truncated header's identifiers may still name its folder
    problem = "" if pixel_lengths else _incomplete(ds, _meta_end(read), size, end)
    if problem:
        return _row(rel, size, mtime_ns, True, problem)
    # An empty Pixel Data element (length 0) holds no image; undefined length means encapsulated frames.
    has_pixels = bool(pixel_lengths) and pixel_lengths[0] != 0
    if failure is not None:
        return _row(rel, size, mtime_ns, True, _parse_error(failure))
    try:
        return _header(ds, read.meta, text, rel, size, mtime_ns, has_pixels, keys)
    except Exception as err:
        return _row(rel, size, mtime_ns, True, _parse_error(err))


class _Read(NamedTuple):
    """A parsed header: the dataset up to its pixels, its file meta, and whether it had a preamble."""

    ds: Dataset
    meta: Dataset
    preamble: bool


def _read_part10(fp: io.BufferedReader, pixel_lengths: list[int], tags: list[BaseTag | int]) -> _Read | None:
    """A Part 10 file in a plain little-endian syntax read as `read_partial` would, or None to use it.

    `read_partial` reads the same file meta and dataset through the same `read_dataset` (the meta as
    clean's header reader does, radflow.dicom.header.read_plain_meta), then spends a quarter of the
    scan's read time validating the meta, probing for a command set and building a FileDataset that
    nothing here uses. Anything else — a meta without a transfer syntax, big endian, deflate, private
    syntaxes, a command set, nothing after the meta, any parse error — is left to `read_partial`, so
    what a file's row says never depends on which path read it. `fp` is just past the 'DICM' prefix.
    """
    try:
        plain = read_plain_meta(fp)
        if plain is None:
            return None
        meta, uid = plain
        start = fp.tell()
        group = fp.read(2)
        if group in (b"", b"\x00\x00"):  # nothing after the meta, or a command set (group 0000)
            return None
        fp.seek(start)
        ds = read_dataset(
            fp, uid.is_implicit_VR, True, stop_when=_stop_at_pixels(pixel_lengths), specific_tags=tags
        )
    except Exception:  # read_partial reads it again and names the failure as it always has
        return None
    ds.set_original_encoding(uid.is_implicit_VR, True, ds.original_character_set)  # as read_partial
    return _Read(ds, meta, True)


def _unnamed(path: str | Path) -> io.BufferedReader:
    """The file opened for reading under an empty name: pydicom stats a named file twice (for a
    timestamp nobody reads here), which is two system calls per file on the scan's hot path."""
    raw = io.FileIO(path, "rb")
    raw.name = ""
    return io.BufferedReader(raw)


def _texts_or_failure(ds: Dataset) -> tuple[dict[int, str], Exception | None]:
    """The header's text values, decoded once for the manifest and the path digests alike."""
    try:
        return _texts(ds), None
    except Exception as err:  # an undecodable value: the row reports it unless the file is truncated
        return {}, err


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name with bytes undecodable as UTF-8 (surrogate-escaped)
        return False
    return True


def _stop_at_pixels(lengths: list[int]) -> Callable[[BaseTag, str | None, int], bool]:
    """A stop_when for read_partial that also records the Pixel Data length (0 = empty element)."""

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        if tag in PIXEL_TAGS:
            lengths.append(length)
            return True
        return False

    return stop


def _incomplete(ds: Dataset, meta_end: int | None, size: int, end: int) -> str:
    """Why a dataset read to its end is not whole ('' when it is); pydicom stops silently at EOF."""
    if meta_end is not None and end <= meta_end:
        return "DICOM file holds no data elements after its file meta (truncated or empty)"
    elements = ds._dict
    last = elements[next(reversed(elements))] if elements else None  # type: ignore[arg-type]  # file order
    short = (
        isinstance(last, RawDataElement)
        and isinstance(last.value, bytes)
        and last.length != UNDEFINED_LENGTH
        and len(last.value) < last.length
    )
    if short or end > size or 0 < size - end < 8:  # a value cut short, skipped past the end, a tag cut off
        return "DICOM header is truncated (the file ends inside a data element)"
    return ""


def _meta_end(read: _Read) -> int | None:
    """Byte offset where the dataset starts after a preamble and file meta, if the meta says."""
    try:
        length = read.meta.get("FileMetaInformationGroupLength")
        return 132 + 12 + int(length) if length is not None and read.preamble else None
    except (TypeError, ValueError):
        return None


_POSITION = re.compile(r"position (\d+)")


def _parse_error(err: Exception) -> str:
    """One sentence about a header that failed to parse; never the message (it may quote values)."""
    where = _POSITION.search(str(err))
    at = f" at byte {where.group(1)}" if where else ""
    return f"DICOM header could not be parsed ({type(err).__name__}{at})"


class KeyMaker:
    """De-identified keys under one secret, memoised: the files of a series share study and series keys.

    With `collect_path_ids`, it also gathers the path-token digests of each header's identifiers
    (radflow.dicom.paths) in `path_digests`: only digests, so raw values stay in this process.
    """

    def __init__(self, key: bytes, collect_path_ids: bool = False) -> None:
        self.key = key
        self._memo: dict[tuple[str, str], str] = {}
        self.path_digests: set[str] | None = set() if collect_path_ids else None
        self._noted: set[str] = set()  # identifier values already digested (a series repeats them)
        self._digest = paths.digester(key)

    def note_identifiers(self, text: dict[int, str]) -> None:
        """Add the path-token digests of a header's identifiers (its text values) to `path_digests`."""
        assert self.path_digests is not None
        values = [v for v in (text.get(t) for t in SHARED_IDENTIFIERS) if v and v not in self._noted]
        self._noted.update(values)
        uid = text.get(SOP_INSTANCE_UID, "")
        if uid and not paths.is_uid_run(uid):  # a real UID is redacted in paths without a digest
            values.append(uid)
        if values:
            self.path_digests.update(map(self._digest, paths.identifier_forms(values)))

    def pseudonym(self, kind: str, value: str) -> str:
        """deid.pseudonym, computed once per (kind, value)."""
        found = self._memo.get((kind, value))
        if found is None:
            found = self._memo[(kind, value)] = deid.pseudonym(kind, value, self.key)
        return found

    def uid(self, uid: str, shared: bool = True) -> str:
        """deid.remap_uid, computed once per UID when `shared` by many files; '' stays ''."""
        if not uid:
            return ""
        if not shared:  # an instance UID is met once: memoising it would only grow the memo
            return deid.remap_uid(uid, self.key)
        found = self._memo.get(("uid", uid))
        if found is None:
            found = self._memo[("uid", uid)] = deid.remap_uid(uid, self.key)
        return found


def _header(
    ds: Dataset,
    meta: Dataset,
    text: dict[int, str],
    rel: str,
    size: int,
    mtime_ns: int,
    has_pixels: bool,
    keys: KeyMaker,
) -> Header:
    get = text.get
    study_uid = get(0x0020000D, "")
    return Header(
        rel,
        size,
        mtime_ns,
        True,
        "",
        _text(meta, 0x00020010),  # transfer_syntax_uid
        get(0x00080016) or _text(meta, 0x00020002),  # sop_class_uid; a DICOMDIR has only the meta's
        get(0x00080060, "").upper(),  # modality
        _patient_key(text, study_uid, keys),
        keys.pseudonym("study", study_uid) if study_uid else "",
        keys.uid(get(0x0020000E, "")),  # series_key_uid
        keys.uid(get(0x00080018, ""), shared=False),  # sop_instance_key
        _int(get(0x00200011)),  # series_number
        _int(get(0x00200013)),  # instance_number
        _us(ds, 0x00280010),  # rows
        _us(ds, 0x00280011),  # columns
        _int(get(0x00280008)),  # number_of_frames
        get(0x00080008, "").upper(),  # image_type
        has_pixels,
    )


def _patient_key(text: dict[int, str], study_uid: str, keys: KeyMaker) -> str:
    """Pseudonym of PatientID; else of name and birth date; else the study stands for its patient."""
    patient_id = text.get(0x00100020)
    if patient_id:
        return keys.pseudonym("patient", patient_id)
    name, birth = text.get(0x00100010, ""), text.get(0x00100030, "")
    if name or birth:
        return keys.pseudonym("patient", f"name:{name}|birth:{birth}")
    return keys.pseudonym("patient", f"study:{study_uid}") if study_uid else ""


_BINARY_TAGS = frozenset({0x00280010, 0x00280011})  # US values, read by _us


def _texts(ds: Dataset) -> dict[int, str]:
    """Every text value read (MANIFEST_TAGS keeps them few) in one pass, keyed by plain int tags."""
    # One pass over the raw elements rather than a lookup per tag: BaseTag's Python-level __eq__
    # makes each dict lookup slow, and this runs once per file on the scan's hot path.
    out: dict[int, str] = {}
    for tag, elem in ds._dict.items():
        key = int(tag)
        if key not in _BINARY_TAGS:
            out[key] = _decoded(ds, key, elem.value)
    return out


def _text(ds: Dataset, tag: int) -> str:
    """One text value ('' when absent)."""
    elem = ds._dict.get(tag)  # type: ignore[call-overload]  # an int is a tag here
    return "" if elem is None else _decoded(ds, tag, elem.value)


def _decoded(ds: Dataset, tag: int, value: object) -> str:
    """A value as text, stripped of DICOM padding; raw bytes decoded directly when plainly ASCII."""
    if value.__class__ is bytes:
        raw: bytes = value
        # ASCII without ISO 2022 escapes decodes the same under every character set.
        if raw.isascii() and b"\x1b" not in raw:
            return raw.decode("ascii").strip(" \x00")
        try:
            value = ds[tag].value  # pydicom applies (0008,0005) Specific Character Set
        except Exception:
            return raw.decode("latin-1").strip(" \x00")
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v).strip(" \x00") for v in value)
    return "" if value is None else str(value).strip(" \x00")


def _int(text: str | None) -> int | None:
    """An IS value as int; None when absent, empty, multi-valued or malformed ('1A')."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return None


def _us(ds: Dataset, tag: int) -> int | None:
    """A US value (Rows, Columns) from its two raw bytes in the dataset's byte order."""
    elem = ds._dict.get(tag)  # type: ignore[call-overload]  # an int is a tag here
    if elem is None:
        return None
    value = elem.value
    if value.__class__ is bytes:
        if len(value) != 2:
            return None
        little = not isinstance(elem, RawDataElement) or elem.is_little_endian is not False
        return int.from_bytes(value, "little" if little else "big")
    try:
        return int(value[0] if isinstance(value, (MultiValue, list)) else value)
    except (TypeError, ValueError, IndexError):
        return None
