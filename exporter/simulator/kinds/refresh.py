"""External-collection refreshes: `jobs/external_collection/{list,describe,refresh}`.

A refresh is Pending until `running_at`, InProgress until `end_at`, then Completed or Failed.
Progress grows at `progress_rate` percent per second and stays at or under 99 until the job
completes; a failed job keeps its last progress. Only one refresh of a collection runs at a
time: the trigger answers code 703 while one is active. Records carry the job id as a JSON
number (int64, above 2^53), times in epoch milliseconds (`endTime` 0 while running), and
`reason` on a failed job. The list is newest first; finished jobs are kept about a day.

Two shapes of the newest servers (Milvus 3.0.x), off unless asked for because they change the
figures: a job that keeps hitting a transient error stays `RefreshPending` with that error in
`reason` (knob `refresh_retry_probability`, outcome "retrying"); and in its index-wait phase a
job's progress becomes the indexed fraction, so it falls from 99 while the state stays
`RefreshInProgress` (knob `refresh_index_wait_probability`, outcome "index_wait").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .. import reply
from ..fields import (
    CODE_INVALID_PARAMETER,
    Invalid,
    external_string,
    missing,
    optional_string,
    required_string,
    wrong_type,
)
from ..reply import Reply
from . import knobs
from .base import Handler, Placement, Request, Settings, SimKind, Stream
from .common import INFINITY, between, epoch_milliseconds, next_step, ramp
from .sources import invented_source, redact_spec, source_location

LIST = "/v2/vectordb/jobs/external_collection/list"
DESCRIBE = "/v2/vectordb/jobs/external_collection/describe"
TRIGGER = "/v2/vectordb/jobs/external_collection/refresh"

RETENTION_SECONDS = 24 * 3600.0
ID_BASE = 449_503_829_274_000_000
OWNER_BITS = 20  # room in the low bits of an id for the collection's index
TIMEOUT_SECONDS = 3600.0
HISTORY_SPAN_SECONDS = 20 * 3600.0
AUTO_GAP_SECONDS = (60.0, 1200.0)

CODE_REFRESH_ACTIVE = 703
CODE_JOB_NOT_FOUND = 1100
OUTCOMES = ("completed", "failed", "hang", "hang_pending", "retrying", "index_wait")
RUNNING_TOP = 99
TRANSIENT_ERRORS = (
    "failed to list files under {path}: connection reset by peer, retrying",
    "object storage is throttling requests (503 SlowDown), retrying",
    "datanode is not ready to accept refresh tasks, retrying",
)
DEFAULT_RETRY_REASON = "failed to reach the external source: i/o timeout, retrying"

KNOBS = (
    knobs.probability(
        "refresh_retry_probability",
        0.0,
        "share of automatic refreshes that wait in RefreshPending retrying a transient error, "
        "shown in `reason`, before they run",
    ),
    knobs.probability(
        "refresh_index_wait_probability",
        0.0,
        "share of completing automatic refreshes whose progress falls from 99 to the indexed "
        "fraction in an index-wait phase (still RefreshInProgress) before they complete",
    ),
)


@dataclass(frozen=True)
class RefreshDice:
    """The shares of automatic refreshes that show the newest servers' shapes (0: none, and no
    dice rolled for them, so the seeded jobs stay the same)."""

    retry_probability: float = 0.0
    index_wait_probability: float = 0.0


@dataclass(frozen=True)
class RefreshSchedule:
    """A refresh: Pending until `running_at`, InProgress until `end_at`.

    `running_at` or `end_at` is infinite for a job that hangs. While running, progress grows at
    `progress_rate` percent per second and never passes `progress_cap` (99 for a job that will
    complete, the failure point for one that will fail, the stall point for one that hangs).
    `pending_reason` is the transient error a Pending job keeps retrying. From `index_wait_at`
    to `end_at` progress is the indexed fraction, climbing from `index_floor` towards 99.
    """

    job_id: int
    database: str
    collection: str
    created_at: float
    running_at: float
    end_at: float
    succeeds: bool
    progress_rate: float
    progress_cap: int
    reason: str
    external_source: str
    external_spec: str
    pending_reason: str = ""
    index_wait_at: float = INFINITY
    index_floor: int = 0


@dataclass(frozen=True)
class RefreshStatus:
    state: str
    progress: int
    finished: bool


def refresh_status(job: RefreshSchedule, now: float) -> RefreshStatus:
    if now < job.running_at:
        return RefreshStatus("RefreshPending", 0, False)
    if now < job.end_at:
        if now >= job.index_wait_at:
            progress = ramp(job.index_wait_at, job.end_at, job.index_floor, RUNNING_TOP, now)
        else:
            progress = min(job.progress_cap, int(job.progress_rate * (now - job.running_at)))
        return RefreshStatus("RefreshInProgress", progress, False)
    if job.succeeds:
        return RefreshStatus("RefreshCompleted", 100, True)
    return RefreshStatus("RefreshFailed", job.progress_cap, True)


def refresh_record(job: RefreshSchedule, now: float, base: float) -> dict[str, object]:
    """The record as list and describe answer it; `reason` appears only on failed jobs and on
    pending ones that retry a transient error."""
    status = refresh_status(job, now)
    record: dict[str, object] = {
        "jobId": job.job_id,
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
        "externalSource": job.external_source,
        "externalSpec": job.external_spec,
        "startTime": epoch_milliseconds(base, job.created_at),
        "endTime": epoch_milliseconds(base, job.end_at) if status.finished else 0,
    }
    if status.state == "RefreshFailed":
        record["reason"] = job.reason
    elif status.state == "RefreshPending" and job.pending_reason:
        record["reason"] = job.pending_reason
    return record


def refresh_job_id(body: dict[str, object]) -> int:
    """A JSON number without a fraction; a string of digits is a binding error like any other.

    refresh_job_id({"jobId": 449503829274509301})    # -> 449503829274509301
    refresh_job_id({"jobId": "449503829274509301"})  # raises Invalid: code 1801
    """
    value = body.get("jobId")
    if value is None or value == 0:
        raise Invalid(missing("jobId"))
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(wrong_type("jobId", "int64", value))
    return value


# -- invention ---------------------------------------------------------------------------------


@dataclass
class RefreshChain:
    """One external collection's sequence of refresh jobs, extended lazily as time passes."""

    database: str
    collection: str
    owner_index: int
    rng: random.Random
    id_base: int
    external_source: str
    external_spec: str
    busy_until: float = 0.0
    next_auto_at: float = INFINITY
    sequence: int = 0

    def next_job_id(self) -> int:
        job_id = self.id_base + (self.sequence << OWNER_BITS) + self.owner_index
        self.sequence += 1
        return job_id


