"""Snapshot restores: a collection restored from a snapshot (``snapshots/restore``) or from an
external snapshot (``jobs/snapshot/restore_external``), Milvus 3.0 and later.

``POST /v2/vectordb/jobs/snapshot/list`` ``{dbName, collectionName?}`` answers ``records[]`` (no
paging): ``jobId`` a JSON number (int64), ``snapshotName``, ``dbName``, ``collectionName`` (the
target, "" when it cannot be resolved), ``state``, ``progress`` 0-100 (segments copied of all),
``reason`` ("" unless failed), ``startTime`` epoch milliseconds and ``timeCost`` milliseconds.
``jobs/snapshot/describe`` takes the id as a decimal string (a JSON number is refused with 1801,
a non-decimal one with 1100) and answers one record; an unknown id answers 2101 (2100 on older
servers). Older Milvus and Zilliz Cloud (today) do not serve the list: an HTTP 404 there is the
target reason ``not_served``, which is why restores are polled only where ``jobs`` names them.

Like imports, the server's list is not a memory: each collection's newest finished restore is
kept (``NEWEST_FINISHED``), so a failed restore stays failed until a later one finishes.
``RestoreSnapshotNone`` is no documented state: it is exported as an unknown state, as sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exposition import catalogue as m
from ..upstream.records import (
    LATEST_PLAUSIBLE_AHEAD_SECONDS,
    RecordError,
    read_epoch_millis,
    read_int64,
    read_name,
    read_progress,
    read_reason,
    read_state,
    shared_text,
)
from .declaration import (
    NEWEST_FINISHED,
    Alerting,
    Endpoints,
    Fields,
    JobKind,
    Ordering,
    ReasonSeries,
    Saved,
    Series,
    Shown,
    States,
    StateSeries,
    Times,
    Value,
    View,
)
from .view import both_times, percent, percent_text, rfc3339, rounded, short_duration

RESTORE_STATES = (
    "RestoreSnapshotPending",
    "RestoreSnapshotExecuting",
    "RestoreSnapshotCompleted",
    "RestoreSnapshotFailed",
)
PENDING, EXECUTING, COMPLETED, FAILED = RESTORE_STATES
FINISHED = frozenset({COMPLETED, FAILED})


@dataclass(frozen=True, slots=True)
class RestoreJob:
    """One snapshot restore job as listed by the server; times in seconds."""

    job_id: int
    collection: str
    state: str
    progress_ratio: float
    start_time: float | None
    time_cost: float | None
    """What the server says the restore took (``timeCost``, milliseconds upstream)."""
    reason: str = ""
    progress_out_of_range: bool = False
    snapshot: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def known_state(self) -> bool:
        return self.state in RESTORE_STATES

    @property
    def end_time(self) -> float | None:
        """Start plus time cost, once finished."""
        if not self.finished or self.start_time is None or self.time_cost is None:
            return None
        return self.start_time + self.time_cost


def parse_restore_job(
    record: Any, now: float | None = None, shared: dict[str, str] | None = None
) -> RestoreJob:
    """Read one ``records[]`` entry of the snapshot restore list, or a describe answer.

    ``now`` (default the system clock) bounds how far ahead the start time may be; ``shared``
    makes equal collection, state and snapshot names one string (as for refresh records).
    """
    if not isinstance(record, dict):
        raise RecordError(f"expected a job object, got {type(record).__name__}")
    latest = (time.time() if now is None else now) + LATEST_PLAUSIBLE_AHEAD_SECONDS
    progress, out_of_range = read_progress(record.get("progress"))
    snapshot = record.get("snapshotName")
    return RestoreJob(
        job_id=read_int64(record.get("jobId"), "jobId"),
        collection=shared_text(read_name(record.get("collectionName"), "collectionName"), shared),
        state=shared_text(read_state(record.get("state")), shared),
        progress_ratio=progress,
        start_time=read_epoch_millis(record.get("startTime"), "startTime", latest),
        time_cost=_milliseconds(record.get("timeCost")),
        reason=read_reason(record.get("reason")),
        progress_out_of_range=out_of_range,
        snapshot=shared_text(read_name(snapshot, "snapshotName"), shared)
        if isinstance(snapshot, str)
        else "",
    )


def _milliseconds(value: Any) -> float | None:
    """``timeCost``: a non-negative int64 of milliseconds, as seconds; missing is unknown."""
    if value is None or value == "":
        return None
    return read_int64(value, "timeCost", "bad_time") / 1000.0


def _parse(record: Any, now: float, shared: dict[str, str]) -> RestoreJob:
    return parse_restore_job(record, now, shared)


def _started(job: RestoreJob, details: None) -> float | None:
    return job.start_time


def _ended(job: RestoreJob, details: None) -> float | None:
    return job.end_time


def _duration(job: RestoreJob, details: None, now: float) -> float | None:
    """The server's time cost once finished; time since the start while it runs."""
    if job.finished:
        return job.time_cost
    return None if job.start_time is None else max(0.0, now - job.start_time)


def _job_duration(view: View[RestoreJob, None]) -> float | None:
    return _duration(view.job, None, view.polled_at)


def _listed(job: RestoreJob) -> tuple[float, int]:
    return (job.start_time or 0.0, job.job_id)


