"""Which listed jobs get their kind's follow-up (``FollowUp``: ``import/describe``), in which
order, and how many are left waiting: the describe backlog.

The import list carries no rows, sizes or times, so the exporter describes every import that is
not finished, again and again, and every finished one once (its final details). Each such job
is *due*, and waits since its last describe (or since it was first listed, if never described).
Jobs never described go first (they have no details at all), then the one described longest
ago, across every target of a token: the poller queues the due jobs of each listing in that
order (``Due.order``) and starts them while the round's describe budget lasts (``budget.py``);
those left over keep their place and go first next round, so each due job is described within
``due / budget`` rounds and none starves. Among equal waits an unfinished job goes before a
finished one, then the listing's order. A describe counts as done when it has been tried (a job
whose describe fails must not hold the head of the line).

A target's due jobs are also bounded per listing by its kind's ``per_round``
(``max_import_describes``): a database listing 500,000 running imports queues at most that many
a round, the longest waiting.

The schedule holds one number per due job of each target: bounded by what ``kept.py`` keeps.
It is not thread-safe: the poller calls it under its own lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..kinds.declaration import Job
from .targets import TargetKey


@dataclass(frozen=True, slots=True)
class Due:
    """One job to follow up, and since when (poller clock) its details are wanting."""

    job_id: str
    waiting_since: float
    finished: bool
    described: bool
    """Tried before: ``waiting_since`` is its last describe, else when it was first listed."""

    @property
    def order(self) -> tuple[bool, float, bool]:
        """Never described first, then the oldest wait; among equals an unfinished job first
        (sorting is stable: then the listing's order)."""
        return (self.described, self.waiting_since, self.finished)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Due jobs of one (cluster, kind) left undescribed by the last round."""

    cluster: str
    kind: str
    waiting: int
    oldest_age: float
    """Seconds the longest waiting of them has waited (0 with none waiting)."""


class DescribeSchedule:
    """Picks each listing's due jobs, remembers when each was last described, and finished jobs
    already described."""

    def __init__(
        self, per_round: int, described_finished: dict[TargetKey, set[str]] | None = None
    ) -> None:
        self.per_round = per_round
        self.described_finished: dict[TargetKey, set[str]] = (
            {} if described_finished is None else described_finished
        )
        """Finished jobs whose final details were fetched: described once, not again."""
        self._since: dict[TargetKey, dict[str, float]] = {}
        """Per target, every due job at its last listing: when it was last tried, or first
        listed if never tried."""
        self._described: dict[TargetKey, set[str]] = {}
        """Per target, the due jobs tried at least once."""
        self._tried_this_round: set[tuple[TargetKey, str]] = set()
        self.carried: dict[TargetKey, int] = {}
        """Per target, the due jobs its last listing left out by ``per_round``."""

    def pick(
        self, key: TargetKey, listed: Sequence[Job], now: float, per_round: int | None = None
    ) -> list[Due]:
        """The jobs to follow up after this listing of target ``key`` (at ``now``): unfinished
        jobs and finished ones not yet described, the longest waiting first; at most
        ``per_round`` (default: the schedule's)."""
        done = self.described_finished.setdefault(key, set())
        before = self._since.get(key, {})
        described = self._described.get(key, set())
        since: dict[str, float] = {}
        ids = [str(job.job_id) for job in listed]
        done.intersection_update(ids)  # jobs the server no longer lists are forgotten
        due = []
        for job, job_id in zip(listed, ids, strict=True):  # 1,000 a listing, nearly all described
            finished = job.finished
            if finished and job_id in done:
                continue
            waiting_since = before.get(job_id, now)
            since[job_id] = waiting_since
            due.append(Due(job_id, waiting_since, finished, job_id in described))
        self._since[key] = since
        self._described[key] = described & since.keys()
        due.sort(key=lambda item: item.order)  # stable: listing order among equals
        chosen = due[: self.per_round if per_round is None else per_round]
        self.carried[key] = len(due) - len(chosen)
        return chosen

    def tried(self, key: TargetKey, job_id: str, finished: bool, now: float) -> None:
        """A describe of ``job_id`` ended at ``now`` (``finished``: its final details came)."""
        self._tried_this_round.add((key, job_id))
        since = self._since.get(key)
        if finished:
            self.described_finished.setdefault(key, set()).add(job_id)
            if since is not None:
                since.pop(job_id, None)
            self._described.get(key, set()).discard(job_id)
        elif since is not None and job_id in since:
            since[job_id] = now
            self._described.setdefault(key, set()).add(job_id)

    def first_in_line(self) -> dict[TargetKey, tuple[bool, float]]:
        """Per target with due jobs, the place in line (``Due.order``, less its tie-break) of
        the first of them."""
        first = {}
        for key, since in self._since.items():
            if since:
                described = self._described.get(key, set())
                first[key] = min((job_id in described, at) for job_id, at in since.items())
        return first

    def backlog(self, keys: Iterable[TargetKey], now: float) -> list[Backlog]:
        """Per (cluster, kind) of ``keys`` (the targets whose follow-up is on), the due jobs not
        tried since the last call, and how long the oldest of them has waited; then a new round
        starts."""
        totals: dict[tuple[str, str], tuple[int, float]] = {}
        for key in keys:
            cluster, _database, kind = key
            waiting, oldest = totals.get((cluster, kind), (0, now))
            for job_id, since in self._since.get(key, {}).items():
                if (key, job_id) not in self._tried_this_round:
                    waiting += 1
                    oldest = min(oldest, since)
            totals[(cluster, kind)] = (waiting, oldest)
        self._tried_this_round = set()
        return [
            Backlog(cluster, kind, waiting, max(0.0, now - oldest))
            for (cluster, kind), (waiting, oldest) in sorted(totals.items())
        ]

    def forget(self, keys: set[TargetKey]) -> None:
        """Drop what belongs to targets no longer polled (``keys`` are those still polled)."""
        _keep_only(self._since, keys)
        _keep_only(self._described, keys)
        _keep_only(self.carried, keys)
        _keep_only(self.described_finished, keys)


V = TypeVar("V")


def _keep_only(table: dict[TargetKey, V], keys: set[TargetKey]) -> None:
    for key in [key for key in table if key not in keys]:
        del table[key]
