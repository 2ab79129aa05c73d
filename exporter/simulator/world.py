"""The simulated cluster: databases, collections and their jobs, behind one lock.

The world is extended lazily: a request at simulated time `now` first creates the automatic jobs
whose time has come, drops jobs past retention, then renders. Finished jobs never change, so
their JSON is rendered once and reused; whole list answers are cached until the first instant
at which any record in them could change. That keeps a 2,000-job list answer cheap to serve.
(Only while the wall-clock base of the records stays put, which is always at `time_scale` 1;
faster worlds write "now minus age" and render afresh, see `render.py`.)

Databases come and go while it serves (`add_database`, `remove_database`), as on a real cluster,
and so do collections (`drop_collection`): a dropped collection leaves `collections/list` and gets
no new jobs, but the jobs it had stay listed until the usual retention drops them, as the server
keeps finished jobs in its own job store for a while whatever became of their collection.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from .generator import (
    HISTORY_SPAN_SECONDS,
    IMPORT_OWNER_BITS,
    IMPORT_WINDOW_SECONDS,
    REFRESH_OWNER_BITS,
    ImportChain,
    RefreshChain,
    auto_refresh_gap,
    external_collection_name,
    import_gap,
    new_import_chain,
    new_refresh_chain,
    random_import,
    random_refresh,
    redact_spec,
    scripted_import,
    scripted_refresh,
    topic_name,
)
from .options import SimulatorOptions
from .render import import_list_record, refresh_record
from .schedule import (
    INFINITY,
    REFRESH_RETENTION_SECONDS,
    ImportSchedule,
    RefreshSchedule,
    import_next_change,
    refresh_next_change,
)

MAX_CACHED_ANSWERS = 256


class RefreshActiveError(Exception):
    """A refresh was requested while another one of the same collection is still running."""

    def __init__(self, collection: str) -> None:
        super().__init__(f"a refresh job is already running for collection {collection}")
        self.collection = collection


class UnknownDatabaseError(KeyError):
    """The database does not exist (any more): it may be dropped while a request is in flight."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class RecordsAnswer:
    """A list answer's `records` array as JSON bytes, with the number of records before paging."""

    records_json: bytes
    count: int


@dataclass
class _CachedRecords:
    generation: int
    valid_until: float
    answer: RecordsAnswer


@dataclass
class _Database:
    name: str
    refresh_chains: dict[str, RefreshChain]
    import_chain: ImportChain
    import_collections: tuple[str, ...]
    refresh_jobs: list[RefreshSchedule] = field(default_factory=list)
    import_jobs: list[ImportSchedule] = field(default_factory=list)
    refresh_fragments: dict[int, bytes] = field(default_factory=dict)
    import_fragments: dict[int, bytes] = field(default_factory=dict)
    next_creation: float = INFINITY
    next_refresh_expiry: float = INFINITY
    next_import_expiry: float = INFINITY
    generation: int = 0
    cache: dict[tuple[object, ...], _CachedRecords] = field(default_factory=dict)
    rendered_base: float | None = None


