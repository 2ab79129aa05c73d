"""The shipped alert rules with their times cut short, for tests that run them in real time.

A rule's times work together: ``for:`` says how long a condition must hold, the lookback
(``last_over_time(...[10m])``) how long missing data resolves nothing, other ranges how far back
a rule or an annotation looks. A test that waits out an outage longer than the lookback, with the
shipped 10m, waits ten minutes; with the lookback cut to 15s it proves the same in 25 seconds.
So the test copy cuts them together, and consistently: every range of the same shipped length
gets the same new length, in expressions and annotations alike, and a subquery's step shrinks
with its range, so it keeps its number of points.

    shortened_rules(workdir, hold=2, lookback=15)        # every for: 2s, every [10m] 15s
    shortened_rules(workdir, ranges={"30m": 20})         # MilvusRefreshJobStuck's window 20s

Each requested range must occur in the rules: a rule rewritten since would otherwise leave a test
waiting for a time that no longer means anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "prometheus" / "alerts.yml"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = r"(?:\d+(?:ms|[smhdwy]))+"
_RANGE = re.compile(rf"\[(?P<range>{_DURATION})(?::(?P<step>{_DURATION})?)?\]")
_OFFSET = re.compile(rf"\boffset\s+(?P<range>{_DURATION})")
_FOR = re.compile(r"(?m)^(?P<key>\s+for:)\s*\S+")
_LOOKBACK = re.compile(rf"last_over_time\([^\[\]]*\[(?P<range>{_DURATION})\]\)")


def seconds(duration: str) -> float:
    """A Prometheus duration (``1h30m``, ``250ms``) in seconds."""
    if not re.fullmatch(_DURATION, duration):
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(
        int(number) * _UNITS[unit] for number, unit in re.findall(r"(\d+)(ms|[smhdwy])", duration)
    )


def duration(value: float) -> str:
    """Seconds as a Prometheus duration: whole seconds as ``15s``, anything finer in ``ms``."""
    if value < 0:
        raise ValueError(f"a negative duration: {value}")
    milliseconds = round(value * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def shipped_lookback(text: str) -> float:
    """The window most ``last_over_time`` of the rules read through: alerts.lookback, which every
    job alert uses (the sight horizon and the failure-changed window are read through once or
    twice per rule, the lookback in every input)."""
    windows = Counter(seconds(match["range"]) for match in _LOOKBACK.finditer(text))
    if not windows:
        raise ValueError("no last_over_time window in the rules")
    return windows.most_common(1)[0][0]


def shortened(
    text: str,
    *,
    hold: float | None = None,
    lookback: float | None = None,
    ranges: Mapping[str, float] | None = None,
) -> str:
    """``text`` (alert rules) with every ``for:`` set to ``hold`` seconds, every range as long as
    the lookback set to ``lookback`` seconds, and every range ``ranges`` names (a shipped
    duration such as ``"30m"``) set to its seconds; None or empty leaves them as shipped."""
    new_length = {seconds(shipped): float(value) for shipped, value in (ranges or {}).items()}
    if lookback is not None:
        new_length[shipped_lookback(text)] = float(lookback)
    found: set[float] = set()

    def rewrite_range(match: re.Match[str]) -> str:
        old = seconds(match["range"])
        if old not in new_length:
            return match[0]
        found.add(old)
        new = new_length[old]
        if match["step"] is None:
            colon = ":" if match[0].endswith(":]") else ""
            return f"[{duration(new)}{colon}]"
        step = seconds(match["step"]) * new / old
        return f"[{duration(new)}:{duration(step)}]"

    def rewrite_offset(match: re.Match[str]) -> str:
        old = seconds(match["range"])
        if old not in new_length:
            return match[0]
        found.add(old)
        return f"offset {duration(new_length[old])}"

    text = _OFFSET.sub(rewrite_offset, _RANGE.sub(rewrite_range, text))
    missing = sorted(set(new_length) - found)
    if missing:
        raise ValueError(f"no range of {[duration(old) for old in missing]} in the rules")
    if hold is not None:
        text, count = _FOR.subn(rf"\g<key> {duration(hold)}", text)
        if not count:
            raise ValueError("no for: in the rules")
    return text


def shortened_rules(
    destination: Path,
    *,
    hold: float | None = None,
    lookback: float | None = None,
    ranges: Mapping[str, float] | None = None,
) -> Path:
    """Write the shipped rules, shortened as :func:`shortened` says, to
    ``destination/alerts.yml`` and return that path (for ``prometheus_process``)."""
    path = destination / "alerts.yml"
    path.write_text(shortened(SHIPPED.read_text(), hold=hold, lookback=lookback, ranges=ranges))
    return path
