"""Bulk imports: `jobs/import/{list,describe}`.

Import progress follows the Milvus data coordinator in both flavours (the same server code
computes it): Pending 0-10, Importing 10-99, Uncommitted and Committing 99 (only for jobs created
with auto-commit off; for the others those phases show as Importing), Completed 100, Failed 0,
and an unknown state "None" with 0. The list carries the job id as a string of digits, no times,
in a fixed random order (Milvus answers it unordered); `reason` only when there is one. Describe
adds rows, sizes, RFC 3339 times and one `details[]` entry per file, whose shape is the
flavour's (`FlavorRules.milvus_file_details`). Finished jobs are forgotten after
`import_retention_seconds` (the server's three hours).

The newest servers' shapes (Milvus 3.0.x), in both flavours: until pre-import ends (progress up
to 40, or 50 for V3 jobs) the import tasks do not exist, so describe answers 0 of 0 rows,
`fileSize` 0 and `details: []` (a job that fails in pre-import never has any); after it,
`fileSize` is the sum over `details` and a file's `importedRows` follows progress x rows / 100.
A job in state `None` carries `reason: "unknown import job state"`. The id of a describe is a
JSON string (a number answers 1801); text that is no number answers 2100 like an unknown job, a
number past int64 1801. A token named in `import_privilege_denied_tokens` lacks the import
privilege: its describes answer HTTP 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import reply
from ..fields import (
    CODE_BAD_FORMAT,
    Invalid,
    missing,
    optional_string,
    page_number,
    wrong_type,
)
from ..flavor import FlavorRules
from ..reply import Reply
from . import knobs
from .base import Placement, Request, Settings, SimKind
from .chains import DatabaseChain, DatabaseStream, new_database_chain
from .common import INFINITY, between, next_step, parse_int64, ramp, rfc3339

LIST = "/v2/vectordb/jobs/import/list"
DESCRIBE = "/v2/vectordb/jobs/import/describe"

ID_BASE = 448_761_313_698_000_000
OWNER_BITS = 12  # room in the low bits of an id for the database's index
WINDOW_SECONDS = 3 * 3600.0
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
CODE_JOB_NOT_FOUND = 2100
CODE_NO_PRIVILEGE = 65535  # merr.Code of a gRPC PermissionDenied: not verified on a real server
UNKNOWN_STATE_REASON = "unknown import job state"
PREIMPORT_TOP = 40
PREIMPORT_TOP_V3 = 50

PENDING_PROGRESS_TOP = 10
IMPORTED_PROGRESS = 99
# A few files of a running Milvus import show the task state Retry (one in RETRY_EVERY).
RETRY_EVERY = 5

OUTCOMES = ("completed", "failed", "failed_preimport", "manual_commit", "unknown_state")
KNOBS = (
    knobs.switch(
        "import_v3_jobs",
        "every import is a V3 job: its pre-import (no rows, sizes or file details yet) runs to "
        "progress 50 instead of 40",
    ),
    knobs.names(
        "import_privilege_denied_tokens",
        "tokens that lack the import privilege: their import describes answer HTTP 403",
        live=True,
    ),
)
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
    `preimport_top` is the progress at which pre-import ends and the import tasks exist.
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
    preimport_top: int = PREIMPORT_TOP

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


def tasks_exist(job: ImportSchedule, status: ImportStatus) -> bool:
    """Whether pre-import has ended, so the import tasks (rows, sizes, file details) exist."""
    if status.state in ("Pending", "None"):
        return False
    if status.state == "Failed":
        return _importing_top(job) > job.preimport_top
    if status.state == "Importing":
        return status.progress > job.preimport_top
    return True


def _reason(job: ImportSchedule, status: ImportStatus) -> str:
    if status.state == "Failed":
        return job.reason
    if status.state == "None":
        return UNKNOWN_STATE_REASON
    return ""


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
    reason = _reason(job, status)
    if reason:
        record["reason"] = reason
    return record


def import_describe_record(
    job: ImportSchedule, now: float, base: float, rules: FlavorRules
) -> dict[str, object]:
    """The describe answer: list fields plus rows, sizes, RFC 3339 times and one entry per file.

    Before pre-import ends there are no tasks: 0 of 0 rows, size 0, no files. A failed job
    reports progress 0, 0 of 0 rows and no completion time, as the server does.
    """
    status = import_status(job, now)
    failed = status.state == "Failed"
    offset = rules.utc_offset_minutes
    complete_time = rfc3339(base, job.end_at, offset) if status.state == "Completed" else ""
    details: list[dict[str, object]] = []
    if tasks_exist(job, status):
        details = [
            _file_detail(job, index, status, complete_time, rules)
            for index in range(len(job.files))
        ]
    record: dict[str, object] = {
        "jobId": str(job.job_id),
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
    }
    reason = _reason(job, status)
    if reason:
        record["reason"] = reason
    record.update(
        {
            "importedRows": sum(_count(detail["importedRows"]) for detail in details),
            "totalRows": 0 if failed or not details else job.total_rows,
            "fileSize": sum(_count(detail["fileSize"]) for detail in details),
            "createTime": rfc3339(base, job.created_at, offset),
            "completeTime": complete_time,
            "details": details,
        }
    )
    return record


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


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
    """A file's rows follow progress x rows / 100 while importing; all once imported."""
    if status.state in ("Completed", "Uncommitted", "Committing"):
        return total_rows
    if status.state != "Importing":
        return 0
    return total_rows * status.progress // 100


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


