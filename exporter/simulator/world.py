"""The simulated cluster: databases, collections and every kind's jobs, behind one lock.

The world names no kind: each database holds one `_Store` per registered kind (its `Stream` of
seeded jobs and the jobs so far, in list order), and asks the kind how to order, render, keep
and forget them.

The world is extended lazily: a request at simulated time `now` first creates the automatic jobs
whose time has come, drops jobs past retention, then renders. Finished jobs never change, so
their JSON is rendered once and reused; whole list answers are cached until the first instant
at which any record in them could change. That keeps a 2,000-job list answer cheap to serve.
(Only while the wall-clock base of the records stays put, which is always at `time_scale` 1;
faster worlds write "now minus age" and render afresh, see `kinds/common.py`.)

Databases come and go while it serves (`add_database`, `remove_database`), as on a real cluster,
and so do collections (`drop_collection`): a dropped collection leaves `collections/list` and gets
no new jobs, but the jobs it had stay listed until the usual retention drops them, as the server
keeps finished jobs in its own job store for a while whatever became of their collection (unless
the kind says its list only shows the jobs of live collections).
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .kinds import Registry
from .kinds.base import Family, Job, Placement, RecordsAnswer, Settings, SimKind, Stream
from .kinds.common import INFINITY, external_collection_name, topic_name

MAX_CACHED_ANSWERS = 256
FEW_JOBS = 8  # up to this many new jobs are inserted in place; more, and the list is re-sorted


class UnknownDatabaseError(KeyError):
    """The database does not exist (any more): it may be dropped while a request is in flight."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class _CachedRecords:
    generation: int
    valid_until: float
    answer: RecordsAnswer


@dataclass
class _Store:
    """One kind's jobs in one database, in list order, with the records that cannot change."""

    stream: Stream[Any]
    jobs: list[Any] = field(default_factory=list)
    fragments: dict[int, bytes] = field(default_factory=dict)
    next_expiry: float = INFINITY


@dataclass
class _Database:
    name: str
    collections: dict[Family, list[str]]
    stores: dict[str, _Store]
    next_creation: float = INFINITY
    generation: int = 0
    cache: dict[tuple[object, ...], _CachedRecords] = field(default_factory=dict)
    rendered_base: float | None = None


