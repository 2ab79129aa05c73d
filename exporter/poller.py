"""Poll every target once per cycle, concurrently, never above the rate limit.

A single scheduler thread hands requests to a bounded worker pool, but only when the limiter has
a free slot for the request's (credential, API path) *now*. Workers therefore never sit waiting
on the limiter while other credentials could use them, and the time a slot is taken is the time
the request leaves. Temporary failures (timeouts, connection errors, 5xx, 429) are retried with
jittered exponential backoff inside the cycle, through the same limiter. The poller produces
immutable ``Snapshot``s; it never formats metrics.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
import structlog
from requests.adapters import HTTPAdapter

from .client import (
    IMPORT_DESCRIBE,
    IMPORT_LIST,
    REFRESH_LIST,
    ApiError,
    MilvusClient,
    RequestRecord,
)
from .config import ClusterConfig, Config
from .ratelimit import SlidingWindowLimiter
from .records import IMPORT_FINISHED_STATES, ImportJob, ImportJobDetails, RefreshJob
from .redact import redact

log = structlog.get_logger("exporter.poller")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0
RATE_LIMITED_PAUSE_SECONDS = 1.0
STOP_CHECK_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Target:
    """One (cluster, database, job kind): the unit that is up or down."""

    cluster: ClusterConfig
    database: str
    kind: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.cluster.name, self.database, self.kind)

    @property
    def api(self) -> str:
        return REFRESH_LIST if self.kind == "refresh" else IMPORT_LIST


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one poll of one target found; ``ok`` False means ``reason`` says why."""

    target: Target
    polled_at: float
    ok: bool
    reason: str = ""
    message: str = ""
    refresh_jobs: tuple[RefreshJob, ...] = ()
    import_jobs: tuple[ImportJob, ...] = ()
    seconds: float = 0.0
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    cluster: str
    record: RequestRecord


@dataclass(frozen=True)
class CycleResult:
    """Everything one cycle learned, handed to the model in one piece."""

    targets: tuple[Target, ...]
    snapshots: tuple[Snapshot, ...]
    requests: tuple[ClusterRequest, ...]
    started_at: float
    seconds: float
    import_details: tuple[tuple[tuple[str, str, str], ImportJobDetails], ...] = ()
    """(target key, details) from ``import/describe`` for jobs listed in this cycle."""


def targets_of(config: Config) -> tuple[Target, ...]:
    """Every (cluster, database, kind) of the config that falls in this replica's shard."""
    return tuple(
        Target(cluster, database, kind)
        for cluster in config.clusters
        for database in cluster.databases
        for kind in cluster.jobs
        if shard_of(cluster.name, database, kind, config.shard_count) == config.shard_index
    )


def limiter_rate(config: Config) -> float:
    """Requests per second per token and path for this replica: N replicas sharing a token each
    take 1/N of its limit, so together they stay under it."""
    return config.requests_per_second / config.shard_count


