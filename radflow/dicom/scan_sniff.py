"""What a file is, from its first 132 bytes: DICOM with a preamble, a raw DICOM dataset, or what else.

Deciding before parsing matters: pydicom's `force=True` turns any text into a junk dataset, and
parsing a large non-DICOM binary as if it were DICOM wastes time and memory.
"""

from __future__ import annotations

__all__ = ["GZIP_MESSAGE", "sniff"]

GZIP_MESSAGE = "gzip-compressed; gunzip it to ingest"
# Groups a preamble-less dataset can open with: command (0000), meta (0002), DICOMDIR (0004),
# identifying (0008, where ACR-NEMA files and raw datasets start).
_FIRST_GROUPS = frozenset({0x0000, 0x0002, 0x0004, 0x0008})
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x5c\x01\x00\x00", "a NIfTI-1 image"),
    (b"\x1c\x02\x00\x00", "a NIfTI-2 image"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ", "an xz-compressed file"),
)


def sniff(head: bytes) -> str:
    """'dicom' (DICM prefix), 'raw' (starts with a DICOM data element), else why it is not DICOM."""
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:2] == b"\x1f\x8b":
        return GZIP_MESSAGE
    if not head:
        return "not DICOM: the file is empty"
    if _starts_with_element(head):
        return "raw"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"not DICOM: {what}"
    if _looks_like_text(head):
        return "not DICOM: a text file"
    return "not DICOM: no 'DICM' prefix and no DICOM data element at the start"


def _starts_with_element(head: bytes) -> bool:
    """Whether the bytes open with a plausible (group, element) tag, little or big endian."""
    if len(head) < 8:
        return False
    for order in ("little", "big"):
        group = int.from_bytes(head[0:2], order)
        element = int.from_bytes(head[2:4], order)
        if group in _FIRST_GROUPS and element < 0x2000:
            return True
    return False


def _looks_like_text(head: bytes) -> bool:
    """Printable UTF-8 (a cut multi-byte character at the end is allowed)."""
    text = head.decode("utf-8", errors="ignore")
    if len(text.encode()) < len(head) - 3:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)
