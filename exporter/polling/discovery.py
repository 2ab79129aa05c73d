"""When each pattern cluster's databases are listed next, and what they were at the last success.

The poller runs the ``databases/list`` calls through its own scheduler and limiter; this module
keeps the schedule and the last known lists, so that a failed discovery keeps the last list and is
tried again sooner than a full interval, but never in a tight loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import structlog

from ..config.loader import ClusterConfig, Config
from ..guards.redact import redact
from ..upstream.client import ApiError
from .repeats import RepeatedLines
from .snapshots import DiscoveryOutcome
from .targets import MAX_DATABASE_NAME_LENGTH, discovered_databases

log = structlog.get_logger("exporter.polling.discovery")

FAILED_DISCOVERY_RETRY_FLOOR_SECONDS = 30.0
"""A failed discovery is tried again after the poll interval or this, whichever is longer (and
never later than the cluster's discovery interval)."""


class DiscoverySchedule:
    """The due time and the last discovered databases of every cluster whose ``databases`` hold
    a pattern. Not thread-safe: the poller calls it under its own lock."""

    def __init__(
        self,
        config: Config,
        listed: dict[str, tuple[str, ...]] | None,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._clock = clock
        self.listed: dict[str, tuple[str, ...]] = {
            cluster.name: listed[cluster.name]
            for cluster in config.clusters
            if cluster.database_patterns and listed and cluster.name in listed
        }
        """Each pattern cluster's databases at its last successful discovery (all of them)."""
        self._repeated_failures = RepeatedLines(clock=clock)
        self._skipped_said: dict[str, tuple[int, int]] = {}
        """Per cluster, the (over the limit, names too long) last logged: logged once each."""
        now = clock()
        self._due = {
            cluster.name: 0.0 if cluster.name not in self.listed else now + self._every(cluster)
            for cluster in config.clusters
            if cluster.database_patterns
        }

    @property
    def clusters(self) -> tuple[str, ...]:
        """The clusters that discover their databases."""
        return tuple(self._due)

    def due(self, now: float, queued: Iterable[str]) -> list[ClusterConfig]:
        """The clusters to list now (not already ``queued``); each is held until its outcome."""
        waiting = set(queued)
        clusters = []
        for cluster in self._config.clusters:
            due = self._due.get(cluster.name)
            if due is None or due > now or cluster.name in waiting:
                continue
            self._due[cluster.name] = math.inf  # until this one ends
            clusters.append(cluster)
        return clusters

    def postpone(self, cluster: str, seconds: float) -> None:
        """Try a cluster again after ``seconds`` (the server paused its token)."""
        self._due[cluster] = self._clock() + seconds

    def apply(self, outcome: DiscoveryOutcome, listed: tuple[str, ...] | None) -> None:
        """Take an outcome: a success replaces the cluster's list, a failure keeps it."""
        cluster = next(c for c in self._config.clusters if c.name == outcome.cluster)
        now = self._clock()
        if outcome.ok and listed is not None:
            self.listed[cluster.name] = tuple(
                name for name in listed if len(name) <= MAX_DATABASE_NAME_LENGTH
            )
            self._due[cluster.name] = now + self._every(cluster)
            self._repeated_failures.clear(cluster.name)
            log.info("discovery.finished", cluster=cluster.name, databases=len(outcome.matched))
            self._say_skipped(outcome)
            return
        floor = max(self._config.poll_interval, FAILED_DISCOVERY_RETRY_FLOOR_SECONDS)
        self._due[cluster.name] = now + min(self._every(cluster), floor)
        repeated = self._repeated_failures.due(cluster.name, outcome.reason)
        if repeated is not None:
            log.warning(
                "discovery.failed",
                cluster=cluster.name,
                reason=outcome.reason,
                error=outcome.message,
                known=cluster.name in self.listed,
                **({"repeated": repeated} if repeated else {}),
            )

    def _say_skipped(self, outcome: DiscoveryOutcome) -> None:
        """Log matched databases that are not polled, once for each change in their number."""
        skipped = (outcome.over_limit, outcome.too_long)
        if skipped == self._skipped_said.get(outcome.cluster, (0, 0)):
            return
        self._skipped_said[outcome.cluster] = skipped
        if skipped == (0, 0):
            return
        log.warning(
            "discovery.databases_skipped",
            cluster=outcome.cluster,
            over_limit=outcome.over_limit,
            max_discovered_databases=self._config.max_discovered_databases,
            name_too_long=outcome.too_long,
            max_name_length=MAX_DATABASE_NAME_LENGTH,
            action="not polled",
        )

    def _every(self, cluster: ClusterConfig) -> float:
        return cluster.discovery_interval or self._config.discovery_interval


def discovered(
    cluster: ClusterConfig, at: float, listed: tuple[str, ...], limit: int | None = None
) -> DiscoveryOutcome:
    """A successful discovery: the listed databases that the cluster's patterns select, at
    most ``limit`` of them besides the named ones (``targets.discovered_databases``)."""
    selection = discovered_databases(cluster, listed, limit)
    present = set(listed)
    named = tuple(
        database
        for database in cluster.database_names
        if database in present and cluster.matches(database)
    )
    return DiscoveryOutcome(
        cluster.name,
        at,
        True,
        (*named, *selection.polled),
        over_limit=selection.over_limit,
        too_long=selection.too_long,
    )


def discovery_failed(
    cluster: ClusterConfig, at: float, failure: Exception, secrets: Iterable[str]
) -> DiscoveryOutcome:
    """A failed discovery, with a bounded reason and a message free of secrets."""
    if not isinstance(failure, ApiError):
        log.exception("discovery.internal_error", cluster=cluster.name)
    error = failure if isinstance(failure, ApiError) else ApiError("internal", "")
    message = redact(error.message or type(failure).__name__, *secrets)
    return DiscoveryOutcome(cluster.name, at, False, reason=error.reason, message=message)
