"""Which listed jobs get their kind's follow-up this round (``FollowUp``: ``import/describe``):
at most its ``per_round`` (``max_import_describes``) per target, those waiting longest first;
the rest wait for a later round.

The import list carries no rows, sizes or times, so the exporter describes every import that is
not finished, each round, and every finished one once (its final details). Without a bound, a
database listing 500,000 running imports queued 500,000 describes every round, of which the
rate limit let a few hundred run. Now each round takes the jobs never described first (in the
order listed), then those described longest ago, so every listed job is described within
``listed / max_import_describes`` rounds and none starves. A describe counts as done when it
has been tried: one that did not fit in its round is first in line for the next.

The schedule holds one round number per kept, listed import: bounded by what ``kept.py`` keeps.
It is not thread-safe: the poller calls it under its own lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ..kinds.declaration import Job
from .targets import TargetKey


class DescribeSchedule:
    """Picks each round's describes, and remembers finished jobs already described."""

    def __init__(
        self, per_round: int, described_finished: dict[TargetKey, set[str]] | None = None
    ) -> None:
        self.per_round = per_round
        self.described_finished: dict[TargetKey, set[str]] = (
            {} if described_finished is None else described_finished
        )
        """Finished jobs whose final details were fetched: described once, not again."""
        self._last_tried: dict[TargetKey, dict[str, int]] = {}
        self._round = 0
        self.carried: dict[TargetKey, int] = {}
        """Per target, the describes due at its last listing that were left for later rounds."""

    def pick(
        self, key: TargetKey, listed: Sequence[Job], per_round: int | None = None
    ) -> list[str]:
        """The job ids to describe after this listing of target ``key``: unfinished jobs and
        finished ones not yet described, never tried first, then the longest waiting; at most
        ``per_round`` (default: the schedule's)."""
        self._round += 1
        listed_ids = {str(job.job_id) for job in listed}
        done = self.described_finished.setdefault(key, set())
        done &= listed_ids  # forget jobs the server no longer lists
        tried = self._last_tried.setdefault(key, {})
        for job_id in [job_id for job_id in tried if job_id not in listed_ids]:
            del tried[job_id]
        due = [str(job.job_id) for job in listed if not (job.finished and str(job.job_id) in done)]
        due.sort(key=lambda job_id: tried.get(job_id, -1))  # stable: listing order among equals
        chosen = due[: self.per_round if per_round is None else per_round]
        self.carried[key] = len(due) - len(chosen)
        return chosen

    def tried(self, key: TargetKey, job_id: str, finished: bool) -> None:
        """A describe of ``job_id`` ended (``finished``: its final details came back)."""
        self._last_tried.setdefault(key, {})[job_id] = self._round
        if finished:
            self.described_finished.setdefault(key, set()).add(job_id)

    def forget(self, keys: set[TargetKey]) -> None:
        """Drop what belongs to targets no longer polled (``keys`` are those still polled)."""
        _keep_only(self._last_tried, keys)
        _keep_only(self.carried, keys)
        _keep_only(self.described_finished, keys)


V = TypeVar("V")


def _keep_only(table: dict[TargetKey, V], keys: set[TargetKey]) -> None:
    for key in [key for key in table if key not in keys]:
        del table[key]