def _fragment(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


class World:
    """All jobs of all databases; every public method takes the simulated time `now`."""

    def __init__(self, settings: Settings, kinds: Registry, epoch_start: float) -> None:
        self._settings = settings
        self._options = settings.options
        self._kinds = kinds
        self.epoch_start = epoch_start
        self._lock = threading.RLock()
        self._databases: dict[str, _Database] = {}
        self._index: dict[str, dict[int, Any]] = {kind.name: {} for kind in kinds}
        self._collection_count = 0
        self._database_count = 0  # never goes down, so a removed database's ids are never reused
        for name in self._options.databases:
            self.add_database(name, self._options.collections_per_database, now=0.0)
        for name in self._options.dropped_collections:
            database, _, collection = name.partition("/")
            try:
                self.drop_collection(database, collection)
            except KeyError:
                raise ValueError(f"cannot drop {name!r}: no such collection") from None

    def wall_base(self, now: float) -> float:
        """The epoch second that simulated time 0 is written as in an answer given at `now`.

        Chosen so that `wall_base(now) + now` is the real clock: events show their simulated
        age before the real time, and never lie in the future however fast the world runs.
        """
        scale = self._options.time_scale
        if scale == 1.0:
            return self.epoch_start
        return self.epoch_start - now * (1.0 - 1.0 / scale)

    # -- shape of the world -------------------------------------------------------------------

    def add_database(self, name: str, collections: int, now: float) -> None:
        """Create a database with its collections and a history of jobs that ends at `now`."""
        with self._lock:
            if name in self._databases:
                raise ValueError(f"database {name!r} already exists")
            families: dict[Family, list[str]] = {
                "external": [external_collection_name(index) for index in range(collections)],
                "plain": [topic_name(index) for index in range(collections)],
            }
            where = Placement(self._database_count, self._collection_count)
            streams = {
                kind.name: kind.new_stream(
                    self._settings, name, tuple(families[kind.family]), where
                )
                for kind in self._kinds
            }
            self._collection_count += collections
            self._database_count += 1
            database = _Database(name, families, {k: _Store(s) for k, s in streams.items()})
            self._databases[name] = database
            for kind in self._kinds:
                self._add_jobs(database, kind, database.stores[kind.name].stream.history(now))
            self._update_next_creation(database)

    def remove_database(self, name: str) -> None:
        """Drop a database and all its jobs, as if someone just dropped it; KeyError if unknown."""
        with self._lock:
            database = self._databases.pop(name, None)
            if database is None:
                raise UnknownDatabaseError(name)
            for kind_name, store in database.stores.items():
                for job in store.jobs:
                    self._index[kind_name].pop(job.job_id, None)

    def drop_collection(self, database: str, collection: str) -> None:
        """Drop one collection, as if someone just dropped it; KeyError if unknown.

        It leaves `collections/list` and gets no new jobs; the jobs it has stay listed (and
        running ones keep their course) until retention drops them."""
        with self._lock:
            db = self._database(database)
            family = next((names for names in db.collections.values() if collection in names), None)
            if family is None:
                raise KeyError(collection)
            family.remove(collection)
            for store in db.stores.values():
                store.stream.drop_collection(collection)
            self._update_next_creation(db)
            db.generation += 1

    def collection_names(self, database: str) -> list[str]:
        """Every collection of a database, external ones first, as `collections/list` has them."""
        with self._lock:
            db = self._database(database)
            return [*db.collections["external"], *db.collections["plain"]]

    def collections(self, database: str, family: Family) -> list[str]:
        with self._lock:
            return list(self._database(database).collections[family])

    def database_names(self) -> list[str]:
        with self._lock:
            return list(self._databases)

    def has_database(self, name: str) -> bool:
        with self._lock:
            return name in self._databases

    # -- answers ------------------------------------------------------------------------------

    def records(
        self,
        kind: SimKind[Any],
        database: str,
        collection: str | None,
        now: float,
        page: tuple[int, int] | None = None,
    ) -> RecordsAnswer:
        """A kind's records of a database (or one collection) in list order, as JSON bytes;
        `page` is (offset, size) for paging."""
        with self._lock:
            db = self._current(database, now)
            store = db.stores[kind.name]
            key: tuple[object, ...] = (kind.name, collection, page)
            cached = db.cache.get(key)
            if cached and cached.generation == db.generation and now < cached.valid_until:
                return cached.answer
            valid_until = min(db.next_creation, store.next_expiry)
            jobs: Iterable[Any] = reversed(store.jobs) if kind.newest_first else store.jobs
            if collection:
                jobs = [job for job in jobs if job.collection == collection]
            if not kind.lists_dropped_collections:
                live = set(self.collection_names(database))
                jobs = [job for job in jobs if job.collection in live]
            listed = list(jobs)
            count = len(listed)
            if page is not None:
                offset, size = page
                listed = listed[offset : offset + size]
            parts: list[bytes] = []
            base = self.wall_base(now)
            for job in listed:
                fragment = store.fragments.get(job.job_id)
                if fragment is None:
                    fragment = _fragment(kind.list_record(job, now, base, self._settings))
                    if now >= job.end_at:
                        store.fragments[job.job_id] = fragment
                    else:
                        valid_until = min(valid_until, kind.next_change(job, now))
                parts.append(fragment)
            answer = RecordsAnswer(b"[" + b",".join(parts) + b"]", count)
            self._remember(db, key, valid_until, answer)
            return answer

    def job(self, kind: SimKind[Any], job_id: int, now: float) -> Job | None:
        """The job with this id, unless it never existed or retention already dropped it."""
        with self._lock:
            job: Job | None = self._index[kind.name].get(job_id)
            if job is None or job.end_at + kind.retention_seconds(self._settings) <= now:
                return None
            return job

    # -- changes ------------------------------------------------------------------------------

    def create_job(
        self, kind: SimKind[Any], database: str, now: float, make: Callable[[Any], Job]
    ) -> Job:
        """Add the job that `make` creates from the database's stream of that kind (a trigger,
        or a test's scripted job); exceptions from `make` leave the world unchanged."""
        with self._lock:
            db = self._current(database, now)
            job = make(db.stores[kind.name].stream)
            self._add_jobs(db, kind, [job])
            self._update_next_creation(db)
            return job

    # -- internals ----------------------------------------------------------------------------

    def _database(self, name: str) -> _Database:
        database = self._databases.get(name)
        if database is None:
            raise UnknownDatabaseError(name)
        return database

    def _current(self, database: str, now: float) -> _Database:
        db = self._database(database)
        self._extend(db, now)
        self._prune(db, now)
        base = self.wall_base(now)
        if base != db.rendered_base:
            for store in db.stores.values():
                store.fragments.clear()
            db.cache.clear()
            db.rendered_base = base
        return db

    def _extend(self, db: _Database, now: float) -> None:
        """Create every automatic job whose creation time has come."""
        if now < db.next_creation:
            return
        due = [(kind, db.stores[kind.name].stream.due(now)) for kind in self._kinds]
        for kind, jobs in due:
            self._add_jobs(db, kind, jobs)
        self._update_next_creation(db)

    def _prune(self, db: _Database, now: float) -> None:
        """Forget finished jobs past retention, as the server does (each kind has its own)."""
        for kind in self._kinds:
            store = db.stores[kind.name]
            if now < store.next_expiry:
                continue
            retention = kind.retention_seconds(self._settings)
            index = self._index[kind.name]
            kept = []
            for job in store.jobs:
                if job.end_at + retention <= now:
                    index.pop(job.job_id, None)
                    store.fragments.pop(job.job_id, None)
                else:
                    kept.append(job)
            store.jobs = kept
            store.next_expiry = min((job.end_at + retention for job in kept), default=INFINITY)
            db.generation += 1

    def _add_jobs(self, db: _Database, kind: SimKind[Any], jobs: list[Any]) -> None:
        if not jobs:
            return
        store = db.stores[kind.name]
        if len(jobs) > FEW_JOBS:
            store.jobs.extend(jobs)
            store.jobs.sort(key=kind.order_key)
        else:
            for job in jobs:
                bisect.insort(store.jobs, job, key=kind.order_key)
        retention = kind.retention_seconds(self._settings)
        index = self._index[kind.name]
        for job in jobs:
            index[job.job_id] = job
            store.next_expiry = min(store.next_expiry, job.end_at + retention)
        db.generation += 1

    def _update_next_creation(self, db: _Database) -> None:
        db.next_creation = min(
            (store.stream.next_auto_at() for store in db.stores.values()), default=INFINITY
        )

    def _remember(
        self, db: _Database, key: tuple[object, ...], valid_until: float, answer: RecordsAnswer
    ) -> None:
        if len(db.cache) >= MAX_CACHED_ANSWERS:
            db.cache.clear()
        db.cache[key] = _CachedRecords(db.generation, valid_until, answer)