def shard_of(cluster: str, database: str, kind: str, count: int) -> int:
    """A stable shard for a target: the same on every replica, every run, every Python."""
    if count == 1:
        return 0
    digest = hashlib.sha256(f"{cluster}\x00{database}\x00{kind}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass
class _Task:
    target: Target
    attempts: int = 0
    not_before: float = 0.0
    started: float = 0.0
    describe_job_id: str | None = None
    """Set for an ``import/describe`` follow-up of an import list; None for the list itself."""

    @property
    def api(self) -> str:
        return self.target.api if self.describe_job_id is None else IMPORT_DESCRIBE


@dataclass
class _CycleState:
    pending: dict[tuple[str, str], deque[_Task]] = field(default_factory=dict)
    delayed: list[_Task] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    requests: list[ClusterRequest] = field(default_factory=list)
    details: list[tuple[tuple[str, str, str], ImportJobDetails]] = field(default_factory=list)
    in_flight: int = 0


class Poller:
    """Owns the HTTP sessions, the limiter and the worker pool for one config."""

    def __init__(
        self,
        config: Config,
        *,
        limiter: SlidingWindowLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        described_finished: dict[tuple[str, str, str], set[str]] | None = None,
    ) -> None:
        self.config = config
        self.targets = targets_of(config)
        self.limiter = limiter or SlidingWindowLimiter(limiter_rate(config), clock=clock)
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._sessions = {
            cluster.name: _session(config.max_concurrent_requests) for cluster in config.clusters
        }
        self._executor = ThreadPoolExecutor(
            config.max_concurrent_requests, thread_name_prefix="poll"
        )
        self._said_once: set[tuple[object, ...]] = set()
        self._said_once_lock = threading.Lock()
        self._describe_margin = min(config.request_timeout, config.poll_interval / 2)
        self._described_finished: dict[tuple[str, str, str], set[str]] = (
            {} if described_finished is None else described_finished
        )
        """Finished import jobs whose final details were fetched: described once, not again."""

    @property
    def described_finished(self) -> dict[tuple[str, str, str], set[str]]:
        """Finished imports already described, to hand to the poller of a reloaded config."""
        return self._described_finished

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for session in self._sessions.values():
            session.close()

    def poll_cycle(self, stop: threading.Event | None = None) -> CycleResult:
        """Poll every target once; retries and follow-ups start only within one poll interval."""
        chosen = self.targets
        started_wall = self._wall_clock()
        started = self._clock()
        deadline = started + self.config.poll_interval
        state = _CycleState()
        for target in chosen:
            task = _Task(target)
            state.pending.setdefault(self._limit_key(task), deque()).append(task)
        wakeup = threading.Condition()
        with wakeup:
            while state.pending or state.delayed or state.in_flight:
                if stop is not None and stop.is_set():
                    state.pending.clear()  # shutting down: start nothing new, let in-flight end
                    state.delayed.clear()
                    next_wake = math.inf
                else:
                    next_wake = self._dispatch(state, wakeup, deadline)
                if state.pending or state.delayed or state.in_flight:
                    wait = next_wake - self._clock() if next_wake < math.inf else STOP_CHECK_SECONDS
                    wakeup.wait(timeout=min(max(0.001, wait), STOP_CHECK_SECONDS))
        return CycleResult(
            targets=chosen,
            snapshots=tuple(state.snapshots),
            requests=tuple(state.requests),
            started_at=started_wall,
            seconds=self._clock() - started,
            import_details=tuple(state.details),
        )

    def _limit_key(self, task: _Task) -> tuple[str, str]:
        return (task.target.cluster.credential_id, task.api)

    def _dispatch(self, state: _CycleState, wakeup: threading.Condition, deadline: float) -> float:
        """Start every request that may start now; return when the next one may (called locked)."""
        now = self._clock()
        next_wake = math.inf
        still_delayed = []
        for task in state.delayed:
            if task.not_before <= now:
                state.pending.setdefault(self._limit_key(task), deque()).append(task)
            else:
                still_delayed.append(task)
                next_wake = min(next_wake, task.not_before)
        state.delayed = still_delayed
        progressed = True
        while progressed and state.pending:
            progressed = False
            for key in list(state.pending):
                if state.in_flight >= self.config.max_concurrent_requests:
                    return next_wake
                queue = state.pending[key]
                if queue[0].describe_job_id is not None and now + self._describe_margin > deadline:
                    del state.pending[key]  # details are a bonus: never stretch the cycle for them
                    continue
                wait = self.limiter.try_acquire(key)
                if wait > 0:
                    next_wake = min(next_wake, now + wait)
                    continue
                task = queue.popleft()
                if not queue:
                    del state.pending[key]
                state.in_flight += 1
                progressed = True
                self._executor.submit(self._run, task, state, wakeup, deadline)
        return next_wake

    def _run(
        self, task: _Task, state: _CycleState, wakeup: threading.Condition, deadline: float
    ) -> None:
        """Worker: one attempt at one target, then report back to the scheduler."""
        if task.describe_job_id is not None:
            self._run_describe(task, state, wakeup)
            return
        target = task.target
        task.attempts += 1
        if task.attempts == 1:
            task.started = self._clock()
        requests_seen: list[ClusterRequest] = []
        snapshot: Snapshot | None = None
        retry_at: float | None = None
        try:
            snapshot = self._poll_once(target, task, requests_seen)
        except ApiError as error:
            if error.reason == "rate_limited":
                self.limiter.pause(
                    self._limit_key(task), error.retry_after or RATE_LIMITED_PAUSE_SECONDS
                )
            retry_at = self._retry_time(task, error, deadline)
            if retry_at is None:
                snapshot = self._failed(target, task, error)
            else:
                log.info(
                    "poll.retry", **_fields(target), reason=error.reason, attempt=task.attempts
                )
        except Exception as error:  # a bug must not take the daemon down; it is logged and counted
            log.exception("poll.internal_error", **_fields(target))
            snapshot = self._failed(target, task, ApiError("internal", type(error).__name__))
        with wakeup:
            state.in_flight -= 1
            state.requests.extend(requests_seen)
            if snapshot is not None:
                state.snapshots.append(snapshot)
                self._queue_import_details(snapshot, state)
            elif retry_at is not None:
                task.not_before = retry_at
                state.delayed.append(task)
            wakeup.notify()

    def _queue_import_details(self, snapshot: Snapshot, state: _CycleState) -> None:
        """After an import list: describe unfinished jobs, and finished ones once (called locked)."""
        if not self.config.import_details or not snapshot.ok or snapshot.target.kind != "import":
            return
        key = snapshot.target.key
        listed = {job.job_id for job in snapshot.import_jobs}
        done = self._described_finished.setdefault(key, set())
        done &= listed  # forget jobs the server no longer lists
        for job in snapshot.import_jobs:
            if job.finished and job.job_id in done:
                continue
            task = _Task(snapshot.target, describe_job_id=job.job_id)
            state.pending.setdefault(self._limit_key(task), deque()).append(task)

    def _run_describe(self, task: _Task, state: _CycleState, wakeup: threading.Condition) -> None:
        """Worker: fetch one import job's details; a failure costs only those details."""
        requests_seen: list[ClusterRequest] = []
        details: ImportJobDetails | None = None
        job_id = task.describe_job_id or ""
        try:
            details = self._client(task.target, IMPORT_DESCRIBE, requests_seen).import_job_details(
                job_id
            )
        except ApiError as error:
            log.debug(
                "import.describe_failed", **_fields(task.target), job_id=job_id, reason=error.reason
            )
        except Exception:  # a bug must not take the daemon down
            log.exception("import.describe_internal_error", **_fields(task.target), job_id=job_id)
        with wakeup:
            state.in_flight -= 1
            state.requests.extend(requests_seen)
            if details is not None:
                state.details.append((task.target.key, details))
                if details.complete_time is not None or details.state in IMPORT_FINISHED_STATES:
                    self._described_finished.setdefault(task.target.key, set()).add(job_id)
            wakeup.notify()

    def _client(
        self, target: Target, preacquired_api: str, requests_seen: list[ClusterRequest]
    ) -> MilvusClient:
        """A client whose first request to ``preacquired_api`` uses the slot the scheduler took."""
        cluster = target.cluster
        first_request = True

        def gate(api: str) -> None:
            nonlocal first_request
            if first_request and api == preacquired_api:
                first_request = False  # the scheduler already took this slot
                return
            self.limiter.acquire((cluster.credential_id, api))

        return MilvusClient(
            cluster.endpoint,
            cluster.token,
            self._sessions[cluster.name],
            self.config.request_timeout,
            gate=gate,
            observe=lambda record: requests_seen.append(ClusterRequest(cluster.name, record)),
            max_response_bytes=self.config.max_response_bytes,
            verify=_verify(cluster),
            clock=self._clock,
        )

    def _poll_once(
        self, target: Target, task: _Task, requests_seen: list[ClusterRequest]
    ) -> Snapshot:
        client = self._client(target, target.api, requests_seen)
        polled_at = self._wall_clock()
        if target.kind == "refresh":
            refresh_jobs = tuple(client.list_refresh_jobs(target.database))
            import_jobs: tuple[ImportJob, ...] = ()
            self._note_oddities(target, refresh_jobs)
        else:
            refresh_jobs = ()
            import_jobs = tuple(client.list_import_jobs(target.database))
            self._note_oddities(target, import_jobs)
        seconds = self._clock() - task.started
        log.debug(
            "poll.finished",
            **_fields(target),
            jobs=len(refresh_jobs) + len(import_jobs),
            ms=round(seconds * 1000),
        )
        return Snapshot(
            target=target,
            polled_at=polled_at,
            ok=True,
            refresh_jobs=refresh_jobs,
            import_jobs=import_jobs,
            seconds=seconds,
            attempts=task.attempts,
        )

    def _retry_time(self, task: _Task, error: ApiError, deadline: float) -> float | None:
        if not error.temporary or task.attempts > self.config.max_retries:
            return None
        backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (task.attempts - 1))
        delay = max(backoff * self._rng.uniform(0.5, 1.0), error.retry_after or 0.0)
        retry_at = self._clock() + delay
        if retry_at + self.config.request_timeout > deadline:
            return None  # a retry that could outlast the cycle would delay every other target
        return retry_at

    def _failed(self, target: Target, task: _Task, error: ApiError) -> Snapshot:
        message = redact(error.message, target.cluster.token)
        log.warning(
            "poll.failed",
            **_fields(target),
            reason=error.reason,
            error=message,
            attempts=task.attempts,
        )
        return Snapshot(
            target=target,
            polled_at=self._wall_clock(),
            ok=False,
            reason=error.reason,
            message=message,
            seconds=self._clock() - task.started,
            attempts=task.attempts,
        )

    def _note_oddities(self, target: Target, jobs: Iterable[RefreshJob | ImportJob]) -> None:
        """Log an unknown state or an out-of-range progress once, not on every poll."""
        for job in jobs:
            if not job.known_state:
                self._say_once(
                    ("state", target.key, job.state), "job.unknown_state", target, state=job.state
                )
            if job.progress_out_of_range:
                self._say_once(
                    ("progress", target.key, job.collection, job.job_id),
                    "job.progress_out_of_range",
                    target,
                    collection=job.collection,
                    job_id=str(job.job_id),
                )

    def _say_once(
        self, key: tuple[object, ...], event: str, target: Target, **fields: object
    ) -> None:
        with self._said_once_lock:
            if key in self._said_once or len(self._said_once) > 100_000:
                return
            self._said_once.add(key)
        log.warning(event, **_fields(target), **fields)


def _fields(target: Target) -> dict[str, str]:
    return {"cluster": target.cluster.name, "database": target.database, "kind": target.kind}


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = True
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _verify(cluster: ClusterConfig) -> bool | str:
    if cluster.tls_insecure_skip_verify:
        return False
    return cluster.tls_ca_file or True
