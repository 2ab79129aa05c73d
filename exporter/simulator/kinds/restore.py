"""Snapshot restores: `jobs/snapshot/{list,describe}` (Milvus 3.0; `../shared/api/snapshot-jobs.md`).

A restore copies a snapshot's segments into its target collection: `RestoreSnapshotPending`,
then `RestoreSnapshotExecuting` while segments are copied (progress = copied * 100 / total,
whole segments, so it moves in steps), then `RestoreSnapshotCompleted` or
`RestoreSnapshotFailed` (which keeps the copied share). Every record has all nine keys: `jobId`
a JSON number (int64), `snapshotName`, `dbName`, `collectionName`, `state`, `progress`, `reason`
(always present, "" unless failed), `startTime` (epoch ms of its creation) and `timeCost` (ms,
0 until it finishes). No paging; the list comes in no particular order (the server walks a map).

The names are resolved from the target collection when asked, as the server does: once that
collection is dropped, describe answers `dbName` and `collectionName` "" and the list (filtered by
the database's live collections) no longer shows the job. Describe takes the id as a decimal
string: a JSON number answers 1801, a missing or empty one 1802, text that is no int64 1100, an
unknown id 2101 ("restore job not found", 2100 on older servers). Finished jobs are forgotten
after `import_retention_seconds` (the server's ImportTaskRetention, three hours).

Off by default: `restore_jobs_per_database` puts restores in the job history and keeps new ones
coming; `restore_not_served` answers Go's plain-text 404 instead, as Zilliz Cloud and servers
older than Milvus 3.0 do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import reply
from ..fields import (
    CODE_INVALID_PARAMETER,
    CODE_MISSING_PARAMETER,
    Invalid,
    optional_string,
    wrong_type,
)
from ..reply import Reply
from . import knobs
from .base import Placement, Request, Settings, SimKind
from .chains import DatabaseChain, DatabaseStream, new_database_chain
from .common import INFINITY, between, epoch_milliseconds, parse_int64

LIST = "/v2/vectordb/jobs/snapshot/list"
DESCRIBE = "/v2/vectordb/jobs/snapshot/describe"

ID_BASE = 462_118_736_925_000_000
OWNER_BITS = 12  # room in the low bits of an id for the database's index
WINDOW_SECONDS = 3 * 3600.0

PENDING = "RestoreSnapshotPending"
EXECUTING = "RestoreSnapshotExecuting"
COMPLETED = "RestoreSnapshotCompleted"
FAILED = "RestoreSnapshotFailed"

OUTCOMES = ("completed", "failed", "hang", "hang_pending")
FAILURES = (
    "copy segment task failed: failed to copy {snapshot}/segments/{segment}/binlog: NoSuchKey",
    "copy segment job timeout",
    "datanode {node} is offline: copy segment task failed after 3 retries",
    "failed to copy index files of segment {segment}: context deadline exceeded",
)
NOT_FOUND_TEXT = {2101: "importing data failed on server side", 2100: "importing data failed"}

KNOBS = (
    knobs.count(
        "restore_jobs_per_database",
        0,
        "snapshot restores in each database's history, and new ones keep coming at that rate "
        "(0: none; restores are off by default)",
    ),
    knobs.probability(
        "restore_hang_probability",
        0.0,
        "share of automatic restores that stick: half Pending for ever, half Executing with "
        "frozen progress (the failing share is --failure-probability)",
    ),
    knobs.choice(
        "restore_outcome",
        "random",
        ("random", *OUTCOMES),
        "the fate of every automatic restore: random (by the probabilities), or one of "
        + ", ".join(OUTCOMES),
    ),
    knobs.text(
        "restore_reason",
        "",
        "the reason every failing automatic restore carries (default: invented ones)",
    ),
    knobs.switch(
        "restore_not_served",
        "answer the snapshot job endpoints with Go's plain-text 404, as Zilliz Cloud and "
        "servers older than Milvus 3.0 do",
        live=True,
    ),
    knobs.choice(
        "restore_not_found_code",
        2101,
        (2101, 2100),
        "the code of an unknown restore job: 2101 (newest servers) or 2100 (older ones)",
        live=True,
    ),
)


@dataclass(frozen=True)
class RestoreSchedule:
    """A restore: Pending until `executing_at`, Executing until `end_at`, then done.

    While executing, `segment_rate` segments per second are copied, never more than
    `stop_segments` (all of them for a job that completes, the failure point for one that
    fails, the freeze point for one that sticks). `executing_at` or `end_at` is infinite for a
    job that sticks. `order_key` fixes its place in the (unordered) list answer.
    """

    job_id: int
    database: str
    collection: str
    snapshot_name: str
    created_at: float
    executing_at: float
    end_at: float
    succeeds: bool
    total_segments: int
    stop_segments: int
    segment_rate: float
    reason: str
    order_key: float


@dataclass(frozen=True)
class RestoreStatus:
    state: str
    progress: int
    finished: bool


def copied_segments(job: RestoreSchedule, now: float) -> int:
    if now < job.executing_at:
        return 0
    if now >= job.end_at:
        return job.total_segments if job.succeeds else job.stop_segments
    return min(job.stop_segments, int(job.segment_rate * (now - job.executing_at)))


def restore_status(job: RestoreSchedule, now: float) -> RestoreStatus:
    total = job.total_segments
    progress = copied_segments(job, now) * 100 // total if total > 0 else 100
    if now < job.executing_at:
        return RestoreStatus(PENDING, progress, False)
    if now < job.end_at:
        return RestoreStatus(EXECUTING, progress, False)
    if job.succeeds:
        return RestoreStatus(COMPLETED, 100, True)
    return RestoreStatus(FAILED, progress, True)


def restore_record(
    job: RestoreSchedule, now: float, base: float, names_resolve: bool = True
) -> dict[str, object]:
    """The record as list and describe answer it: all nine keys, always."""
    status = restore_status(job, now)
    time_cost = round((job.end_at - job.created_at) * 1000) if status.finished else 0
    return {
        "jobId": job.job_id,
        "snapshotName": job.snapshot_name,
        "dbName": job.database if names_resolve else "",
        "collectionName": job.collection if names_resolve else "",
        "state": status.state,
        "progress": status.progress,
        "reason": job.reason if status.state == FAILED else "",
        "startTime": epoch_milliseconds(base, job.created_at),
        "timeCost": time_cost,
    }


def restore_job_id(body: dict[str, object]) -> int:
    """A decimal string, as Go's strconv.ParseInt(s, 10, 64) reads it (a sign is allowed)."""
    value = body.get("jobId")
    if value is None or value == "":
        message = (
            "missing required parameters, error: Key: 'JobIDReq.JobID' "
            "Error:Field validation for 'JobID' failed on the 'required' tag"
        )
        raise Invalid(reply.error(CODE_MISSING_PARAMETER, message))
    if not isinstance(value, str):
        raise Invalid(wrong_type("jobId", "string", value))
    try:
        return parse_int64(value)
    except ValueError as problem:
        message = (
            f"invalid parameter[expected=int64 jobId][actual={value}]: "
            f'strconv.ParseInt: parsing "{value}": {problem}'
        )
        raise Invalid(reply.error(CODE_INVALID_PARAMETER, message)) from None


