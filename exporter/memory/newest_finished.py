"""The ``NEWEST_FINISHED`` memory of a job kind: the newest finished job of each collection, kept
after the server stops listing it (import and restore declare it).

The server forgets a finished import about three hours after it ends. The per-job series of a
collection's newest finished import are what ``MilvusImportJobFailed`` reads, so without this
memory a failed import never followed by another import of its collection vanished with the
server's copy, and the alert resolved although nothing had been fixed. Here the job record (and
its follow-up details, such as ``import/describe``'s, if known) stays until a later job of the
collection finishes, or until the collection is forgotten.

"Newer" is the kind's ``ordering.newest``: for imports create time, else when the exporter
first saw the job, then the id; for restores the start time. While the remembered job is still
listed the listing decides alone (its order may improve as details arrive); once it is gone, a
listed finished job replaces it only if it orders after it. A job seen for the first time after
a restart without a time orders by that first sighting, so it counts as newer than a remembered
failure: the same approximation the listing makes for jobs without a time.

Bounded like ``history.py``: a collection not listed for ``retention`` is forgotten, and beyond
``max_collections`` the least recently listed go first, counted by reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kinds.declaration import Job
from .history import BoundedCollections, CollectionKey

JobOrder = tuple[float, str]
"""(time, id key): what a kind's ``ordering.newest`` decides the newest job by."""


@dataclass(slots=True)
class RememberedJob:
    """A collection's newest finished job, its details, its order, and when the collection was
    last listed."""

    job: Any
    details: Any
    order: JobOrder
    last_listed: float


class NewestFinished(BoundedCollections[RememberedJob]):
    """Newest finished job of every collection of one kind, bounded in count and age."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        super().__init__(max_collections, retention_seconds)
        self._made: dict[tuple[str, str], dict[str, tuple[object, RememberedJob | None]]] = {}
        """Per database and collection, what the last ``observe`` decided from: (its finished
        jobs and their details, the entry it left). The same again leaves the same entry, so
        it is not ordered again: at fleet scale a database's import list changes every round
        (a running import's progress), its 200 collections' finished imports nearly never."""

    def observe(
        self,
        cluster: str,
        database: str,
        jobs: Iterable[Job],
        order: Callable[[Any], JobOrder],
        details: Mapping[str, Any],
        listed_at: float,
    ) -> None:
        """Take one successful listing of a database's jobs into account; ``details`` holds the
        follow-up answers by job id. ``order`` must read nothing but the job, its details and
        when it was first seen (which stays while the job is listed)."""
        by_collection: dict[str, dict[str, Job]] = {}
        for job in jobs:
            by_collection.setdefault(job.collection, {}).setdefault(str(job.job_id), job)
        made_before = self._made.get((cluster, database), {})
        made: dict[str, tuple[object, RememberedJob | None]] = {}
        for collection, listed in by_collection.items():
            key = (cluster, database, collection)
            entry = self._entries.get(key)
            if entry is not None:
                entry.last_listed = max(entry.last_listed, listed_at)
            finished = tuple(job for job in listed.values() if job.finished)
            if not finished:
                continue
            inputs = (finished, tuple(details.get(str(job.job_id)) for job in finished))
            before = made_before.get(collection)
            if before is not None and before[1] is entry and before[0] == inputs:
                made[collection] = before  # the same jobs and details: the same newest
                continue
            newest = max(finished, key=order)
            newest_order = order(newest)
            newest_id = str(newest.job_id)
            if entry is None or str(entry.job.job_id) in listed or newest_order > entry.order:
                known = details.get(newest_id)
                if known is None and entry is not None and str(entry.job.job_id) == newest_id:
                    known = entry.details
                self._entries[key] = RememberedJob(newest, known, newest_order, listed_at)
            made[collection] = (inputs, self._entries.get(key))
        self._made[(cluster, database)] = made

    def forget(self, keys: Iterable[CollectionKey], reason: str | None) -> None:
        keys = list(keys)
        for cluster, database, collection in keys:
            self._made.get((cluster, database), {}).pop(collection, None)
        super().forget(keys, reason)

    def remembered(self, cluster: str, database: str, collection: str) -> RememberedJob | None:
        return self._entries.get((cluster, database, collection))