def new_refresh_chain(
    seed: int, database: str, collection: str, owner_index: int, topic: str, uri_sources: bool
) -> RefreshChain:
    """A collection's refresh stream; `uri_sources` gives it a self-hosted Milvus URI source."""
    rng = random.Random(f"{seed}/refresh/{database}/{collection}")
    id_base = ID_BASE + random.Random(f"{seed}/refresh-ids").randrange(1 << 30)
    source, spec = invented_source(rng, topic, uri_sources)
    return RefreshChain(
        database=database,
        collection=collection,
        owner_index=owner_index,
        rng=rng,
        id_base=id_base,
        external_source=source,
        external_spec=spec,
    )


def auto_refresh_gap(chain: RefreshChain) -> float:
    return chain.rng.uniform(*AUTO_GAP_SECONDS)


def random_refresh(
    chain: RefreshChain,
    created_at: float,
    failure_probability: float,
    hang_probability: float,
    time_factor: float = 1.0,
    dice: RefreshDice = RefreshDice(),
) -> RefreshSchedule:
    """A refresh with a seeded fate: completes, fails (sometimes by the 1 h timeout) or hangs;
    `dice` may add a retrying Pending phase or an index-wait phase.

    `time_factor` shortens every phase, so a long history can still fit in the retention window.
    """
    job = _fated_refresh(chain, created_at, failure_probability, hang_probability, time_factor)
    rng = chain.rng
    if dice.index_wait_probability and job.succeeds and rng.random() < dice.index_wait_probability:
        job = _with_index_wait(job, rng.uniform(0.5, 0.9), between(rng, 5, 60))
    if dice.retry_probability and rng.random() < dice.retry_probability:
        retrying = rng.uniform(60.0, 900.0) * time_factor
        error = rng.choice(TRANSIENT_ERRORS).format(path=source_location(chain.external_source))
        job = _with_retries(job, retrying, error)
    return job


