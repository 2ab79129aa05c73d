"""The same failure, said once: then at most every ten minutes, with how often it repeated.

A target that fails the same way every cycle logged the same warning every cycle: 20,000
unreachable databases made 210,000 ``poll.failed`` lines a minute, which buried everything else
and cost the log pipeline more than the exporter. Now the first failure of a subject (a
target, a cluster) is always logged at once, with everything it says; the same failure again
within ``every`` seconds is only counted, and the next line says ``repeated=K``. A different
failure, or the same one after a success (``clear``), is new and logged at once. The counters
on /metrics still count every failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

REPEAT_EVERY_SECONDS = 600.0
MAX_SUBJECTS = 100_000
"""Subjects remembered; past it the oldest is forgotten (its next failure is logged as new)."""


@dataclass(slots=True)
class _Said:
    what: Hashable
    at: float
    unsaid: int = 0


class RepeatedLines:
    """Decides, per subject, whether a failure is worth a log line now. Thread-safe."""

    def __init__(
        self,
        every: float = REPEAT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_subjects: int = MAX_SUBJECTS,
    ) -> None:
        self._every = every
        self._clock = clock
        self._max_subjects = max_subjects
        self._said: dict[Hashable, _Said] = {}
        self._lock = threading.Lock()

    def due(self, subject: Hashable, what: Hashable) -> int | None:
        """None to stay silent; else how many repeats went unsaid since the last line (0 for
        a failure that is new for this subject)."""
        now = self._clock()
        with self._lock:
            said = self._said.get(subject)
            if said is None or said.what != what:
                self._said.pop(subject, None)  # re-inserted last: the dict is oldest first
                if len(self._said) >= self._max_subjects:
                    del self._said[next(iter(self._said))]
                self._said[subject] = _Said(what, now)
                return 0
            if now - said.at < self._every:
                said.unsaid += 1
                return None
            repeated, said.unsaid, said.at = said.unsaid, 0, now
            return repeated

    def clear(self, subject: Hashable) -> None:
        """The subject succeeded: its next failure is new."""
        with self._lock:
            self._said.pop(subject, None)
