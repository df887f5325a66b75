"""The one exception pixel decoding and value transforms raise, with its dispositions.parquet reason."""

from __future__ import annotations

__all__ = ["FAILED", "UNSUPPORTED_TS", "DecodeError"]

UNSUPPORTED_TS = "DECODE_UNSUPPORTED_TS"
FAILED = "DECODE_FAILED"


class DecodeError(Exception):
    """Pixel Data that cannot be turned into numbers; `reason` is a dispositions.parquet code.

    `detail` is one sentence naming the transfer syntax or tag and the problem, never a header value.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
