"""The files under a folder, recursively, with their size and modification time; nothing skipped.

Hidden files and files without an extension are listed like any other: a DICOM archive often
names its files by number only. Directory links are followed once (a link cycle is not a loop).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["FileStat", "list_files"]

log = logging.getLogger(__name__)


class FileStat(NamedTuple):
    """A file under the source: POSIX path relative to it, size in bytes, mtime in ns."""

    path: str
    size: int
    mtime_ns: int


def list_files(root: Path, exclude: Path | None = None, hide_names: bool = False) -> list[FileStat]:
    """Every file under `root` (sorted by path), except those under `exclude` (e.g. the output).

    `hide_names` keeps folder names out of the log (ingest.redact_paths: they may name the patient).
    """
    skip = _identity(exclude) if exclude is not None else None
    seen: set[tuple[int, int]] = set()
    found: list[FileStat] = []
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        ident = _identity(folder)
        if ident is None or ident in seen or ident == skip:
            continue
        seen.add(ident)
        try:
            entries = list(os.scandir(folder))
        except OSError as err:  # said out loud: its files cannot be in the manifest
            shown = f"a folder {prefix.count('/')} levels deep" if hide_names else f"folder {prefix or '.'}"
            log.warning("cannot list %s (%s); its files are not scanned", shown, err.strerror)
            continue
        for entry in entries:
            rel = prefix + entry.name
            if _is_dir(entry):
                stack.append((entry.path, rel + "/"))
            else:
                found.append(_stat(entry, rel))
    found.sort()
    return found


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _stat(entry: os.DirEntry[str], rel: str) -> FileStat:
    """Size and mtime following links; a dangling link is listed with zeros (its read will fail)."""
    try:
        st = entry.stat(follow_symlinks=True)
    except OSError:
        return FileStat(rel, 0, 0)
    return FileStat(rel, st.st_size, st.st_mtime_ns)
