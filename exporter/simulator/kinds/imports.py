"""Bulk imports: `jobs/import/{list,describe}`.

Import progress follows the Milvus data coordinator in both flavours (the same server code
computes it): Pending 0-10, Importing 10-99, Uncommitted and Committing 99 (only for jobs created
with auto-commit off; for the others those phases show as Importing), Completed 100, Failed 0,
and an unknown state "None" with 0. The list carries the job id as a string of digits, no times,
in a fixed random order (Milvus answers it unordered); `reason` only when there is one. Describe
adds rows, sizes, RFC 3339 times and one `details[]` entry per file, whose shape is the
flavour's (`FlavorRules.milvus_file_details`). Finished jobs are forgotten after
`import_retention_seconds` (the server's three hours).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .. import reply
from ..fields import import_job_id, optional_string, page_number
from ..flavor import FlavorRules
from ..reply import Reply
from .base import Placement, Request, Settings, SimKind, Stream
from .common import INFINITY, between, next_step, ramp, rfc3339

LIST = "/v2/vectordb/jobs/import/list"
DESCRIBE = "/v2/vectordb/jobs/import/describe"

ID_BASE = 448_761_313_698_000_000
OWNER_BITS = 12  # room in the low bits of an id for the database's index
WINDOW_SECONDS = 3 * 3600.0
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
CODE_JOB_NOT_FOUND = 2100

PENDING_PROGRESS_TOP = 10
IMPORTED_PROGRESS = 99
# A few files of a running Milvus import show the task state Retry (one in RETRY_EVERY).
RETRY_EVERY = 5

OUTCOMES = ("completed", "failed", "manual_commit", "unknown_state")
FAILURES = (
    "failed to read file {file}: no such file or directory",
    "schema mismatch: field 'embedding' has dim 768, collection expects 1024",
    "disk quota exceeded: import rejected by quota center",
    "row count mismatch in {file}: primary key field 'id' is missing",
)


@dataclass(frozen=True)
class ImportFile:
    name: str
    size_bytes: int
    total_rows: int


@dataclass(frozen=True)
class ImportSchedule:
    """A bulk import: Pending, Importing, then Uncommitted and Committing, then done.

    `imported_at` ends the Importing phase; for a one-phase import it equals `end_at`. A job with
    `auto_commit` off shows [imported_at, committing_at) as Uncommitted and [committing_at,
    end_at) as Committing; with it on, those phases (if any) show as Importing at 99.
    `progress_cap` is where a failing job stopped (the list then says 0, like the server).
    `unknown_state` marks a job the server reports as "None" for ever.
    `order_key` fixes the job's place in the (unordered, like Milvus) list answer.
    """

    job_id: int
    database: str
    collection: str
    created_at: float
    importing_at: float
    imported_at: float
    committing_at: float
    end_at: float
    succeeds: bool
    progress_cap: int
    reason: str
    files: tuple[ImportFile, ...]
    order_key: float
    auto_commit: bool = True
    unknown_state: bool = False

    @property
    def total_rows(self) -> int:
        return sum(file.total_rows for file in self.files)

    @property
    def size_bytes(self) -> int:
        return sum(file.size_bytes for file in self.files)


@dataclass(frozen=True)
class ImportStatus:
    state: str
    progress: int
    finished: bool


def import_status(job: ImportSchedule, now: float) -> ImportStatus:
    if job.unknown_state:
        return ImportStatus("None", 0, False)
    if now < job.importing_at:
        return ImportStatus("Pending", _pending_progress(job, now), False)
    if now < job.imported_at:
        return ImportStatus("Importing", _importing_progress(job, now), False)
    if not job.succeeds:
        return ImportStatus("Failed", 0, True)
    if now < job.end_at:
        if job.auto_commit:
            return ImportStatus("Importing", IMPORTED_PROGRESS, False)
        state = "Uncommitted" if now < job.committing_at else "Committing"
        return ImportStatus(state, IMPORTED_PROGRESS, False)
    return ImportStatus("Completed", 100, True)


def import_next_change(job: ImportSchedule, now: float) -> float:
    """The first simulated instant after `now` at which the job's records may look different."""
    if job.unknown_state:
        return INFINITY
    if now < job.importing_at:
        return next_step(job.created_at, job.importing_at, 0, PENDING_PROGRESS_TOP, now)
    if now < job.imported_at:
        top = _importing_top(job)
        return next_step(job.importing_at, job.imported_at, PENDING_PROGRESS_TOP, top, now)
    if job.succeeds and now < job.committing_at:
        return job.committing_at
    if job.succeeds and now < job.end_at:
        return job.end_at
    return INFINITY


