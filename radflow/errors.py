"""Errors a user can meet, and the one place that turns them into a sentence and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class RadflowError(Exception):
    """A problem with the user's input or setup, explained in one sentence; never a bug."""

    exit_code = 2


class ConfigError(RadflowError):
    """params.yaml (or an override) is missing a key, has an unknown key, or a value of the wrong type."""


class InputError(RadflowError):
    """An input file or folder is missing or unusable."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a RadflowError as its sentence on stderr and exit non-zero, without a traceback."""
    try:
        yield
    except RadflowError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
