"""The newest finished import of each collection, kept after the server stops listing it.

The server forgets a finished import about three hours after it ends. The per-job series of a
collection's newest finished import are what ``MilvusImportJobFailed`` reads, so without this
memory a failed import never followed by another import of its collection vanished with the
server's copy, and the alert resolved although nothing had been fixed. Here the job record (and
its ``import/describe`` details, if known) stays until a later import of the collection finishes,
or until the collection is forgotten.

"Newer" is the order of ``series.import_order``: create time, else when the exporter first saw
the job, then the id. While the remembered job is still listed the listing decides alone (its
order may improve as details arrive); once it is gone, a listed finished job replaces it only if
it orders after it. A job seen for the first time after a restart without details orders by
that first sighting, so it counts as newer than a remembered failure: the same approximation
the listing makes for jobs without a create time.

Bounded like ``history.py``: a collection not listed for ``retention`` is forgotten, and beyond
``max_collections`` the least recently listed go first, counted by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .history import CollectionKey
from .records import ImportJob, ImportJobDetails

ImportOrder = tuple[float, str]
"""(create time or first seen, id key): what ``import_order`` decides the newest job by."""


@dataclass(slots=True)
class RememberedImport:
    """A collection's newest finished import, its order, and when the collection was last listed."""

    job: ImportJob
    details: ImportJobDetails | None
    order: ImportOrder
    last_listed: float


class ImportMemory:
    """Newest finished import of every collection, bounded in count and age."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds
        self._entries: dict[CollectionKey, RememberedImport] = {}
        self.forgotten: Counter[str] = Counter()
        """Collections forgotten so far, by reason: ``retention`` or ``limit``."""

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds

    def observe(
        self,
        cluster: str,
        database: str,
        jobs: Iterable[ImportJob],
        order: Callable[[ImportJob], ImportOrder],
        details: Mapping[str, ImportJobDetails],
        listed_at: float,
    ) -> None:
        """Take one successful listing of a database's import jobs into account."""
        by_collection: dict[str, dict[str, ImportJob]] = {}
        for job in jobs:
            by_collection.setdefault(job.collection, {}).setdefault(job.job_id, job)
        for collection, listed in by_collection.items():
            key = (cluster, database, collection)
            entry = self._entries.get(key)
            if entry is not None:
                entry.last_listed = max(entry.last_listed, listed_at)
            finished = [job for job in listed.values() if job.finished]
            if not finished:
                continue
            newest = max(finished, key=order)
            newest_order = order(newest)
            if entry is None or entry.job.job_id in listed or newest_order > entry.order:
                known = details.get(newest.job_id)
                if known is None and entry is not None and entry.job.job_id == newest.job_id:
                    known = entry.details
                self._entries[key] = RememberedImport(newest, known, newest_order, listed_at)

    def remembered(self, cluster: str, database: str, collection: str) -> RememberedImport | None:
        return self._entries.get((cluster, database, collection))

    def prune(self, now: float, targets: set[tuple[str, str]]) -> None:
        """Forget collections of removed targets (silently: the config said so), collections
        not listed within the retention, then the least recently listed beyond the limit."""
        cutoff = now - self.retention_seconds
        for key in list(self._entries):
            if key[:2] not in targets:
                del self._entries[key]
            elif self._entries[key].last_listed < cutoff:
                del self._entries[key]
                self.forgotten["retention"] += 1
        excess = len(self._entries) - self.max_collections
        if excess > 0:
            oldest = sorted(self._entries, key=lambda key: self._entries[key].last_listed)
            for key in oldest[:excess]:
                del self._entries[key]
            self.forgotten["limit"] += excess

    def items(self) -> list[tuple[CollectionKey, RememberedImport]]:
        return sorted(self._entries.items())

    def restore(self, entries: Iterable[tuple[CollectionKey, RememberedImport]]) -> None:
        """Take remembered imports back (from a state file); what is known now wins."""
        for key, entry in entries:
            self._entries.setdefault(key, entry)