def _fragment(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


class World:
    """All jobs of all databases; every public method takes the simulated time `now`.

    `uri_sources` gives external collections self-hosted Milvus URI sources instead of JSON.
    """

    def __init__(
        self, options: SimulatorOptions, epoch_start: float, uri_sources: bool = False
    ) -> None:
        self._options = options
        self.epoch_start = epoch_start
        self._uri_sources = uri_sources
        self._lock = threading.RLock()
        self._databases: dict[str, _Database] = {}
        self._refresh_index: dict[int, RefreshSchedule] = {}
        self._import_index: dict[int, ImportSchedule] = {}
        self._collection_count = 0
        self._database_count = 0  # never goes down, so a removed database's ids are never reused
        for name in options.databases:
            self.add_database(name, options.collections_per_database, now=0.0)
        for name in options.dropped_collections:
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
            if self._collection_count + collections > 1 << REFRESH_OWNER_BITS:
                raise ValueError("too many collections for the job id scheme")
            if self._database_count >= 1 << IMPORT_OWNER_BITS:
                raise ValueError("too many databases for the job id scheme")
            seed = self._options.seed
            chains: dict[str, RefreshChain] = {}
            for index in range(collections):
                collection = external_collection_name(index)
                chains[collection] = new_refresh_chain(
                    seed,
                    name,
                    collection,
                    self._collection_count,
                    topic_name(index),
                    self._uri_sources,
                )
                self._collection_count += 1
            import_collections = tuple(topic_name(index) for index in range(collections))
            import_jobs = self._options.import_jobs_per_database if collections else 0
            import_chain = new_import_chain(
                seed, name, self._database_count, import_collections, import_jobs
            )
            self._database_count += 1
            database = _Database(name, chains, import_chain, import_collections)
            self._databases[name] = database
            history: list[RefreshSchedule] = []
            for chain in chains.values():
                history.extend(self._refresh_history(chain, now))
            self._add_refresh_jobs(database, history)
            self._add_import_jobs(database, self._import_history(import_chain, import_jobs, now))
            self._update_next_creation(database)

    def remove_database(self, name: str) -> None:
        """Drop a database and all its jobs, as if someone just dropped it; KeyError if unknown."""
        with self._lock:
            database = self._databases.pop(name, None)
            if database is None:
                raise UnknownDatabaseError(name)
            for job in database.refresh_jobs:
                self._refresh_index.pop(job.job_id, None)
            for imported in database.import_jobs:
                self._import_index.pop(imported.job_id, None)

    def drop_collection(self, database: str, collection: str) -> None:
        """Drop one collection, as if someone just dropped it; KeyError if unknown.

        It leaves `collections/list` and gets no new jobs; the jobs it has stay listed (and
        running ones keep their course) until retention drops them."""
        with self._lock:
            db = self._database(database)
            if collection in db.refresh_chains:
                del db.refresh_chains[collection]
            elif collection in db.import_collections:
                remaining = tuple(name for name in db.import_collections if name != collection)
                db.import_collections = db.import_chain.collections = remaining
                if not remaining:
                    db.import_chain.next_auto_at = INFINITY
            else:
                raise KeyError(collection)
            self._update_next_creation(db)
            db.generation += 1

    def collection_names(self, database: str) -> list[str]:
        """Every collection of a database, external ones first, as `collections/list` has them."""
        with self._lock:
            db = self._database(database)
            return [*db.refresh_chains, *db.import_collections]

    def database_names(self) -> list[str]:
        with self._lock:
            return list(self._databases)

    def has_database(self, name: str) -> bool:
        with self._lock:
            return name in self._databases

    def external_collections(self, database: str) -> list[str]:
        with self._lock:
            return list(self._database(database).refresh_chains)

    def import_collections(self, database: str) -> list[str]:
        with self._lock:
            return list(self._database(database).import_collections)

    # -- answers ------------------------------------------------------------------------------

    def refresh_records(self, database: str, collection: str | None, now: float) -> RecordsAnswer:
        """Refresh records of a database (or one collection), newest first, as JSON bytes."""
        with self._lock:
            db = self._current(database, now)
            key: tuple[object, ...] = ("refresh", collection)
            cached = db.cache.get(key)
            if cached and cached.generation == db.generation and now < cached.valid_until:
                return cached.answer
            valid_until = min(db.next_creation, db.next_refresh_expiry)
            parts: list[bytes] = []
            for job in reversed(db.refresh_jobs):
                if collection and job.collection != collection:
                    continue
                fragment = db.refresh_fragments.get(job.job_id)
                if fragment is None:
                    fragment = _fragment(refresh_record(job, now, self.wall_base(now)))
                    if now >= job.end_at:
                        db.refresh_fragments[job.job_id] = fragment
                    else:
                        valid_until = min(valid_until, refresh_next_change(job, now))
                parts.append(fragment)
            answer = RecordsAnswer(b"[" + b",".join(parts) + b"]", len(parts))
            self._remember(db, key, valid_until, answer)
            return answer

    def import_records(
        self,
        database: str,
        collection: str | None,
        now: float,
        page: tuple[int, int] | None = None,
    ) -> RecordsAnswer:
        """Import records in their fixed random order; `page` is (offset, size) for paging."""
        with self._lock:
            db = self._current(database, now)
            key: tuple[object, ...] = ("import", collection, page)
            cached = db.cache.get(key)
            if cached and cached.generation == db.generation and now < cached.valid_until:
                return cached.answer
            valid_until = min(db.next_creation, db.next_import_expiry)
            jobs: Sequence[ImportSchedule] = db.import_jobs
            if collection:
                jobs = [job for job in jobs if job.collection == collection]
            count = len(jobs)
            if page is not None:
                offset, size = page
                jobs = jobs[offset : offset + size]
            parts: list[bytes] = []
            for job in jobs:
                fragment = db.import_fragments.get(job.job_id)
                if fragment is None:
                    fragment = _fragment(import_list_record(job, now))
                    if now >= job.end_at:
                        db.import_fragments[job.job_id] = fragment
                    else:
                        valid_until = min(valid_until, import_next_change(job, now))
                parts.append(fragment)
            answer = RecordsAnswer(b"[" + b",".join(parts) + b"]", count)
            self._remember(db, key, valid_until, answer)
            return answer

    def refresh_job(self, job_id: int, now: float) -> RefreshSchedule | None:
        """The job with this id, unless it never existed or retention already dropped it."""
        with self._lock:
            job = self._refresh_index.get(job_id)
            if job is None or job.end_at + REFRESH_RETENTION_SECONDS <= now:
                return None
            return job

    def import_job(self, job_id: int, now: float) -> ImportSchedule | None:
        with self._lock:
            job = self._import_index.get(job_id)
            if job is None or job.end_at + self._options.import_retention_seconds <= now:
                return None
            return job

    # -- changes ------------------------------------------------------------------------------

    def request_refresh(
        self,
        database: str,
        collection: str,
        now: float,
        external_source: str | None = None,
        external_spec: str | None = None,
    ) -> int:
        """What the refresh endpoint does: refuse while one runs, else start a seeded-fate job."""
        with self._lock:
            db = self._current(database, now)
            chain = db.refresh_chains[collection]
            if chain.busy_until > now:
                raise RefreshActiveError(collection)
            if external_source is not None and external_spec is not None:
                chain.external_source = external_source
                chain.external_spec = redact_spec(external_spec)
            job = random_refresh(
                chain, now, self._options.failure_probability, self._options.hang_probability
            )
            self._start(db, chain, job)
            return job.job_id

    def start_scripted_refresh(
        self,
        database: str,
        collection: str,
        now: float,
        outcome: str,
        duration_seconds: float,
        reason: str,
    ) -> int:
        """A test's refresh: starts even if another one runs, so tests never race the world."""
        with self._lock:
            db = self._current(database, now)
            chain = db.refresh_chains[collection]
            job = scripted_refresh(chain, now, outcome, duration_seconds, reason)
            self._start(db, chain, job)
            return job.job_id

    # -- internals ----------------------------------------------------------------------------

    def start_scripted_import(
        self,
        database: str,
        collection: str,
        now: float,
        outcome: str,
        duration_seconds: float,
        reason: str,
    ) -> int:
        """A test's import with a chosen fate; it leaves the seeded jobs' fates alone."""
        with self._lock:
            db = self._current(database, now)
            job = scripted_import(
                db.import_chain, now, collection, outcome, duration_seconds, reason
            )
            self._add_import_jobs(db, [job])
            return job.job_id

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
            db.refresh_fragments.clear()
            db.import_fragments.clear()
            db.cache.clear()
            db.rendered_base = base
        return db

    def _start(self, db: _Database, chain: RefreshChain, job: RefreshSchedule) -> None:
        chain.busy_until = max(chain.busy_until, job.end_at)
        if self._options.auto_refresh:
            chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        self._add_refresh_jobs(db, [job])
        self._update_next_creation(db)

    def _refresh_history(self, chain: RefreshChain, now: float) -> list[RefreshSchedule]:
        """Older jobs finished one after another; only the newest may still run or hang."""
        count = self._options.refresh_jobs_per_collection
        options = self._options
        jobs: list[RefreshSchedule] = []
        budget_per_job = HISTORY_SPAN_SECONDS / max(count, 1)
        time_factor = min(1.0, budget_per_job / 1200.0)
        mean_gap = min(1800.0, budget_per_job * 0.5)
        start = 0.0
        for number in range(count):
            newest = number == count - 1
            hang = options.hang_probability if newest else 0.0
            factor = 1.0 if newest else time_factor
            job = random_refresh(chain, start, options.failure_probability, hang, factor)
            jobs.append(job)
            start = job.end_at + chain.rng.uniform(0.2, 1.8) * mean_gap
        if jobs:
            shift = now - chain.rng.uniform(0.0, 900.0) - jobs[-1].created_at
            jobs = [_shift_refresh(job, shift) for job in jobs]
            chain.busy_until = jobs[-1].end_at
        else:
            chain.busy_until = now
        if options.auto_refresh:
            chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        return jobs

    def _import_history(self, chain: ImportChain, count: int, now: float) -> list[ImportSchedule]:
        if count <= 0:
            return []
        created = sorted(now - chain.rng.uniform(0.0, IMPORT_WINDOW_SECONDS) for _ in range(count))
        options = self._options
        jobs = [
            random_import(chain, t, options.failure_probability, options.manual_commit_probability)
            for t in created
        ]
        if self._options.auto_refresh:
            chain.next_auto_at = now + import_gap(chain)
        return jobs

    def _extend(self, db: _Database, now: float) -> None:
        """Create every automatic job whose creation time has come."""
        if now < db.next_creation:
            return
        options = self._options
        refreshes: list[RefreshSchedule] = []
        for chain in db.refresh_chains.values():
            while chain.next_auto_at <= now:
                job = random_refresh(
                    chain, chain.next_auto_at, options.failure_probability, options.hang_probability
                )
                refreshes.append(job)
                chain.busy_until = max(chain.busy_until, job.end_at)
                chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        imports: list[ImportSchedule] = []
        chain_of_imports = db.import_chain
        while chain_of_imports.next_auto_at <= now:
            job_created = chain_of_imports.next_auto_at
            imports.append(
                random_import(
                    chain_of_imports,
                    job_created,
                    options.failure_probability,
                    options.manual_commit_probability,
                )
            )
            chain_of_imports.next_auto_at = job_created + import_gap(chain_of_imports)
        self._add_refresh_jobs(db, refreshes)
        self._add_import_jobs(db, imports)
        self._update_next_creation(db)

    def _prune(self, db: _Database, now: float) -> None:
        """Forget finished jobs past retention, as the server does (~24 h refresh, ~3 h import)."""
        if now >= db.next_refresh_expiry:
            kept = []
            for job in db.refresh_jobs:
                if job.end_at + REFRESH_RETENTION_SECONDS <= now:
                    self._refresh_index.pop(job.job_id, None)
                    db.refresh_fragments.pop(job.job_id, None)
                else:
                    kept.append(job)
            db.refresh_jobs = kept
            db.next_refresh_expiry = min(
                (job.end_at + REFRESH_RETENTION_SECONDS for job in kept), default=INFINITY
            )
            db.generation += 1
        if now >= db.next_import_expiry:
            kept_imports = []
            for imported in db.import_jobs:
                if imported.end_at + self._options.import_retention_seconds <= now:
                    self._import_index.pop(imported.job_id, None)
                    db.import_fragments.pop(imported.job_id, None)
                else:
                    kept_imports.append(imported)
            db.import_jobs = kept_imports
            db.next_import_expiry = min(
                (job.end_at + self._options.import_retention_seconds for job in kept_imports),
                default=INFINITY,
            )
            db.generation += 1

    def _add_refresh_jobs(self, db: _Database, jobs: list[RefreshSchedule]) -> None:
        if not jobs:
            return
        jobs.sort(key=_refresh_order)
        needs_sort = bool(db.refresh_jobs) and _refresh_order(jobs[0]) < _refresh_order(
            db.refresh_jobs[-1]
        )
        db.refresh_jobs.extend(jobs)
        if needs_sort:
            db.refresh_jobs.sort(key=_refresh_order)
        for job in jobs:
            self._refresh_index[job.job_id] = job
            db.next_refresh_expiry = min(
                db.next_refresh_expiry, job.end_at + REFRESH_RETENTION_SECONDS
            )
        db.generation += 1

    def _add_import_jobs(self, db: _Database, jobs: list[ImportSchedule]) -> None:
        if not jobs:
            return
        if len(jobs) > 8:
            db.import_jobs.extend(jobs)
            db.import_jobs.sort(key=_import_order)
        else:
            for job in jobs:
                bisect.insort(db.import_jobs, job, key=_import_order)
        for job in jobs:
            self._import_index[job.job_id] = job
            db.next_import_expiry = min(
                db.next_import_expiry, job.end_at + self._options.import_retention_seconds
            )
        db.generation += 1

    def _update_next_creation(self, db: _Database) -> None:
        db.next_creation = min(
            [chain.next_auto_at for chain in db.refresh_chains.values()]
            + [db.import_chain.next_auto_at]
        )

    def _remember(
        self, db: _Database, key: tuple[object, ...], valid_until: float, answer: RecordsAnswer
    ) -> None:
        if len(db.cache) >= MAX_CACHED_ANSWERS:
            db.cache.clear()
        db.cache[key] = _CachedRecords(db.generation, valid_until, answer)


def _refresh_order(job: RefreshSchedule) -> tuple[float, int]:
    return (job.created_at, job.job_id)


def _import_order(job: ImportSchedule) -> float:
    return job.order_key


def _shift_refresh(job: RefreshSchedule, shift: float) -> RefreshSchedule:
    return RefreshSchedule(
        job_id=job.job_id,
        database=job.database,
        collection=job.collection,
        created_at=job.created_at + shift,
        running_at=job.running_at + shift,
        end_at=job.end_at + shift,
        succeeds=job.succeeds,
        progress_rate=job.progress_rate,
        progress_cap=job.progress_cap,
        reason=job.reason,
        external_source=job.external_source,
        external_spec=job.external_spec,
    )
