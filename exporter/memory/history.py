"""The ``HISTORY`` memory of a job kind: what the exporter remembers of each collection beyond
the server's short memory, its newest success and failure (refresh declares it).

The server lists finished refreshes for about a day. "No successful refresh for longer than a
day" is exactly what the stale alert is for, so the newest completed and the newest failed
refresh of each collection are kept here after the server has dropped them.

Bounded by construction: a collection that has not been listed for ``retention`` (default 7
days: its jobs are all older than the server keeps, or it is gone) is forgotten, and beyond
``max_collections`` the least recently listed go first. "Listed" means its jobs were listed, or
``collections/list`` named it: where that list answers, a collection that still exists is never
forgotten by age, and one confirmed gone (``evidence.py``) is forgotten at once (``dropped``).
All three are counted by reason, so a forgotten collection is never a silent one. Without the bound, an upstream inventing new
collection names on every poll grew the exporter by 160 MB in 40 seconds. ``BoundedCollections``
holds these bounds once; ``newest_finished.py`` keeps the newest finished job of each collection
under the same ones.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..kinds import AnyKind
from ..kinds.declaration import Job

CollectionKey = tuple[str, str, str]
"""(cluster, database, collection)"""
DatabaseKey = tuple[str, str]
"""(cluster, database)"""


@dataclass(slots=True)
class CollectionHistory:
    """The newest completed and failed refresh end times seen, when it was last listed, and
    which job the newest failure was (its id and reason outlive the server's job list too)."""

    last_success: float | None
    last_failure: float | None
    last_listed: float
    failure_job_id: str = ""
    failure_reason: str = ""


class _Listed(Protocol):
    last_listed: float


E = TypeVar("E", bound=_Listed)
_NONE: dict[str, Any] = {}


class BoundedCollections(Generic[E]):
    """One entry per collection, forgotten when not listed for ``retention_seconds`` and, beyond
    ``max_collections``, least recently listed first; forgetting is counted by reason.

    The entries are held twice, in step: in the order they came (which the limit's ties go by)
    and by database, so that what one database's answers touch costs that database's
    collections, not every remembered one (50 databases: 200 collections each, 20,000 in all).
    Every entry goes in by ``_put`` and out by ``_drop``."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds
        self._entries: dict[CollectionKey, E] = {}
        self._databases: dict[DatabaseKey, dict[str, E]] = {}
        """The same entries by (cluster, database), then collection."""
        self._oldest = math.inf
        """Never above the oldest ``last_listed`` (which only ever moves up): until the
        retention's cutoff passes it, no entry is old enough to forget, and none is looked at."""
        self.forgotten: Counter[str] = Counter()
        """Collections forgotten so far, by reason: ``retention``, ``limit`` or ``dropped``."""

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds

    def _put(self, key: CollectionKey, entry: E) -> None:
        self._entries[key] = entry
        self._databases.setdefault((key[0], key[1]), {})[key[2]] = entry
        self._oldest = min(self._oldest, entry.last_listed)

    def _drop(self, key: CollectionKey) -> E | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            database = (key[0], key[1])
            entries = self._databases[database]
            del entries[key[2]]
            if not entries:
                del self._databases[database]
        return entry

    def _of(self, cluster: str, database: str) -> dict[str, E]:
        """The entries of one database by collection (read only)."""
        return self._databases.get((cluster, database), _NONE)

    def prune(self, now: float, targets: set[tuple[str, str]]) -> None:
        """Forget collections of removed targets (silently: the config said so), collections
        not listed within the retention, then the least recently listed beyond the limit."""
        for database in [database for database in self._databases if database not in targets]:
            for name in list(self._databases[database]):
                self._drop((*database, name))
        cutoff = now - self.retention_seconds
        if self._oldest < cutoff:
            expired = [key for key, entry in self._entries.items() if entry.last_listed < cutoff]
            for key in expired:
                self._drop(key)
            self.forgotten["retention"] += len(expired)
            self._oldest = min(
                (entry.last_listed for entry in self._entries.values()), default=math.inf
            )
        excess = len(self._entries) - self.max_collections
        if excess > 0:
            oldest = sorted(self._entries, key=lambda key: self._entries[key].last_listed)
            for key in oldest[:excess]:
                self._drop(key)
            self.forgotten["limit"] += excess

    def forget(self, keys: Iterable[CollectionKey], reason: str | None) -> None:
        """Forget these collections now, counted under ``reason`` (None: silently, the config
        said so)."""
        for key in keys:
            if self._drop(key) is not None and reason is not None:
                self.forgotten[reason] += 1

    def collections_of(self, cluster: str, database: str) -> set[str]:
        return set(self._of(cluster, database))

    def listed(self, cluster: str, database: str, names: Iterable[str], listed_at: float) -> None:
        """``collections/list`` named these collections at ``listed_at``: they still exist."""
        entries = self._of(cluster, database)
        for name in entries.keys() & names:
            entry = entries[name]
            if entry.last_listed < listed_at:
                entry.last_listed = listed_at

    def present(self, cluster: str, database: str, collections: Iterable[str]) -> tuple[str, ...]:
        """Which of a database's collections are remembered."""
        entries = self._of(cluster, database)
        return tuple(name for name in collections if name in entries)

    def touch(self, cluster: str, database: str, collections: Iterable[str], at: float) -> bool:
        """What observing the very same jobs (and details) again does when the collections that
        observing them left remembered (``present``) still are: each was listed ``at``. False,
        and nothing changed, when one was forgotten meanwhile (observe them again)."""
        remembered = self._of(cluster, database)
        try:
            entries = [remembered[name] for name in collections]
        except KeyError:
            return False
        for entry in entries:
            if entry.last_listed < at:
                entry.last_listed = at
        return True

    def items(self) -> list[tuple[CollectionKey, E]]:
        return sorted(self._entries.items())

    def restore(self, entries: Iterable[tuple[CollectionKey, E]]) -> None:
        """Take remembered collections back (from a state file); what is known now wins."""
        for key, entry in entries:
            if key not in self._entries:
                self._put(key, entry)


class JobHistory(BoundedCollections[CollectionHistory]):
    """Newest success and failure of every collection of one kind, bounded in count and age."""

    def __init__(self, max_collections: int, retention_seconds: float, kind: AnyKind) -> None:
        super().__init__(max_collections, retention_seconds)
        self.kind = kind

    def observe(self, cluster: str, database: str, jobs: Iterable[Job], listed_at: float) -> None:
        """Take one successful listing of a database's jobs into account: a job that ended
        (its kind's ``times.ended``) in the succeeded or failed state."""
        ended, states = self.kind.times.ended, self.kind.states
        for job in jobs:
            key = (cluster, database, job.collection)
            entry = self._entries.get(key)
            if entry is None:
                entry = CollectionHistory(None, None, listed_at)
                self._put(key, entry)
            else:
                entry.last_listed = max(entry.last_listed, listed_at)
            end = ended(job, None)
            if end is None:
                continue
            if job.state == states.succeeded and (
                entry.last_success is None or end > entry.last_success
            ):
                entry.last_success = end
            elif job.state == states.failed and (
                entry.last_failure is None or end > entry.last_failure
            ):
                entry.last_failure = end
                entry.failure_job_id = str(job.job_id)
                entry.failure_reason = job.reason
