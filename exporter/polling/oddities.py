"""Odd upstream data, logged once rather than on every poll.

A server that sends an unknown state, a progress of 250 or unreadable records will do so on every
poll; one warning per kind of oddity and target says it, and the counters say how often.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog

from ..kinds.declaration import Job
from ..upstream.client import Listing
from .targets import Target

log = structlog.get_logger("exporter.polling.poller")

MAX_REMEMBERED = 100_000
"""Oddities remembered as already said; past it new ones are not logged (the counters go on)."""

CLOCK_SKEW_LOGGED_SECONDS = 300.0
"""A cluster's clock this far from ours is logged (once, until it comes back within it)."""


class OddityLog:
    """Remembers what was said, per target, so each oddity is logged once."""

    def __init__(self) -> None:
        self._said: set[tuple[object, ...]] = set()
        self._lock = threading.Lock()

    def note(self, target: Target, listing: Listing[Job]) -> None:
        """Log unknown states, out-of-range progress and skipped records once, not every poll."""
        self.note_skipped(target, listing.skipped)
        jobs: Iterable[Job] = listing.jobs
        for job in jobs:
            self.note_job(target, job)

    def note_skipped(self, target: Target, skipped: Iterable[tuple[str, int, str]]) -> None:
        """Log each reason records were skipped for, once."""
        for reason, count, message in skipped:
            self._say_once(
                ("skipped", target.key, reason),
                "poll.records_skipped",
                target,
                reason=reason,
                records=count,
                example=message,
            )

    def note_job(self, target: Target, job: Job) -> None:
        """Log a job's unknown state or out-of-range progress, once."""
        if not job.known_state:
            self._say_once(
                ("state", target.key, job.state), "job.unknown_state", target, state=job.state
            )
        if job.progress_out_of_range:
            self._say_once(
                ("progress", target.key, job.collection, job.job_id),
                "job.progress_out_of_range",
                target,
                collection=job.collection,
                job_id=str(job.job_id),
            )

    def note_clock_skew(self, cluster: str, skew: float | None) -> None:
        """Say once that a cluster's clock and ours disagree by minutes or more (the gauge
        ``milvus_jobs_exporter_upstream_clock_skew_seconds`` has the value at every cycle)."""
        if skew is None:
            return
        key = ("clock_skew", cluster)
        with self._lock:
            if abs(skew) < CLOCK_SKEW_LOGGED_SECONDS:
                self._said.discard(key)  # back in step: a later skew is said again
                return
            if key in self._said:
                return
            self._said.add(key)
        log.warning(
            "poll.clock_skew",
            cluster=cluster,
            skew_s=round(skew),
            hint=(
                "this host's clock is behind the cluster's: job times are judged by the "
                "cluster's clock, but check NTP here"
                if skew > 0
                else "this host's clock is ahead of the cluster's: check NTP here or there"
            ),
        )

    def _say_once(
        self, key: tuple[object, ...], event: str, target: Target, **fields: object
    ) -> None:
        with self._lock:
            if key in self._said or len(self._said) > MAX_REMEMBERED:
                return
            self._said.add(key)
        log.warning(
            event,
            cluster=target.cluster.name,
            database=target.database,
            kind=target.kind,
            **fields,
        )
