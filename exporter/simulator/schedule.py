"""Job schedules: every job's whole future is fixed when it is created.

A schedule holds the simulated instants at which a job changes state, so the state at any moment
is a pure function of the schedule and "now". Nothing ticks in the background: an idle simulator
costs nothing, and the same seed with the same clock gives the same answers.

Simulated time `t` is seconds since the simulator started; `render.py` turns it into wall time.
Import progress follows the Milvus data coordinator in both flavours (the same server code
computes it): Pending 0-10, Importing 10-99, Uncommitted and Committing 99 (only for jobs created
with auto-commit off; for the others those phases show as Importing), Completed 100, Failed 0,
and an unknown state "None" with 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INFINITY = math.inf

REFRESH_RETENTION_SECONDS = 24 * 3600.0
IMPORT_RETENTION_SECONDS = 3 * 3600.0


@dataclass(frozen=True)
class RefreshSchedule:
    """An external-collection refresh: Pending until `running_at`, InProgress until `end_at`.

    `running_at` or `end_at` is infinite for a job that hangs. While running, progress grows at
    `progress_rate` percent per second and never passes `progress_cap` (99 for a job that will
    complete, the failure point for one that will fail, the stall point for one that hangs).
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


@dataclass(frozen=True)
class RefreshStatus:
    state: str
    progress: int
    finished: bool


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


def refresh_status(job: RefreshSchedule, now: float) -> RefreshStatus:
    if now < job.running_at:
        return RefreshStatus("RefreshPending", 0, False)
    if now < job.end_at:
        progress = min(job.progress_cap, int(job.progress_rate * (now - job.running_at)))
        return RefreshStatus("RefreshInProgress", progress, False)
    if job.succeeds:
        return RefreshStatus("RefreshCompleted", 100, True)
    return RefreshStatus("RefreshFailed", job.progress_cap, True)


def refresh_next_change(job: RefreshSchedule, now: float) -> float:
    """The first simulated instant after `now` at which the job's record may look different."""
    if now < job.running_at:
        return job.running_at
    if now < job.end_at:
        progress = min(job.progress_cap, int(job.progress_rate * (now - job.running_at)))
        if progress >= job.progress_cap or job.progress_rate <= 0:
            return job.end_at
        return min(job.end_at, job.running_at + (progress + 1) / job.progress_rate)
    return INFINITY


PENDING_PROGRESS_TOP = 10
IMPORTED_PROGRESS = 99


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
        return _next_step(job.created_at, job.importing_at, 0, PENDING_PROGRESS_TOP, now)
    if now < job.imported_at:
        top = _importing_top(job)
        return _next_step(job.importing_at, job.imported_at, PENDING_PROGRESS_TOP, top, now)
    if job.succeeds and now < job.committing_at:
        return job.committing_at
    if job.succeeds and now < job.end_at:
        return job.end_at
    return INFINITY


def _pending_progress(job: ImportSchedule, now: float) -> int:
    return _ramp(job.created_at, job.importing_at, 0, PENDING_PROGRESS_TOP, now)


def _importing_progress(job: ImportSchedule, now: float) -> int:
    top = _importing_top(job)
    return _ramp(job.importing_at, job.imported_at, PENDING_PROGRESS_TOP, top, now)


def _importing_top(job: ImportSchedule) -> int:
    """Where Importing ends: 99 for a job that will succeed, the failure point for one that fails."""
    return max(PENDING_PROGRESS_TOP, min(IMPORTED_PROGRESS, job.progress_cap))


def _ramp(start: float, end: float, low: int, high: int, now: float) -> int:
    """Whole percent moving from `low` at `start` towards `high` at `end`, never reaching it early."""
    span = end - start
    if span <= 0 or span == INFINITY:
        return low
    return min(high, low + int((high - low) * (now - start) / span))


def _next_step(start: float, end: float, low: int, high: int, now: float) -> float:
    span = end - start
    if span <= 0 or span == INFINITY or high <= low:
        return end
    progress = _ramp(start, end, low, high, now)
    if progress >= high:
        return end
    return min(end, start + span * (progress - low + 1) / (high - low))
