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

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..kinds import AnyKind
from ..kinds.declaration import Job

CollectionKey = tuple[str, str, str]
"""(cluster, database, collection)"""


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


class BoundedCollections(Generic[E]):
    """One entry per collection, forgotten when not listed for ``retention_seconds`` and, beyond
    ``max_collections``, least recently listed first; forgetting is counted by reason."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds
        self._entries: dict[CollectionKey, E] = {}
        self.forgotten: Counter[str] = Counter()
        """Collections forgotten so far, by reason: ``retention``, ``limit`` or ``dropped``."""

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds

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

    def forget(self, keys: Iterable[CollectionKey], reason: str | None) -> None:
        """Forget these collections now, counted under ``reason`` (None: silently, the config
        said so)."""
        for key in keys:
            if self._entries.pop(key, None) is not None and reason is not None:
                self.forgotten[reason] += 1

    def keys(self) -> set[CollectionKey]:
        return set(self._entries)

    def collections_of(self, cluster: str, database: str) -> set[str]:
        return {key[2] for key in self._entries if key[:2] == (cluster, database)}

    def listed(self, cluster: str, database: str, names: Iterable[str], listed_at: float) -> None:
        """``collections/list`` named these collections at ``listed_at``: they still exist."""
        for name in names:
            entry = self._entries.get((cluster, database, name))
            if entry is not None:
                entry.last_listed = max(entry.last_listed, listed_at)

    def present(self, cluster: str, database: str, collections: Iterable[str]) -> tuple[str, ...]:
        """Which of a database's collections are remembered."""
        return tuple(name for name in collections if (cluster, database, name) in self._entries)

    def touch(self, cluster: str, database: str, collections: Iterable[str], at: float) -> bool:
        """What observing the very same jobs (and details) again does when the collections that
        observing them left remembered (``present``) still are: each was listed ``at``. False,
        and nothing changed, when one was forgotten meanwhile (observe them again)."""
        entries = [self._entries.get((cluster, database, name)) for name in collections]
        if any(entry is None for entry in entries):
            return False
        for entry in entries:
            if entry is not None:
                entry.last_listed = max(entry.last_listed, at)
        return True

    def items(self) -> list[tuple[CollectionKey, E]]:
        return sorted(self._entries.items())

    def restore(self, entries: Iterable[tuple[CollectionKey, E]]) -> None:
        """Take remembered collections back (from a state file); what is known now wins."""
        for key, entry in entries:
            self._entries.setdefault(key, entry)


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
                entry = self._entries[key] = CollectionHistory(None, None, listed_at)
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
