"""Job schedules: every job's whole future is fixed when it is created.

A schedule holds the simulated instants at which a job changes state, so the state at any moment
is a pure function of the schedule and "now". Nothing ticks in the background: an idle simulator
costs nothing, and the same seed with the same clock gives the same answers.

Simulated time `t` is seconds since the simulator started; `epoch_start` turns it into wall time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

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
    """A bulk import: Pending, Importing, then (two-phase only) Uncommitted and Committing.

    `imported_at` ends the Importing phase; for a one-phase import it equals `end_at`.
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


def import_status(job: ImportSchedule, now: float) -> ImportStatus:
    if now < job.importing_at:
        return ImportStatus("Pending", 0, False)
    if now < job.imported_at:
        return ImportStatus("Importing", _import_progress(job, now), False)
    if not job.succeeds:
        return ImportStatus("Failed", job.progress_cap, True)
    if now < job.committing_at:
        return ImportStatus("Uncommitted", 100, False)
    if now < job.end_at:
        return ImportStatus("Committing", 100, False)
    return ImportStatus("Completed", 100, True)


def import_next_change(job: ImportSchedule, now: float) -> float:
    if now < job.importing_at:
        return job.importing_at
    if now < job.imported_at:
        span = job.imported_at - job.importing_at
        progress = _import_progress(job, now)
        if progress >= job.progress_cap:
            return job.imported_at
        return min(job.imported_at, job.importing_at + span * (progress + 1) / job.progress_cap)
    if job.succeeds and now < job.committing_at:
        return job.committing_at
    if job.succeeds and now < job.end_at:
        return job.end_at
    return INFINITY


def _import_progress(job: ImportSchedule, now: float) -> int:
    span = job.imported_at - job.importing_at
    if span <= 0:
        return job.progress_cap
    return min(job.progress_cap, int(job.progress_cap * (now - job.importing_at) / span))


def epoch_milliseconds(epoch_start: float, t: float) -> int:
    return round((epoch_start + t) * 1000)


def rfc3339(epoch_start: float, t: float) -> str:
    moment = datetime.fromtimestamp(epoch_start + t, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def refresh_record(job: RefreshSchedule, now: float, epoch_start: float) -> dict[str, object]:
    """The record as list and describe answer it; `reason` appears only on failed jobs."""
    status = refresh_status(job, now)
    record: dict[str, object] = {
        "jobId": job.job_id,
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
        "externalSource": job.external_source,
        "externalSpec": job.external_spec,
        "startTime": epoch_milliseconds(epoch_start, job.created_at),
        "endTime": epoch_milliseconds(epoch_start, job.end_at) if status.finished else 0,
    }
    if status.state == "RefreshFailed":
        record["reason"] = job.reason
    return record


def import_list_record(job: ImportSchedule, now: float) -> dict[str, object]:
    status = import_status(job, now)
    record: dict[str, object] = {
        "jobId": str(job.job_id),
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
    }
    if status.state == "Failed":
        record["reason"] = job.reason
    return record


def import_describe_record(
    job: ImportSchedule, now: float, epoch_start: float
) -> dict[str, object]:
    """The describe answer: list fields plus rows, sizes, RFC 3339 times and one entry per file."""
    status = import_status(job, now)
    failed = status.state == "Failed"
    complete_time = rfc3339(epoch_start, job.end_at) if status.finished else ""
    details = []
    for index, file in enumerate(job.files):
        file_reason = job.reason if failed and index == 0 else ""
        details.append(
            {
                "fileName": file.name,
                "fileSize": file.size_bytes,
                "progress": status.progress,
                "completeTime": complete_time,
                "state": _file_state(status.state),
                "importedRows": file.total_rows * status.progress // 100,
                "totalRows": file.total_rows,
                "reason": file_reason,
            }
        )
    return {
        "jobId": str(job.job_id),
        "collectionName": job.collection,
        "state": status.state,
        "progress": status.progress,
        "reason": job.reason if failed else "",
        "importedRows": job.total_rows * status.progress // 100,
        "totalRows": job.total_rows,
        "fileSize": job.size_bytes,
        "createTime": rfc3339(epoch_start, job.created_at),
        "completeTime": complete_time,
        "details": details,
    }


def _file_state(job_state: str) -> str:
    if job_state in ("Uncommitted", "Committing"):
        return "Completed"
    return job_state
