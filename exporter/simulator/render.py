"""Job schedules turned into the JSON records the endpoints answer, in wall-clock time.

Simulated time runs `time_scale` times faster than the real clock, so a fixed mapping from
simulated seconds to epoch seconds would put recent events in the future (a dashboard's "time
since last success" would read negative). Instead every answer is written "now minus simulated
age": an event `age` simulated seconds old shows `age` seconds before the real clock. `base` is
that answer's epoch second of simulated time 0 (see `World.wall_base`); at `time_scale` 1 it is
simply the start time, so the records of finished jobs never change and can be cached.

What a record looks like is shared by both flavours, except `details[]` of an import (Milvus:
bracketed file names, task states, the reason on every failed file) and the offset of RFC 3339
times; `FlavorRules` says which.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .flavor import FlavorRules
from .schedule import (
    IMPORTED_PROGRESS,
    PENDING_PROGRESS_TOP,
    ImportSchedule,
    ImportStatus,
    RefreshSchedule,
    import_status,
    refresh_status,
)

# A few files of a running Milvus import show the task state Retry (one in RETRY_EVERY).
RETRY_EVERY = 5


def epoch_milliseconds(base: float, t: float) -> int:
    return round((base + t) * 1000)


def rfc3339(base: float, t: float, offset_minutes: int) -> str:
    """Whole seconds in the server's offset, as Go's time.RFC3339 writes them ("Z" for UTC)."""
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(base + t, tz=zone)
    if offset_minutes == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"


def refresh_record(job: RefreshSchedule, now: float, base: float) -> dict[str, object]:
    """The record as list and describe answer it; `reason` appears only on failed jobs."""
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
    return record


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
