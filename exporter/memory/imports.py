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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..upstream.records import ImportJob, ImportJobDetails
from .history import BoundedCollections

ImportOrder = tuple[float, str]
"""(create time or first seen, id key): what ``import_order`` decides the newest job by."""


@dataclass(slots=True)
class RememberedImport:
    """A collection's newest finished import, its order, and when the collection was last listed."""

    job: ImportJob
    details: ImportJobDetails | None
    order: ImportOrder
    last_listed: float


class ImportMemory(BoundedCollections[RememberedImport]):
    """Newest finished import of every collection, bounded in count and age."""

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