def random_import(
    chain: DatabaseChain,
    created_at: float,
    failure_probability: float,
    manual_commit_probability: float,
    preimport_top: int = PREIMPORT_TOP,
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
        preimport_top=preimport_top,
    )


def scripted_import(
    chain: DatabaseChain,
    created_at: float,
    collection: str,
    outcome: str,
    duration_seconds: float,
    reason: str,
    preimport_top: int = PREIMPORT_TOP,
) -> ImportSchedule:
    """An import whose fate a test chose; it rolls no dice, so the seeded jobs stay the same.

    `outcome` is "completed", "failed" (at 60%, after pre-import: its files carry the
    reason), "failed_preimport" (at 25%, before any task existed: no files, no rows),
    "manual_commit" (auto-commit off: Uncommitted, then Committing, then Completed) or
    "unknown_state" (the server reports "None" for ever).
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
    failed = outcome in ("failed", "failed_preimport")
    cap = {"failed": 60, "failed_preimport": 25}.get(outcome, IMPORTED_PROGRESS)
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
        progress_cap=cap,
        reason=reason if failed else "",
        files=files,
        order_key=(job_id % 1000) / 1000,
        auto_commit=outcome != "manual_commit",
        unknown_state=outcome == "unknown_state",
        preimport_top=preimport_top,
    )


class ImportStream(DatabaseStream[ImportSchedule]):
    """A database's imports: one seeded chain, jobs spread over its plain collections."""

    def __init__(self, settings: Settings, chain: DatabaseChain, history_jobs: int) -> None:
        super().__init__(settings, chain, history_jobs, WINDOW_SECONDS)
        v3 = settings.knobs.flag("import_v3_jobs")
        self._preimport_top = PREIMPORT_TOP_V3 if v3 else PREIMPORT_TOP

    def invent(self, created_at: float) -> ImportSchedule:
        options = self.settings.options
        return random_import(
            self.chain,
            created_at,
            options.failure_probability,
            options.manual_commit_probability,
            self._preimport_top,
        )

    def scripted(
        self, now: float, collection: str, outcome: str, duration_seconds: float, reason: str
    ) -> ImportSchedule:
        return scripted_import(
            self.chain, now, collection, outcome, duration_seconds, reason, self._preimport_top
        )


def import_job_text(body: dict[str, object]) -> str:
    """The describe id as bound: a JSON string (1801 for a number, 1802 when missing or "")."""
    value = body.get("jobId")
    if value is None or value == "":
        raise Invalid(missing("jobId"))
    if not isinstance(value, str):
        raise Invalid(wrong_type("jobId", "string", value))
    return value


def import_job_number(text: str) -> int:
    """The id as the server parses it: text that is no number is a job it cannot find (2100),
    a number past int64 a request it cannot read (1801)."""
    try:
        return parse_int64(text)
    except ValueError as problem:
        if str(problem) == "value out of range":
            message = (
                "can only accept json format request, error: "
                f'strconv.ParseInt: parsing "{text}": value out of range'
            )
            raise Invalid(reply.error(CODE_BAD_FORMAT, message)) from None
        message = f"import job does not exist, jobID={text}"
        raise Invalid(reply.error(CODE_JOB_NOT_FOUND, message)) from None


def no_privilege(request: Request) -> Reply:
    """HTTP 403, as the proxy's privilege check answers before the handler runs."""
    user = request.token.partition(":")[0] if ":" in request.token else "apikey"
    message = (
        f"PrivilegeImport: permission deny to {user} in the `{request.database_name()}` database"
    )
    return reply.error(CODE_NO_PRIVILEGE, message, 403)


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
    knobs = KNOBS

    def new_stream(
        self, settings: Settings, database: str, collections: tuple[str, ...], where: Placement
    ) -> ImportStream:
        count = settings.options.import_jobs_per_database if collections else 0
        chain = new_database_chain(
            self.name,
            settings.options.seed,
            database,
            (where.database_index, OWNER_BITS),
            ID_BASE,
            collections,
            (count, WINDOW_SECONDS),
        )
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
        return import_job_number(import_job_text(body))

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
        text = import_job_text(request.body)
        if request.token in request.settings.knobs.names("import_privilege_denied_tokens"):
            return no_privilege(request)
        job_id = import_job_number(text)
        job = request.world.job(self, job_id, request.now)
        if not isinstance(job, ImportSchedule):
            message = f"import job does not exist, jobID={job_id}"
            return reply.error(CODE_JOB_NOT_FOUND, message)
        base = request.world.wall_base(request.now)
        rules = request.settings.rules
        return request.success(import_describe_record(job, request.now, base, rules))


KIND = ImportKind()
