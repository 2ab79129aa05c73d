"""When each watched database's collections are listed next, and what an answer is evidence of.

The poller asks ``collections/list`` of every (cluster, database) it polls, at most once per
``discovery_interval`` (the cluster's own, else the config's), through its scheduler and limiter,
after the job lists and never at their expense: a list that cannot start in time is dropped from
the round and tried again in the next one. A failure, whatever its reason, is only counted: the
model takes it as "no evidence" and keeps everything. A server that does not serve the endpoint
(HTTP 404: an older server, or a gateway that does not pass it) is said once per cluster, not at
every interval.

Not thread-safe: the poller calls it under its own lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import structlog

from ..config.loader import ClusterConfig, Config
from ..guards.redact import redact
from ..upstream.client import ApiError
from .discovery import FAILED_DISCOVERY_RETRY_FLOOR_SECONDS
from .snapshots import CollectionsListing
from .targets import Target

log = structlog.get_logger("exporter.polling.collection_lists")

DatabaseKey = tuple[str, str]
DATABASE_NOT_FOUND = "api_800"
UNSUPPORTED = "http_404"


class CollectionListSchedule:
    """The due time of every watched database's next ``collections/list``."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], float],
        previous: CollectionListSchedule | None = None,
    ) -> None:
        """``previous`` (the schedule of the config before a reload) hands over its due times
        and what it has already said, so a reload neither lists everything at once nor repeats
        a warning."""
        self._config = config
        self._clock = clock
        self._due: dict[DatabaseKey, float] = {}
        if previous is not None:  # a list the old poller still holds is due as it was
            self._due = {
                key: previous._held.get(key, 0.0) if due == math.inf else due
                for key, due in previous._due.items()
            }
        self._unsupported: set[str] = set(previous._unsupported) if previous else set()
        self._held: dict[DatabaseKey, float] = {}
        """The due time of each list queued or running, to give back if it does not run."""

    def due(self, now: float, targets: Iterable[Target]) -> list[Target]:
        """One target per watched database whose list is due now, longest overdue first (so
        none starves when a round cannot fit them all); each is held until its outcome
        (``done``) or until it is given back (``retry``). Databases no longer watched are
        forgotten."""
        watched: dict[DatabaseKey, Target] = {}
        for target in targets:
            watched.setdefault((target.cluster.name, target.database), target)
        self._due = {key: due for key, due in self._due.items() if key in watched}
        chosen = sorted(
            (key for key in watched if self._due.get(key, 0.0) <= now),
            key=lambda key: self._due.get(key, 0.0),
        )
        for key in chosen:
            self._held[key] = self._due.get(key, 0.0)
            self._due[key] = math.inf  # until it ends
        return [watched[key] for key in chosen]

    def retry(self, key: DatabaseKey, after: float = 0.0) -> None:
        """A held list that did not run (dropped from a round, or its token paused): due again
        as it was, so it keeps its place, but not before ``after`` seconds from now."""
        held = self._held.pop(key, 0.0)
        self._due[key] = max(held, self._clock() + after) if after > 0 else held

    def done(self, cluster: ClusterConfig, listing: CollectionsListing, message: str) -> None:
        """Schedule the next list of a database after this outcome, and say what needs saying."""
        key = (listing.cluster, listing.database)
        self._held.pop(key, None)
        every = cluster.discovery_interval or self._config.discovery_interval
        now = self._clock()
        if listing.ok or listing.database_gone or listing.reason == UNSUPPORTED:
            self._due[key] = now + every
        else:
            floor = max(self._config.poll_interval, FAILED_DISCOVERY_RETRY_FLOOR_SECONDS)
            self._due[key] = now + min(every, floor)
        if listing.reason == UNSUPPORTED:
            if cluster.name not in self._unsupported:
                self._unsupported.add(cluster.name)
                log.warning(
                    "collections.list_unsupported",
                    cluster=cluster.name,
                    error=message,
                    effect="no evidence that a collection is gone: collection_retention decides",
                )
            return
        if listing.ok:
            self._unsupported.discard(cluster.name)
        if not listing.ok and not listing.database_gone:
            log.debug(
                "collections.list_failed",
                cluster=cluster.name,
                database=listing.database,
                reason=listing.reason,
                error=message,
            )


def collections_listed(target: Target, at: float, names: tuple[str, ...]) -> CollectionsListing:
    return CollectionsListing(target.cluster.name, target.database, at, True, frozenset(names))


def list_failed(
    target: Target, at: float, failure: Exception, secrets: Iterable[str]
) -> tuple[CollectionsListing, str]:
    """A failed list (a bounded reason) and its message, free of secrets; code 800 (database
    not found) is evidence that the database is gone."""
    if not isinstance(failure, ApiError):
        log.exception("collections.internal_error", cluster=target.cluster.name)
    error = failure if isinstance(failure, ApiError) else ApiError("internal", "")
    message = redact(error.message or type(failure).__name__, *secrets)
    gone = error.reason == DATABASE_NOT_FOUND
    listing = CollectionsListing(
        target.cluster.name, target.database, at, False, database_gone=gone, reason=error.reason
    )
    return listing, message