def _pending_progress(job: ImportSchedule, now: float) -> int:
    return ramp(job.created_at, job.importing_at, 0, PENDING_PROGRESS_TOP, now)


def _importing_progress(job: ImportSchedule, now: float) -> int:
    top = _importing_top(job)
    return ramp(job.importing_at, job.imported_at, PENDING_PROGRESS_TOP, top, now)


def _importing_top(job: ImportSchedule) -> int:
    """Where Importing ends: 99 for a job that will succeed, the failure point for one that fails."""
    return max(PENDING_PROGRESS_TOP, min(IMPORTED_PROGRESS, job.progress_cap))


# -- records -----------------------------------------------------------------------------------


def import_list_record(job: ImportSchedule, now: float) -> dict[str, object]:
    """A list entry: no times; `reason` only when there is one (the server leaves the key out)."""
    status = import_status(job, now)
    record: dict[str, object] = {
        "jobId": str(job.job_id),
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
    }
    if status.state == "Failed" and job.reason:
        record["reason"] = job.reason
    return record


def import_describe_record(
    job: ImportSchedule, now: float, base: float, rules: FlavorRules
) -> dict[str, object]:
    """The describe answer: list fields plus rows, sizes, RFC 3339 times and one entry per file.

    A failed job reports progress 0, 0 of 0 rows and no completion time, as the server does.
    """
    status = import_status(job, now)
    failed = status.state == "Failed"
    offset = rules.utc_offset_minutes
    complete_time = rfc3339(base, job.end_at, offset) if status.state == "Completed" else ""
    details = [
        _file_detail(job, index, status, complete_time, rules) for index in range(len(job.files))
    ]
    record: dict[str, object] = {
        "jobId": str(job.job_id),
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
    }
    if failed and job.reason:
        record["reason"] = job.reason
    record.update(
        {
            "importedRows": _imported_rows(job.total_rows, status),
            "totalRows": 0 if failed or job.unknown_state else job.total_rows,
            "fileSize": job.size_bytes,
            "createTime": rfc3339(base, job.created_at, offset),
            "completeTime": complete_time,
            "details": details,
        }
    )
    return record


def _file_detail(
    job: ImportSchedule, index: int, status: ImportStatus, complete_time: str, rules: FlavorRules
) -> dict[str, object]:
    file = job.files[index]
    failed = status.state == "Failed"
    if rules.milvus_file_details:
        name = f"[{file.name}]"
        state = _task_state(job, index, status)
        reason = job.reason if failed else ""
    else:
        name = file.name
        state = _cloud_file_state(status.state)
        reason = job.reason if failed and index == 0 else ""
    detail: dict[str, object] = {
        "fileName": name,
        "fileSize": file.size_bytes,
        "progress": status.progress,
        "completeTime": complete_time,
        "state": state,
        "importedRows": _imported_rows(file.total_rows, status),
        "totalRows": file.total_rows,
    }
    if reason:
        detail["reason"] = reason
    return detail


def _imported_rows(total_rows: int, status: ImportStatus) -> int:
    """Rows land during Importing (progress 10 to 99); none before, all once imported."""
    if status.state in ("Completed", "Uncommitted", "Committing"):
        return total_rows
    if status.state != "Importing":
        return 0
    share = status.progress - PENDING_PROGRESS_TOP
    return total_rows * share // (IMPORTED_PROGRESS - PENDING_PROGRESS_TOP)


def _task_state(job: ImportSchedule, index: int, status: ImportStatus) -> str:
    """A Milvus import task state: Pending, InProgress, Completed, Failed or Retry."""
    state = status.state
    if state == "Failed":
        return "Failed"
    if state in ("Completed", "Uncommitted", "Committing"):
        return "Completed"
    if state == "Importing":
        if status.progress >= IMPORTED_PROGRESS:
            return "Completed"  # the files are in; sorting and index building remain
        return "Retry" if (job.job_id + index) % RETRY_EVERY == 0 else "InProgress"
    return "Pending"


def _cloud_file_state(job_state: str) -> str:
    if job_state in ("Uncommitted", "Committing"):
        return "Completed"
    return job_state


# -- invention ---------------------------------------------------------------------------------


