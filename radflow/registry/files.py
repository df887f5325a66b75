"""Reading a run's small files where any of them may be missing or unreadable (the card says less)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_text(path: Path) -> str | None:
    """The file's text, or None."""
    try:
        return path.read_text()
    except OSError:
        return None


def json_object(text: str | None) -> dict[str, Any]:
    """TEXT as a JSON object, or {} when it is absent, not JSON, or not an object."""
    try:
        loaded = json.loads(text or "")
    except json.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_json(path: Path) -> dict[str, Any]:
    """The file as a JSON object, or {}."""
    return json_object(read_text(path))