def _newest(job: RestoreJob, details: None, first_seen: float | None) -> tuple[float, str]:
    """A later start is a newer restore; without one, a later first sighting."""
    return (job.start_time or first_seen or 0.0, f"{job.job_id:020d}")


def _age(job: RestoreJob, details: None, first_seen: float | None) -> float:
    return job.end_time or job.start_time or first_seen or 0.0


def _observed(job: RestoreJob, details: None) -> tuple[str, float] | None:
    if not job.finished:
        return None
    if job.start_time is None or job.time_cost is None:
        return (job.state, -1.0)  # never started: nothing to observe
    return (job.state, job.time_cost)


def _saved_job(job: RestoreJob) -> dict[str, Any]:
    return {
        "job_id": str(job.job_id),
        "collection": job.collection,
        "state": job.state,
        "progress_ratio": job.progress_ratio,
        "reason": job.reason,
        "start_time": job.start_time,
        "time_cost": job.time_cost,
        "snapshot": job.snapshot,
    }


def _read_saved_job(entry: Mapping[str, Any], fields: Fields) -> RestoreJob:
    job_id = fields.identifier(entry["job_id"])
    if not (job_id.isascii() and job_id.isdigit()):
        raise ValueError("a restore job id is a number")
    cost = entry.get("time_cost")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 <= cost < 1e12
    ):
        raise ValueError("a time cost is not a number of seconds")
    return RestoreJob(
        job_id=int(job_id),
        collection=fields.text(entry["collection"]),
        state=fields.text(entry["state"]),
        progress_ratio=fields.ratio(entry["progress_ratio"]),
        start_time=fields.time(entry.get("start_time")),
        time_cost=None if cost is None else float(cost),
        reason=fields.text(entry.get("reason", "")),
        snapshot=fields.text(entry.get("snapshot", "")),
    )


def _shown(job: RestoreJob, now: float) -> Shown:
    duration = _duration(job, None, now)
    shown_duration = "-"
    if duration is not None:
        shown_duration = short_duration(duration) + ("" if job.finished else " so far")
    return Shown(
        fields=(
            ("Job ID", str(job.job_id), False),
            ("Collection", job.collection, False),
            ("Snapshot", job.snapshot or "-", False),
            ("State", job.state, True),
            ("Progress", percent_text(job.progress_ratio), False),
            ("Started", both_times(job.start_time), False),
            ("Duration", shown_duration, False),
            ("Reason", job.reason or "-", False),
        ),
        document={
            "collection": job.collection,
            "jobId": str(job.job_id),
            "snapshotName": job.snapshot,
            "state": job.state,
            "progress": percent(job.progress_ratio),
            "startTime": rfc3339(job.start_time),
            "durationSeconds": rounded(duration),
            "reason": job.reason,
        },
    )


RESTORE: JobKind[RestoreJob, None] = JobKind(
    name="restore",
    noun="restore",
    plural="restores",
    title="Snapshot restore jobs",
    metric_prefix="milvus_restore",
    default=False,
    endpoints=Endpoints(
        list="snapshot/list",
        describe="snapshot/describe",
        not_found=frozenset({"api_2101", "api_2100"}),
        describe_id=str,  # a decimal string: a JSON number is refused (1801)
        served_since="Milvus 3.0",
    ),
    parse=_parse,
    states=States(
        pending=(PENDING,),
        running=(EXECUTING,),
        succeeded=COMPLETED,
        failed=FAILED,
        documented=RESTORE_STATES,
    ),
    ordering=Ordering(listed=_listed, newest=_newest, age=_age),
    times=Times(started=_started, ended=_ended, duration=_duration),
    series=Series(
        per_job=(
            Value(m.RESTORE_JOB_PROGRESS, lambda view: view.job.progress_ratio),
            StateSeries(m.RESTORE_JOB_STATE),
            Value(m.RESTORE_JOB_START, lambda view: view.job.start_time),
            Value(m.RESTORE_JOB_DURATION, _job_duration),
            ReasonSeries(m.RESTORE_JOB_FAILURE, lambda job: job.state == FAILED),
        ),
        counts=m.RESTORE_JOBS,
        durations=m.RESTORE_DURATION,
        observed=_observed,
    ),
    memory=NEWEST_FINISHED,
    alerting=Alerting(
        row_title="Snapshot restores",
        subject="Restore of",
        newest="The newest snapshot restore of collection",
        collection="collection",
        failed_comment=(
            "The newest finished snapshot restore of a collection (by start time) failed. "
            "Resolves when a later restore of the collection completes; the exporter keeps "
            "exporting the failed job after the server forgets it until it forgets the "
            "collection (collection_retention). While the exporter sends nothing about the "
            "collection (a missed scrape, a restart), the last {lookback} hold it; while it "
            "sends data, that data decides at once. {held}"
        ),
        failed_extra=(" The collection is not restored until a restore of it completes."),
        failed_table=(
            "The newest finished snapshot restore of each collection, when it failed (the "
            "collections MilvusRestoreJobFailed pages on), with the reason the cluster gave and "
            "when the restore started."
        ),
        failed_time=("job_start_timestamp_seconds", "Started"),
        stuck=True,
    ),
    described=lambda data, now: parse_restore_job(data, now),
    shown=_shown,
    saved=Saved(job=_saved_job, read_job=_read_saved_job),
)