@dataclass
class ImportChain:
    """One database's stream of bulk imports; unlike refreshes they overlap freely."""

    database: str
    owner_index: int
    rng: random.Random
    id_base: int
    collections: tuple[str, ...]
    mean_gap: float
    next_auto_at: float = INFINITY
    sequence: int = 0

    def next_job_id(self) -> int:
        job_id = self.id_base + (self.sequence << OWNER_BITS) + self.owner_index
        self.sequence += 1
        return job_id


def new_import_chain(
    seed: int, database: str, owner_index: int, collections: tuple[str, ...], jobs: int
) -> ImportChain:
    mean_gap = WINDOW_SECONDS / jobs if jobs > 0 else INFINITY
    return ImportChain(
        database=database,
        owner_index=owner_index,
        rng=random.Random(f"{seed}/import/{database}"),
        id_base=ID_BASE + random.Random(f"{seed}/import-ids").randrange(1 << 30),
        collections=collections,
        mean_gap=mean_gap,
    )


def import_gap(chain: ImportChain) -> float:
    if chain.mean_gap == INFINITY:
        return INFINITY
    return chain.rng.uniform(0.2, 1.8) * chain.mean_gap


def random_import(
    chain: ImportChain,
    created_at: float,
    failure_probability: float,
    manual_commit_probability: float,
) -> ImportSchedule:
    """An import job of 1-4 parquet files; a share is created with auto-commit off (two-phase)."""
    rng = chain.rng
    collection = rng.choice(chain.collections)
    files = []
    for part in range(between(rng, 1, 4)):
        size = between(rng, 1_000_000, 2_000_000_000)
        files.append(
            ImportFile(
                name=f"s3://bulk-import/{collection}/part-{part:05d}.parquet",
                size_bytes=size,
                total_rows=size // between(rng, 1_000, 4_000),
            )
        )
    importing_at = created_at + rng.uniform(1.0, 30.0)
    importing = rng.uniform(30.0, 1800.0)
    two_phase = rng.random() < manual_commit_probability
    order_key = rng.random()
    if rng.random() < failure_probability:
        cap = between(rng, 0, 95)
        imported_at = committing_at = end_at = importing_at + importing * cap / 100.0
        succeeds, reason = False, rng.choice(FAILURES).format(file=files[0].name)
    else:
        cap = 99
        imported_at = importing_at + importing
        committing_at = imported_at + (rng.uniform(30.0, 600.0) if two_phase else 0.0)
        end_at = committing_at + (rng.uniform(2.0, 20.0) if two_phase else 0.0)
        succeeds, reason = True, ""
    return ImportSchedule(
        job_id=chain.next_job_id(),
        database=chain.database,
        collection=collection,
        created_at=created_at,
        importing_at=importing_at,
        imported_at=imported_at,
        committing_at=committing_at,
        end_at=end_at,
        succeeds=succeeds,
        progress_cap=cap,
        reason=reason,
        files=tuple(files),
        order_key=order_key,
        auto_commit=not two_phase,
    )