def _fated_refresh(
    chain: RefreshChain,
    created_at: float,
    failure_probability: float,
    hang_probability: float,
    time_factor: float,
) -> RefreshSchedule:
    rng = chain.rng
    pending = rng.uniform(1.0, 8.0) * time_factor
    running = rng.uniform(20.0, 900.0) * time_factor
    fate = rng.random()
    if fate < failure_probability:
        reason, running, cap = _refresh_failure(chain, rng, running)
        if reason.startswith("refresh timed out"):
            running *= time_factor
        return _refresh(chain, created_at, pending, running, False, cap, reason)
    if fate < failure_probability + hang_probability:
        if rng.random() < 0.5:
            return _refresh(chain, created_at, INFINITY, INFINITY, False, 0, "")
        stall = between(rng, 1, 95)
        job = _refresh(chain, created_at, pending, INFINITY, False, stall, "")
        return replace(job, progress_rate=100.0 / running)
    return _refresh(chain, created_at, pending, running, True, 99, "")


def scripted_refresh(
    chain: RefreshChain, created_at: float, outcome: str, duration_seconds: float, reason: str
) -> RefreshSchedule:
    """A refresh whose fate a test chose: completed, failed, hang (InProgress for ever at 42),
    hang_pending, retrying (Pending for ever, retrying the transient error `reason`) or
    index_wait (at 99 by 60% of its course, then down to 30 and up again as indexes build)."""
    duration = max(0.0, duration_seconds)
    pending = min(2.0, duration * 0.2)
    running = duration - pending
    if outcome == "completed":
        return _refresh(chain, created_at, pending, running, True, 99, "")
    if outcome == "retrying":
        job = _refresh(chain, created_at, INFINITY, INFINITY, False, 0, "")
        return replace(job, pending_reason=reason)
    if outcome == "index_wait":
        job = _refresh(chain, created_at, pending, running, True, 99, "")
        return _with_index_wait(job, 0.6, 30)
    if outcome == "failed":
        cap = 0 if running <= 0 else 60
        return _refresh(chain, created_at, pending, running, False, cap, reason)
    if outcome == "hang":
        job = _refresh(chain, created_at, pending, INFINITY, False, 42, "")
        return replace(job, progress_rate=100.0 / max(running, 1.0))
    if outcome == "hang_pending":
        return _refresh(chain, created_at, INFINITY, INFINITY, False, 0, "")
    raise ValueError(f"unknown outcome {outcome!r}: use {', '.join(OUTCOMES)}")


def _with_index_wait(job: RefreshSchedule, share: float, floor: int) -> RefreshSchedule:
    """Reach 99 after `share` of the running phase, then fall to `floor` and climb back."""
    index_wait_at = job.running_at + (job.end_at - job.running_at) * share
    rate = RUNNING_TOP / max(index_wait_at - job.running_at, 1e-6)
    return replace(job, index_wait_at=index_wait_at, index_floor=floor, progress_rate=rate)


def _with_retries(job: RefreshSchedule, seconds: float, error: str) -> RefreshSchedule:
    """Stay Pending `seconds` longer, retrying `error` (every later phase moves with it)."""
    return replace(
        job,
        running_at=job.running_at + seconds,
        end_at=job.end_at + seconds,
        index_wait_at=job.index_wait_at + seconds,
        pending_reason=error,
    )


def _refresh_failure(
    chain: RefreshChain, rng: random.Random, running: float
) -> tuple[str, float, int]:
    path = source_location(chain.external_source)
    choice = rng.randrange(5)
    if choice == 0:
        return (
            f"refresh timed out after {int(TIMEOUT_SECONDS)}s",
            TIMEOUT_SECONDS,
            between(rng, 5, 95),
        )
    if choice == 1:
        return f"permission denied reading {path}", 0.0, 0
    if choice == 2 and path.startswith("s3://"):
        return f"iceberg snapshot {between(rng, 100, 99999)} not found", running * 0.2, 3
    if choice == 3:
        return f"no parquet files found under {path}", running * 0.1, 1
    cap = between(rng, 5, 95)
    reason = "schema mismatch: field 'embedding' has dim 768, collection expects 1024"
    return reason, running * cap / 100.0, cap


def _refresh(
    chain: RefreshChain,
    created_at: float,
    pending: float,
    running: float,
    succeeds: bool,
    cap: int,
    reason: str,
) -> RefreshSchedule:
    running_at = created_at + pending
    end_at = running_at + running
    rate = cap / running if running > 0 and running != INFINITY else 100.0
    return RefreshSchedule(
        job_id=chain.next_job_id(),
        database=chain.database,
        collection=chain.collection,
        created_at=created_at,
        running_at=running_at,
        end_at=end_at,
        succeeds=succeeds,
        progress_rate=rate,
        progress_cap=cap,
        reason=reason,
        external_source=chain.external_source,
        external_spec=chain.external_spec,
    )


