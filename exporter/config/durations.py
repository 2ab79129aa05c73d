"""Durations in Prometheus's grammar: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``1d12h``, ``2w``.

One grammar for every duration a user writes (the config, the ``--timeout`` / ``--interval``
flags of the operator commands, the thresholds of the rules), and it is Prometheus's own
(``model.ParseDuration``): a value copied into a rule's ``for:`` means the same there, and one
Prometheus refuses is refused here too.
Whole numbers, each followed by a unit (``ms``, ``s``, ``m``, ``h``, ``d``, ``w`` = 7d,
``y`` = 365d), the units from the largest down and each at most once, no spaces, at most
2^63-1 nanoseconds (about 292 years); ``0`` alone is zero.

A bare number is refused on purpose: ``poll_interval: 30`` could mean seconds or minutes, and
the config should say which. A fraction (``1.5s``, which this project once accepted) is refused
with the whole number to write instead (``1500ms``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_UNIT_MILLISECONDS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
# [0-9], not \d: \d also matches other scripts' digits ("\u0661s"), which no one means here.
_GRAMMAR = re.compile("".join(rf"(?:(?P<{unit}>[0-9]+){unit})?" for unit in _UNIT_MILLISECONDS))
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|[ywdhms])")
_LOOSE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|[ywdhms]))+")
MAX_NANOSECONDS = 2**63 - 1
"""Prometheus holds a duration in a Go ``time.Duration``: int64 nanoseconds."""
_MAX_DIGITS = 20  # past int64 in any unit; int() of thousands of digits is slow or refused
_EXAMPLES = "e.g. 500ms, 30s, 5m, 1h30m, 1d"


def parse_duration(text: str) -> float:
    """Return the duration in seconds, or raise ``ValueError`` with one line saying why.

    >>> parse_duration("1m30s")
    90.0
    """
    if text == "0":
        return 0.0
    match = _GRAMMAR.fullmatch(text)
    if not text or match is None:
        raise ValueError(_refusal(text))
    parts = {unit: digits for unit, digits in match.groupdict().items() if digits is not None}
    if any(len(digits.lstrip("0")) > _MAX_DIGITS for digits in parts.values()):
        raise ValueError(_too_long(text))
    milliseconds = sum(int(digits) * _UNIT_MILLISECONDS[unit] for unit, digits in parts.items())
    if milliseconds * 1_000_000 > MAX_NANOSECONDS:
        raise ValueError(_too_long(text))
    return milliseconds / 1000


def _refusal(text: str) -> str:
    """Why ``text`` is not a duration, as precisely as is cheap to tell."""
    shown = f"{_shown(text)} is not a duration"
    if text != text.strip() or " " in text:
        return f"{shown}; write it without spaces, {_EXAMPLES}"
    if _LOOSE.fullmatch(text):
        if "." in text:
            return f"{shown}; Prometheus durations take whole numbers: {_whole(text)}"
        return f"{shown}; put the units from the largest down, each once ({_EXAMPLES})"
    return f"{shown}; use a whole number with a unit (ms, s, m, h, d, w, y), {_EXAMPLES}"


def _whole(text: str) -> str:
    """What to write instead of a duration with a fraction, when there is such a thing."""
    milliseconds = sum(
        (Decimal(number) * _UNIT_MILLISECONDS[unit] for number, unit in _PART.findall(text)),
        Decimal(0),
    )
    if milliseconds != milliseconds.to_integral_value():
        return "they go down to whole milliseconds, no further"
    return f"write {format_duration(float(milliseconds) / 1000)}"


def _too_long(text: str) -> str:
    return f"{_shown(text)} is too long a duration (Prometheus's longest is about 292y)"


def _shown(text: str) -> str:
    """The text as messages quote it: whole when short, its two ends when long."""
    return repr(text) if len(text) <= 40 else repr(f"{text[:20]}...{text[-10:]}")


def format_duration(seconds: float) -> str:
    """The shortest exact form in one unit (``90s``, ``90m``, ``1500ms``, ``24h``), which
    ``parse_duration`` and Prometheus read back; rounded to the millisecond, the grammar's finest.
    For log lines, messages and generated files."""
    if not math.isfinite(seconds):
        raise ValueError(f"a duration is finite, not {seconds}")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    milliseconds = round(Decimal(repr(seconds)) * 1000)
    if milliseconds == 0:
        return "0s"
    for unit in ("h", "m", "s"):
        size = _UNIT_MILLISECONDS[unit]
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"