# -- invention ---------------------------------------------------------------------------------


def random_restore(chain: DatabaseChain, created_at: float, settings: Settings) -> RestoreSchedule:
    """A restore of 1-64 segments with a fate from the knobs (seeded dice for "random")."""
    rng, dials = chain.rng, settings.knobs
    collection = rng.choice(chain.collections)
    snapshot = f"{collection}_snapshot_{between(rng, 1, 999):03d}"
    total = between(rng, 1, 64)
    pending = rng.uniform(1.0, 20.0)
    running = rng.uniform(30.0, 1200.0)
    order_key = rng.random()
    outcome = dials.text("restore_outcome")
    if outcome == "random":
        fate = rng.random()
        failing = settings.options.failure_probability
        if fate < failing:
            outcome = "failed"
        elif fate < failing + dials.number("restore_hang_probability"):
            outcome = "hang" if rng.random() < 0.5 else "hang_pending"
        else:
            outcome = "completed"
    reason = dials.text("restore_reason") or rng.choice(FAILURES).format(
        snapshot=f"s3://milvus-bucket/snapshots/{snapshot}",
        segment=463_000_000_000_000_000 + between(rng, 0, 999_999),
        node=between(rng, 1, 12),
    )
    stop = between(rng, 0, total - 1)
    plan = _Plan(collection, snapshot, total, stop, pending, running, order_key)
    return _restore(chain, created_at, plan, outcome, reason)


