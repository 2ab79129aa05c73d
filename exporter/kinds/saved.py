"""The checked readers of a state file entry's fields, shared by the state file (``memory/``) and
the kinds that keep a job in it (``Saved``): a bad value raises, and costs only its entry.

Names are strings; a job id a string (a number, from an older hand-edited file, is read as
one); times finite and plausible (from 2015 to a day ahead of ``now``); counts non-negative
integers; ratios within 0..1.
"""

from __future__ import annotations

import time
from typing import Any

from ..upstream.records import EARLIEST_PLAUSIBLE_TIME, LATEST_PLAUSIBLE_AHEAD_SECONDS


class SavedFields:
    """Reads the fields of a state file entry (``declaration.Fields``)."""

    def __init__(self, now: float | None = None) -> None:
        self.latest = (time.time() if now is None else now) + LATEST_PLAUSIBLE_AHEAD_SECONDS

    def text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError("a name is not a string")
        return value

    def identifier(self, value: Any) -> str:
        """A job id: written as a string; a number (an older hand-edited file) is read as one."""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError("a job id is not a string")
        return str(value)

    def time(self, value: Any) -> float | None:
        """An optional time: None, or finite and from 2015 to a day ahead."""
        if value is None:
            return None
        return self.required_time(value)

    def required_time(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("a time is not a number")
        number = float(value)
        if not EARLIEST_PLAUSIBLE_TIME <= number <= self.latest:  # NaN fails both
            raise ValueError("a time is not plausible")
        return number

    def count(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("a count is not a non-negative integer")
        return value

    def required_count(self, value: Any) -> int:
        count = self.count(value)
        if count is None:
            raise ValueError("a count is missing")
        return count

    def ratio(self, value: Any) -> float:
        number = float(value)
        if not 0.0 <= number <= 1.0:
            raise ValueError("a progress ratio is outside 0..1")
        return number
