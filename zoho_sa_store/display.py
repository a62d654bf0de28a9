"""Masking and formatting of stored tokens for the ``zoho-sa-store`` command line.

Every value that the command line prints about a token passes through this
module, so one place decides what a secret looks like on a terminal: masked
unless the caller asks to reveal it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

__all__ = [
    "DATA_COLUMNS",
    "EXPORT_COLUMNS",
    "SECRET_COLUMNS",
    "ProgressBar",
    "count_of",
    "describe_expiry",
    "format_token_details",
    "format_token_lines",
    "format_utc",
    "iso_utc",
    "mask_secret",
    "row_to_json",
]

DATA_COLUMNS = (
    "id",
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "expiry_time",
    "redirect_url",
    "api_domain",
)
"""The fields of the SDK's ``OAuthToken`` as columns, in the order of the SDK's own ``DBStore`` table."""

EXPORT_COLUMNS = (*DATA_COLUMNS, "created_at", "updated_at")
"""The keys of a token in JSON output. The ``*_digest`` columns are derived from the tokens and left out."""

SECRET_COLUMNS = frozenset({"client_secret", "refresh_token", "access_token", "grant_token"})

_MASK = "…"
_MASK_PREFIX_LENGTH = 5
_MASK_SUFFIX_LENGTH = 4
_MASK_MIN_HIDDEN = 8
"""Characters that a masked value always hides; a shorter value is masked whole."""

_MISSING = "-"


def mask_secret(value: str | None) -> str | None:
    """Mask a secret for display: ``1000.…a1b2``.

    The prefix up to and including the first dot is kept when it is at most
    five characters (Zoho's tokens start with ``1000.``), and so are the last
    four characters. A value too short to hide at least eight characters
    becomes ``…`` alone.
    """
    if value is None:
        return None
    dot = value.find(".")
    prefix = value[: dot + 1] if 0 <= dot < _MASK_PREFIX_LENGTH else ""
    if len(value) - len(prefix) - _MASK_SUFFIX_LENGTH < _MASK_MIN_HIDDEN:
        return _MASK
    return f"{prefix}{_MASK}{value[-_MASK_SUFFIX_LENGTH:]}"


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """Format a count with its noun in the right number: ``1 token``, ``0 tokens``, ``2 tokens``.

    ``plural`` defaults to ``noun`` with an ``s`` appended.
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural if plural is not None else noun + 's'}"


def format_utc(moment: datetime) -> str:
    """Format a naive UTC (or aware) time as ``2026-12-04 10:12:24 UTC``."""
    return _as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_utc(moment: datetime) -> str:
    """Format a naive UTC (or aware) time as ISO 8601 with a ``Z``: ``2026-12-04T10:12:24.123456Z``."""
    return _as_utc(moment).replace(tzinfo=None).isoformat() + "Z"


def describe_expiry(expiry_time: int | None, now: datetime) -> str:
    """Describe an access-token expiry in epoch milliseconds, relative to ``now``.

    Returns:
        ``2026-12-04 10:12:24 UTC (in 12 min)``, ``... (expired)``, or ``-``
        when no expiry is stored. An expiry beyond the year 9999 is shown in
        milliseconds.
    """
    if expiry_time is None:
        return _MISSING
    try:
        expires = datetime.fromtimestamp(expiry_time / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{expiry_time} ms (beyond the year 9999)"
    seconds = int((expires - _as_utc(now)).total_seconds())
    return f"{format_utc(expires)} ({_relative(seconds)})"


def _relative(seconds: int) -> str:
    if seconds <= 0:
        return "expired"
    if seconds < 60:
        return f"in {seconds} s"
    if seconds < 3600:
        return f"in {seconds // 60} min"
    if seconds < 48 * 3600:
        return f"in {seconds // 3600} h {seconds % 3600 // 60} min"
    return f"in {seconds // 86400} days"


def row_to_json(row: Mapping[Any, Any], *, reveal: bool) -> dict[str, str | None]:
    """Convert a stored row to the JSON object of ``list --json``, ``show --json`` and ``export``.

    ``expiry_time`` becomes the string of epoch milliseconds that the SDK uses,
    and the timestamps ISO 8601 UTC strings. Secrets are masked unless ``reveal`` is True.
    """
    result: dict[str, str | None] = {}
    for column in EXPORT_COLUMNS:
        value = row[column]
        if value is None:
            result[column] = None
        elif isinstance(value, datetime):
            result[column] = iso_utc(value)
        elif column in SECRET_COLUMNS and not reveal:
            result[column] = mask_secret(value)
        else:
            result[column] = str(value)
    return result


def format_token_lines(rows: Iterable[Mapping[Any, Any]], now: datetime) -> list[str]:
    """Format rows as aligned lines under a header, one line per token, without any secret."""
    header = ("ID", "USER NAME", "CLIENT ID", "API DOMAIN", "ACCESS TOKEN EXPIRES", "UPDATED")
    table = [header]
    for row in rows:
        table.append(
            (
                row["id"],
                row["user_name"] or _MISSING,
                row["client_id"] or _MISSING,
                row["api_domain"] or _MISSING,
                describe_expiry(row["expiry_time"], now),
                format_utc(row["updated_at"]),
            )
        )
    widths = [max(len(line[index]) for line in table) for index in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]


def format_token_details(row: Mapping[Any, Any], now: datetime, *, reveal: bool) -> list[str]:
    """Format one row as ``name  value`` lines, with secrets masked unless ``reveal`` is True."""
    values = row_to_json(row, reveal=reveal)
    width = max(len(column) for column in EXPORT_COLUMNS)
    lines = []
    for column in EXPORT_COLUMNS:
        text = values[column]
        if text is None:
            text = _MISSING
        elif column == "expiry_time":
            text = f"{describe_expiry(row['expiry_time'], now)}, epoch ms {text}"
        lines.append(f"{column.ljust(width)}  {text}")
    return lines


def _as_utc(moment: datetime) -> datetime:
    # The table stores naive UTC times, because MySQL's DATETIME has no time zone.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second.

    It draws nothing unless the stream is a terminal and the total reaches
    ``min_total``, so redirected output and short runs stay quiet.
    """

    _WIDTH = 30
    _INTERVAL = 0.1
    """Seconds between two redraws."""

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, min_total: int = 1000) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._total = total
        self._label = label
        self._done = 0
        self._drawn_at = 0.0
        self._visible = False
        self.enabled = total >= min_total and self._stream.isatty()

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more finished items and redraw when the interval has passed."""
        self._done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at >= self._INTERVAL or self._done >= self._total:
            self._drawn_at = now
            self._draw()

    def clear(self) -> None:
        """Erase the bar, so that a message can take its line; the next redraw brings it back."""
        if self._visible:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._visible = False

    def _draw(self) -> None:
        filled = self._WIDTH * self._done // self._total
        percent = 100 * self._done // self._total
        bar = "#" * filled + "." * (self._WIDTH - filled)
        self._stream.write(f"\r{self._label} [{bar}] {self._done:,}/{self._total:,} rows ({percent}%)")
        self._stream.flush()
        self._visible = True
