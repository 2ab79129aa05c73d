"""How a job's values read to people, as ``jobs describe`` and ``jobs list`` show them: times
in RFC 3339 UTC and local time, durations, percents, sizes and counts. Pure functions, so a
kind's declaration can lay out its own ``jobs describe`` (``Shown``) without a terminal.
"""

from __future__ import annotations

import datetime


def short_duration(seconds: float) -> str:
    """``45s``, ``12m30s``, ``3h05m``, ``2d04h``: readable at a glance, sortable by eye."""
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def rfc3339(epoch_seconds: float | None) -> str | None:
    """UTC to the second (``2026-11-23T10:00:05Z``), the form ``jq``'s fromdateiso8601 reads.

    Every time a command prints is in this one form, whatever offset the server wrote it in,
    so times from two clusters compare by eye and by ``sort``.
    """
    if epoch_seconds is None:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(int(epoch_seconds), tz=datetime.timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(epoch_seconds: float | None) -> str:
    if epoch_seconds is None:
        return "-"
    try:
        return datetime.datetime.fromtimestamp(int(epoch_seconds)).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):
        return "?"


def both_times(epoch_seconds: float | None) -> str:
    """Local time for the reader, and RFC 3339 UTC to paste into a ticket."""
    if epoch_seconds is None:
        return "-"
    return f"{local_time(epoch_seconds)} ({rfc3339(epoch_seconds)})"


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def percent(ratio: float) -> int | float:
    """Progress 0..100 as the server sent it: an int unless it really had a fraction."""
    value = round(ratio * 100, 2)
    return int(value) if value.is_integer() else value


def percent_text(ratio: float) -> str:
    return f"{int(ratio * 100 + 1e-9)}%"


def trim(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def size(size_bytes: int | None) -> str:
    """``3.9 GiB``: binary units, one decimal, bytes as they are below 1 KiB."""
    if size_bytes is None:
        return "-"
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size_bytes} B"  # unreachable: the loop returns at TiB


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
