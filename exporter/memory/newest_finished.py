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

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, count
from operator import attrgetter, is_, is_not
from typing import Any

from ..kinds.declaration import Job
from .history import BoundedCollections

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


@dataclass(slots=True)
class _Collection:
    """A collection's jobs in a database's last listing, and the entry deciding from them left."""

    listed: dict[str, Job]
    """By job id (the first listed of an id)."""
    finished: tuple[Job, ...]
    made: RememberedJob | None = None


@dataclass(frozen=True, slots=True)
class _Listing:
    """A database's jobs as the last ``observe`` took them in, by collection."""

    jobs: tuple[Job, ...]
    collections: dict[str, _Collection]


class NewestFinished(BoundedCollections[RememberedJob]):
    """Newest finished job of every collection of one kind, bounded in count and age."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        super().__init__(max_collections, retention_seconds)
        self._listings: dict[tuple[str, str], _Listing] = {}
        """What the last ``observe`` of each database decided from. A collection whose jobs are
        the very same objects in the same order, whose details did not change, and whose entry
        is the one it left, would be decided the same again, so it is not: at fleet scale a
        database's import list changes every round (a running import's progress), its 200
        collections' finished imports nearly never."""

    def observe(
        self,
        cluster: str,
        database: str,
        jobs: Sequence[Job],
        order: Callable[[Any], JobOrder],
        details: Mapping[str, Any],
        listed_at: float,
        details_changed: Collection[str] | None = None,
    ) -> None:
        """Take one successful listing of a database's jobs into account; ``details`` holds the
        follow-up answers by job id. ``order`` must read nothing but the job, its details and
        when it was first seen (which stays while the job is listed). ``details_changed``: the
        collections some of whose jobs' details changed since the last ``observe`` of this
        database (None: not known, every collection is decided again)."""
        jobs = tuple(jobs)
        last = self._listings.get((cluster, database))
        stale: Collection[str]
        if last is None or details_changed is None:
            collections = _by_collection(jobs, None)
            stale = collections.keys()
        else:
            collections = last.collections
            moved, in_place = _moved(last.jobs, jobs)
            regrouped = _by_collection(jobs, moved) if moved else {}
            stale = set(details_changed)
            for collection, now in regrouped.items():
                before = collections.get(collection)
                if before is not None and _same_inputs(before, now):
                    now.made = before.made  # another job of it changed: not a finished one
                else:
                    stale.add(collection)
            if in_place:  # each position holds a job of the same collection
                collections.update(regrouped)
            else:  # in the order they are listed now, as if grouped anew
                collections = {
                    collection: regrouped[collection]
                    if collection in moved
                    else collections[collection]
                    for collection in dict.fromkeys(map(_COLLECTION, jobs))
                }
        self._listings[(cluster, database)] = _Listing(jobs, collections)
        entries = self._of(cluster, database)
        for collection, listed in collections.items():
            entry = entries.get(collection)
            if entry is not None and entry.last_listed < listed_at:
                entry.last_listed = listed_at
            finished = listed.finished
            if not finished:
                continue
            if collection not in stale and listed.made is not None and listed.made is entry:
                continue  # the same jobs and details: the same newest
            listed.made = self._decide(
                cluster, database, collection, listed, entry, order, details, listed_at
            )

    def _decide(
        self,
        cluster: str,
        database: str,
        collection: str,
        listed: _Collection,
        entry: RememberedJob | None,
        order: Callable[[Any], JobOrder],
        details: Mapping[str, Any],
        listed_at: float,
    ) -> RememberedJob:
        """The entry a collection's listed finished jobs leave: the newest of them, unless the
        remembered one is no longer listed and orders after it."""
        newest = max(listed.finished, key=order)
        newest_order = order(newest)
        newest_id = str(newest.job_id)
        if entry is None or str(entry.job.job_id) in listed.listed or newest_order > entry.order:
            known = details.get(newest_id)
            if known is None and entry is not None and str(entry.job.job_id) == newest_id:
                known = entry.details
            at = listed_at if entry is None else entry.last_listed
            entry = RememberedJob(newest, known, newest_order, at)
            self._put((cluster, database, collection), entry)
        return entry

    def prune(self, now: float, targets: set[tuple[str, str]]) -> None:
        super().prune(now, targets)
        for database in [database for database in self._listings if database not in targets]:
            del self._listings[database]

    def remembered(self, cluster: str, database: str, collection: str) -> RememberedJob | None:
        return self._entries.get((cluster, database, collection))


_COLLECTION = attrgetter("collection")


def _by_collection(jobs: tuple[Job, ...], only: Collection[str] | None) -> dict[str, _Collection]:
    """The jobs of each collection (of those in ``only``; None: of every one), in list order."""
    grouped: dict[str, dict[str, Job]] = {}
    for job in jobs:
        collection = job.collection
        if only is None or collection in only:
            grouped.setdefault(collection, {}).setdefault(str(job.job_id), job)
    return {
        collection: _Collection(listed, tuple(job for job in listed.values() if job.finished))
        for collection, listed in grouped.items()
    }


def _same_inputs(before: _Collection, now: _Collection) -> bool:
    """Whether deciding from ``now`` reads what deciding from ``before`` did: the very same
    finished jobs in the same order, and the same listed ids."""
    return (
        len(now.finished) == len(before.finished)
        and all(map(is_, now.finished, before.finished))
        and now.listed.keys() == before.listed.keys()
    )


def _moved(before: tuple[Job, ...], now: tuple[Job, ...]) -> tuple[set[str], bool]:
    """The collections whose jobs may not be the very same objects in the same order as
    ``before``: those of a position that holds another object now, or, when the length changed,
    of the stretch between the longest same beginning and the longest same end; and whether
    every position still holds a job of the collection it held (so the collections come in the
    same order)."""
    if now is before:
        return set(), True
    if len(now) == len(before):
        positions = list(compress(range(len(now)), map(is_not, now, before)))
        moved = {before[i].collection for i in positions}
        in_place = all(now[i].collection == before[i].collection for i in positions)
        return (
            (moved, True) if in_place else (moved | {now[i].collection for i in positions}, False)
        )
    shortest = min(len(now), len(before))
    head = next(compress(count(), map(is_not, now, before)), shortest)
    tail = next(compress(count(), map(is_not, reversed(now), reversed(before))), shortest)
    tail = min(tail, shortest - head)
    moved = set(map(_COLLECTION, now[head : len(now) - tail]))
    return moved | set(map(_COLLECTION, before[head : len(before) - tail])), False