class RefreshActiveError(Exception):
    """A refresh was requested while another one of the same collection is still running."""

    def __init__(self, collection: str) -> None:
        super().__init__(f"a refresh job is already running for collection {collection}")
        self.collection = collection


class RefreshStream(Stream[RefreshSchedule]):
    """A database's refreshes: one chain per external collection, one job at a time each."""

    def __init__(self, settings: Settings, chains: dict[str, RefreshChain]) -> None:
        self._options = settings.options
        self._chains = chains
        self._dice = RefreshDice(
            settings.knobs.number("refresh_retry_probability"),
            settings.knobs.number("refresh_index_wait_probability"),
        )

    def history(self, now: float) -> list[RefreshSchedule]:
        jobs: list[RefreshSchedule] = []
        for chain in self._chains.values():
            jobs.extend(self._chain_history(chain, now))
        return jobs

    def due(self, now: float) -> list[RefreshSchedule]:
        options = self._options
        jobs: list[RefreshSchedule] = []
        for chain in self._chains.values():
            while chain.next_auto_at <= now:
                job = random_refresh(
                    chain,
                    chain.next_auto_at,
                    options.failure_probability,
                    options.hang_probability,
                    dice=self._dice,
                )
                jobs.append(job)
                chain.busy_until = max(chain.busy_until, job.end_at)
                chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        return jobs

    def next_auto_at(self) -> float:
        return min((chain.next_auto_at for chain in self._chains.values()), default=INFINITY)

    def scripted(
        self, now: float, collection: str, outcome: str, duration_seconds: float, reason: str
    ) -> RefreshSchedule:
        """Starts even if another refresh of the collection runs, so tests never race the world."""
        chain = self._chains[collection]
        return self._start(chain, scripted_refresh(chain, now, outcome, duration_seconds, reason))

    def request(
        self, now: float, collection: str, source: str | None, spec: str | None
    ) -> RefreshSchedule:
        """What the trigger does: refuse while one runs, else start a seeded-fate job."""
        chain = self._chains[collection]
        if chain.busy_until > now:
            raise RefreshActiveError(collection)
        if source is not None and spec is not None:
            chain.external_source = source
            chain.external_spec = redact_spec(spec)
        options = self._options
        job = random_refresh(
            chain, now, options.failure_probability, options.hang_probability, dice=self._dice
        )
        return self._start(chain, job)

    def drop_collection(self, collection: str) -> None:
        self._chains.pop(collection, None)

    def _start(self, chain: RefreshChain, job: RefreshSchedule) -> RefreshSchedule:
        chain.busy_until = max(chain.busy_until, job.end_at)
        if self._options.auto_refresh:
            chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        return job

    def _chain_history(self, chain: RefreshChain, now: float) -> list[RefreshSchedule]:
        """Older jobs finished one after another; only the newest may still run or hang."""
        options = self._options
        count = options.refresh_jobs_per_collection
        jobs: list[RefreshSchedule] = []
        budget_per_job = HISTORY_SPAN_SECONDS / max(count, 1)
        time_factor = min(1.0, budget_per_job / 1200.0)
        mean_gap = min(1800.0, budget_per_job * 0.5)
        start = 0.0
        for number in range(count):
            newest = number == count - 1
            hang = options.hang_probability if newest else 0.0
            factor = 1.0 if newest else time_factor
            job = random_refresh(
                chain, start, options.failure_probability, hang, factor, self._dice
            )
            jobs.append(job)
            start = job.end_at + chain.rng.uniform(0.2, 1.8) * mean_gap
        if jobs:
            shift = now - chain.rng.uniform(0.0, 900.0) - jobs[-1].created_at
            jobs = [_shifted(job, shift) for job in jobs]
            chain.busy_until = jobs[-1].end_at
        else:
            chain.busy_until = now
        if options.auto_refresh:
            chain.next_auto_at = chain.busy_until + auto_refresh_gap(chain)
        return jobs


def _shifted(job: RefreshSchedule, shift: float) -> RefreshSchedule:
    return replace(
        job,
        created_at=job.created_at + shift,
        running_at=job.running_at + shift,
        end_at=job.end_at + shift,
        index_wait_at=job.index_wait_at + shift,
    )


def not_external(collection: str) -> Reply:
    message = f"collection is not an external collection[collection={collection}]"
    return reply.error(CODE_INVALID_PARAMETER, message)


