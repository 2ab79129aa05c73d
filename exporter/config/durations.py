"""Durations written the Prometheus way: ``500ms``, ``30s``, ``5m``, ``1h``, ``1m30s``.

A bare number is refused on purpose: ``poll_interval: 30`` could mean seconds or minutes, and
the config should say which.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# [0-9], not \d: \d also matches other scripts' digits ("\u0661s"), which no one means here.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+")


def parse_duration(text: str) -> float:
    """Return the duration in seconds, or raise ``ValueError`` naming the accepted forms.

    >>> parse_duration("1m30s")
    90.0
    """
    compact = text.strip()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"{text!r} is not a duration; use a number with a unit, e.g. 500ms, 30s, 5m, 1h"
        )
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(compact))
    if not math.isfinite(seconds):  # 400 nines parse as float("inf")
        raise ValueError(f"{text!r} is too long a duration")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form, for log lines and the landing page."""
    if seconds < 1:
        return f"{_plain(seconds * 1000)}ms"
    if seconds < 60 or seconds % 60:
        return f"{_plain(seconds)}s"
    if seconds < 3600 or seconds % 3600:
        return f"{_plain(seconds / 60)}m"
    return f"{_plain(seconds / 3600)}h"


def _plain(number: float) -> str:
    """Digits without an exponent, so the text parses back: ``:g`` turns 1234567 into 1.23457e+06.

    Twelve significant digits: short for 0.1 + 0.2 (``0.3``), yet exact to 1e-12 relative, where
    rounding to six decimals turned 1.2345678912 into 1.234568.
    """
    text = format(Decimal(f"{number:.12g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