def scripted_import(
    chain: ImportChain,
    created_at: float,
    collection: str,
    outcome: str,
    duration_seconds: float,
    reason: str,
) -> ImportSchedule:
    """An import whose fate a test chose; it rolls no dice, so the seeded jobs stay the same.

    `outcome` is "completed", "failed", "manual_commit" (auto-commit off: Uncommitted, then
    Committing, then Completed) or "unknown_state" (the server reports "None" for ever).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use {', '.join(OUTCOMES)}")
    duration = max(0.0, duration_seconds)
    importing_at = created_at + min(2.0, duration * 0.2)
    end_at = created_at + duration
    imported_at = committing_at = end_at
    if outcome == "manual_commit":
        imported_at = importing_at + (end_at - importing_at) * 0.5
        committing_at = importing_at + (end_at - importing_at) * 0.9
    if outcome == "unknown_state":
        importing_at = imported_at = committing_at = end_at = INFINITY
    job_id = chain.next_job_id()
    files = tuple(
        ImportFile(f"s3://bulk-import/{collection}/part-{part:05d}.parquet", 64_000_000, 40_000)
        for part in range(2)
    )
    failed = outcome == "failed"
    return ImportSchedule(
        job_id=job_id,
        database=chain.database,
        collection=collection,
        created_at=created_at,
        importing_at=importing_at,
        imported_at=imported_at,
        committing_at=committing_at,
        end_at=end_at,
        succeeds=not failed,
        progress_cap=60 if failed else 99,
        reason=reason if failed else "",
        files=files,
        order_key=(job_id % 1000) / 1000,
        auto_commit=outcome != "manual_commit",
        unknown_state=outcome == "unknown_state",
    )


class ImportStream(Stream[ImportSchedule]):
    """A database's imports: one seeded chain, jobs spread over its plain collections."""

    def __init__(self, settings: Settings, chain: ImportChain, history_jobs: int) -> None:
        self._options = settings.options
        self._chain = chain
        self._history_jobs = history_jobs

    def history(self, now: float) -> list[ImportSchedule]:
        chain, count, options = self._chain, self._history_jobs, self._options
        if count <= 0:
            return []
        created = sorted(now - chain.rng.uniform(0.0, WINDOW_SECONDS) for _ in range(count))
        jobs = [
            random_import(chain, t, options.failure_probability, options.manual_commit_probability)
            for t in created
        ]
        if options.auto_refresh:
            chain.next_auto_at = now + import_gap(chain)
        return jobs

    def due(self, now: float) -> list[ImportSchedule]:
        chain, options = self._chain, self._options
        jobs: list[ImportSchedule] = []
        while chain.next_auto_at <= now:
            created = chain.next_auto_at
            jobs.append(
                random_import(
                    chain, created, options.failure_probability, options.manual_commit_probability
                )
            )
            chain.next_auto_at = created + import_gap(chain)
        return jobs

    def next_auto_at(self) -> float:
        return self._chain.next_auto_at

    def scripted(
        self, now: float, collection: str, outcome: str, duration_seconds: float, reason: str
    ) -> ImportSchedule:
        return scripted_import(self._chain, now, collection, outcome, duration_seconds, reason)

    def drop_collection(self, collection: str) -> None:
        chain = self._chain
        if collection not in chain.collections:
            return
        chain.collections = tuple(name for name in chain.collections if name != collection)
        if not chain.collections:
            chain.next_auto_at = INFINITY


class ImportKind(SimKind[ImportSchedule]):
    name = "import"
    list_path = LIST
    describe_path = DESCRIBE
    family = "plain"
    control_route = "imports"
    outcomes = OUTCOMES
    unknown_state = "Paused"
    sample_record = (
        b'{"jobId":"448761313698322011","collectionName":"books","state":"Completed",'
        b'"progress":100}'
    )

    def new_stream(
        self, settings: Settings, database: str, collections: tuple[str, ...], where: Placement
    ) -> ImportStream:
        if where.database_index >= 1 << OWNER_BITS:
            raise ValueError("too many databases for the job id scheme")
        count = settings.options.import_jobs_per_database if collections else 0
        seed = settings.options.seed
        chain = new_import_chain(seed, database, where.database_index, collections, count)
        return ImportStream(settings, chain, count)

    def order_key(self, job: ImportSchedule) -> float:
        return job.order_key

    def retention_seconds(self, settings: Settings) -> float:
        return settings.options.import_retention_seconds

    def public_id(self, job_id: int) -> int | str:
        return str(job_id)

    def default_reason(self, outcome: str) -> str:
        return "import failed: simulated failure"

    def list_record(
        self, job: ImportSchedule, now: float, base: float, settings: Settings
    ) -> dict[str, object]:
        return import_list_record(job, now)

    def next_change(self, job: ImportSchedule, now: float) -> float:
        return import_next_change(job, now)

    def describe_job_id(self, body: dict[str, object]) -> int:
        return import_job_id(body)

    def list_answer(self, request: Request) -> Reply:
        world, rules = request.world, request.settings.rules
        database = request.database()
        collection = optional_string(request.body, "collectionName")
        if collection and collection not in world.collections(database, "plain"):
            request.require_collection(database, collection)
        if not rules.import_paging:
            records = world.records(self, database, collection, request.now)
            return reply.success_with_records(records.records_json, rules.success_code)
        page_size = page_number(request.body, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        current_page = page_number(request.body, "currentPage", 1, None)
        page = ((current_page - 1) * page_size, page_size)
        records = world.records(self, database, collection, request.now, page)
        return reply.success_with_records(
            records.records_json,
            rules.success_code,
            count=records.count,
            currentPage=current_page,
            pageSize=page_size,
        )

    def describe_answer(self, request: Request) -> Reply:
        job_id = import_job_id(request.body)
        job = request.world.job(self, job_id, request.now)
        if not isinstance(job, ImportSchedule):
            message = f"import job does not exist, jobID={job_id}"
            return reply.error(CODE_JOB_NOT_FOUND, message)
        base = request.world.wall_base(request.now)
        rules = request.settings.rules
        return request.success(import_describe_record(job, request.now, base, rules))


KIND = ImportKind()