class RefreshKind(SimKind[RefreshSchedule]):
    name = "refresh"
    list_path = LIST
    describe_path = DESCRIBE
    family = "external"
    control_route = "refresh"
    outcomes = OUTCOMES
    unknown_state = "RefreshPaused"
    sample_record = (
        b'{"jobId":449503829274509301,"collectionName":"ext_books","state":"RefreshCompleted",'
        b'"progress":100,"externalSource":"{\\"type\\":\\"volume\\",\\"path\\":'
        b'\\"volume://my-volume/books\\"}","externalSpec":"***",'
        b'"startTime":1712832000000,"endTime":1712832600000}'
    )
    knobs = KNOBS
    trigger_paths = (TRIGGER,)
    newest_first = True
    collection_required = True

    def routes(self) -> dict[str, Handler]:
        return {**super().routes(), TRIGGER: self.trigger_answer}

    def new_stream(
        self, settings: Settings, database: str, collections: tuple[str, ...], where: Placement
    ) -> RefreshStream:
        if where.collection_index + len(collections) > 1 << OWNER_BITS:
            raise ValueError("too many collections for the job id scheme")
        uri_sources = not settings.rules.json_external_source
        chains = {
            collection: new_refresh_chain(
                settings.options.seed,
                database,
                collection,
                where.collection_index + index,
                collection.removeprefix("ext_"),
                uri_sources,
            )
            for index, collection in enumerate(collections)
        }
        return RefreshStream(settings, chains)

    def default_reason(self, outcome: str) -> str:
        if outcome == "retrying":
            return DEFAULT_RETRY_REASON
        return super().default_reason(outcome)

    def order_key(self, job: RefreshSchedule) -> tuple[float, int]:
        return (job.created_at, job.job_id)

    def retention_seconds(self, settings: Settings) -> float:
        return RETENTION_SECONDS

    def list_record(
        self, job: RefreshSchedule, now: float, base: float, settings: Settings
    ) -> dict[str, object]:
        return refresh_record(job, now, base)

    def next_change(self, job: RefreshSchedule, now: float) -> float:
        if now < job.running_at:
            return job.running_at
        if job.index_wait_at <= now < job.end_at:
            return next_step(job.index_wait_at, job.end_at, job.index_floor, RUNNING_TOP, now)
        if now < job.end_at:
            phase_end = min(job.end_at, job.index_wait_at)
            progress = min(job.progress_cap, int(job.progress_rate * (now - job.running_at)))
            if progress >= job.progress_cap or job.progress_rate <= 0:
                return phase_end
            return min(phase_end, job.running_at + (progress + 1) / job.progress_rate)
        return INFINITY

    def describe_job_id(self, body: dict[str, object]) -> int:
        return refresh_job_id(body)

    def list_answer(self, request: Request) -> Reply:
        world = request.world
        database = request.database()
        collection = optional_string(request.body, "collectionName")
        if collection and collection not in world.collections(database, "external"):
            request.require_collection(database, collection)
            if request.settings.rules.refresh_list_needs_external:
                raise Invalid(not_external(collection))
        records = world.records(self, database, collection, request.now)
        success_code = request.settings.rules.success_code
        return reply.success_with_records(records.records_json, success_code)

    def describe_answer(self, request: Request) -> Reply:
        job_id = refresh_job_id(request.body)
        job = request.world.job(self, job_id, request.now)
        if not isinstance(job, RefreshSchedule):
            return reply.error(CODE_JOB_NOT_FOUND, f"refresh job {job_id} not found")
        base = request.world.wall_base(request.now)
        return request.success(refresh_record(job, request.now, base))

    def trigger_answer(self, request: Request) -> Reply:
        world = request.world
        database = request.database()
        collection = required_string(request.body, "collectionName")
        if collection in world.collections(database, "plain"):
            raise Invalid(not_external(collection))
        request.require_collection(database, collection)
        json_required = request.settings.rules.json_external_source
        source = external_string(request.body, "externalSource", json_required)
        spec = external_string(request.body, "externalSpec", json_required)
        if (source is None) != (spec is None):
            message = "externalSource and externalSpec must be both provided or both omitted"
            raise Invalid(reply.error(CODE_INVALID_PARAMETER, message))

        def make(stream: RefreshStream) -> RefreshSchedule:
            return stream.request(request.now, collection, source, spec)

        try:
            job = world.create_job(self, database, request.now, make)
        except RefreshActiveError as active:
            return reply.error(CODE_REFRESH_ACTIVE, str(active))
        return request.success({"jobId": job.job_id})


KIND = RefreshKind()