def scripted_restore(
    chain: DatabaseChain,
    created_at: float,
    collection: str,
    outcome: str,
    duration_seconds: float,
    reason: str,
) -> RestoreSchedule:
    """A restore whose fate a test chose; it rolls no dice, so the seeded jobs stay the same.

    Ten segments. "completed" and "failed" (at 60%) end `duration_seconds` after the start,
    "hang" copies 4 of them and freezes at 40% Executing, "hang_pending" never leaves Pending.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use {', '.join(OUTCOMES)}")
    duration = max(0.0, duration_seconds)
    pending = min(2.0, duration * 0.2)
    stop = 6 if outcome == "failed" else 4
    running = duration - pending
    if outcome == "failed":  # it fails while copying segment 7, at its end
        running = running * 10 / (stop + 0.5)
    snapshot = f"{collection}_snapshot_{chain.sequence + 1:03d}"
    plan = _Plan(collection, snapshot, 10, stop, pending, running, chain.sequence / 1000)
    return _restore(chain, created_at, plan, outcome, reason)


@dataclass(frozen=True)
class _Plan:
    collection: str
    snapshot: str
    total: int
    stop: int
    pending: float
    running: float
    order_key: float


def _restore(
    chain: DatabaseChain, created_at: float, plan: _Plan, outcome: str, reason: str
) -> RestoreSchedule:
    """The schedule of a restore with that plan and fate; a failed one stops copying at
    `plan.stop` segments and fails while it copies the next one."""
    executing_at = created_at + plan.pending
    running = max(plan.running, 1e-6)
    rate = plan.total / running
    end_at = executing_at + running
    stop = plan.total
    if outcome == "failed":
        stop = plan.stop
        end_at = executing_at + running * (plan.stop + 0.5) / plan.total
    elif outcome == "hang":
        stop, end_at = max(plan.stop, 1), INFINITY
    elif outcome == "hang_pending":
        executing_at = end_at = INFINITY
    return RestoreSchedule(
        job_id=chain.next_job_id(),
        database=chain.database,
        collection=plan.collection,
        snapshot_name=plan.snapshot,
        created_at=created_at,
        executing_at=executing_at,
        end_at=end_at,
        succeeds=outcome == "completed",
        total_segments=plan.total,
        stop_segments=stop,
        segment_rate=rate,
        reason=reason if outcome == "failed" else "",
        order_key=plan.order_key,
    )


class RestoreStream(DatabaseStream[RestoreSchedule]):
    """A database's restores: one seeded chain, jobs spread over its plain collections."""

    def invent(self, created_at: float) -> RestoreSchedule:
        return random_restore(self.chain, created_at, self.settings)

    def scripted(
        self, now: float, collection: str, outcome: str, duration_seconds: float, reason: str
    ) -> RestoreSchedule:
        return scripted_restore(self.chain, now, collection, outcome, duration_seconds, reason)


class RestoreKind(SimKind[RestoreSchedule]):
    name = "restore"
    list_path = LIST
    describe_path = DESCRIBE
    family = "plain"
    control_route = "restores"
    outcomes = OUTCOMES
    unknown_state = "RestoreSnapshotPaused"
    sample_record = (
        b'{"jobId":462118736925678721,"snapshotName":"books_snapshot_001","dbName":"default",'
        b'"collectionName":"books","state":"RestoreSnapshotCompleted","progress":100,'
        b'"reason":"","startTime":1712832000000,"timeCost":600000}'
    )
    knobs = KNOBS
    lists_dropped_collections = False

    def served(self, settings: Settings) -> bool:
        return not settings.knobs.flag("restore_not_served")

    def new_stream(
        self, settings: Settings, database: str, collections: tuple[str, ...], where: Placement
    ) -> RestoreStream:
        count = settings.knobs.count("restore_jobs_per_database") if collections else 0
        chain = new_database_chain(
            self.name,
            settings.options.seed,
            database,
            (where.database_index, OWNER_BITS),
            ID_BASE,
            collections,
            (count, WINDOW_SECONDS),
        )
        return RestoreStream(settings, chain, count, WINDOW_SECONDS)

    def order_key(self, job: RestoreSchedule) -> float:
        return job.order_key

    def retention_seconds(self, settings: Settings) -> float:
        return settings.options.import_retention_seconds

    def list_record(
        self, job: RestoreSchedule, now: float, base: float, settings: Settings
    ) -> dict[str, object]:
        return restore_record(job, now, base)

    def next_change(self, job: RestoreSchedule, now: float) -> float:
        if now < job.executing_at:
            return job.executing_at
        if now < job.end_at:
            copied = copied_segments(job, now)
            if copied >= job.stop_segments:
                return job.end_at
            return min(job.end_at, job.executing_at + (copied + 1) / job.segment_rate)
        return INFINITY

    def describe_job_id(self, body: dict[str, object]) -> int:
        return restore_job_id(body)

    def list_answer(self, request: Request) -> Reply:
        database = request.database()
        collection = optional_string(request.body, "collectionName")
        if collection:
            request.require_collection(database, collection)
        records = request.world.records(self, database, collection, request.now)
        success_code = request.settings.rules.success_code
        return reply.success_with_records(records.records_json, success_code)

    def describe_answer(self, request: Request) -> Reply:
        job_id = restore_job_id(request.body)
        world = request.world
        job = world.job(self, job_id, request.now)
        if not isinstance(job, RestoreSchedule):
            code = request.settings.knobs.count("restore_not_found_code")
            message = f"restore job not found: jobID={job_id}: {NOT_FOUND_TEXT[code]}"
            return reply.error(code, message)
        alive = job.collection in world.collection_names(job.database)
        base = world.wall_base(request.now)
        return request.success(restore_record(job, request.now, base, names_resolve=alive))


KIND = RestoreKind()
