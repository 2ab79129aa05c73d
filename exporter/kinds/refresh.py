"""Refreshes of external collections: re-syncing a collection from its external source.

``POST /v2/vectordb/jobs/external_collection/list`` ``{dbName, collectionName?}`` answers every
refresh job of the database (newest first, no paging) with epoch-millisecond start and end
times; ``external_collection/describe`` takes the id as a JSON number and answers one record
(code 1100 for an unknown id). The server lists finished refreshes for about a day, so the
exporter remembers each collection's newest success and failure (``HISTORY``).

A pending refresh that keeps hitting a transient error carries that error in ``reason`` while
it stays ``RefreshPending``: it is exported (``milvus_refresh_job_pending_reason_info``), being
the one clue on-call has. In the index-wait phase progress becomes the indexed fraction and may
fall from 99 while the state stays ``RefreshInProgress``: a change, so not stuck.
"""

from __future__ import annotations

from typing import Any

from ..exposition import catalogue as m
from ..upstream.records import (
    REFRESH_STATES,
    RefreshJob,
    parse_refresh_job,
)
from .declaration import (
    HISTORY,
    Alerting,
    Endpoints,
    History,
    JobKind,
    Legacy,
    Ordering,
    ReasonSeries,
    Series,
    Shown,
    States,
    StateSeries,
    Times,
    Value,
    View,
)
from .view import both_times, percent, percent_text, rfc3339, rounded, short_duration

PENDING, RUNNING, COMPLETED, FAILED = REFRESH_STATES


def _parse(record: Any, now: float, shared: dict[str, str]) -> RefreshJob:
    return parse_refresh_job(record, now, shared)


def _started(job: RefreshJob, details: None) -> float | None:
    return job.start_time


def _ended(job: RefreshJob, details: None) -> float | None:
    return job.end_time


def _duration(job: RefreshJob, details: None, now: float) -> float | None:
    """End minus start once finished; time so far while running (never below zero)."""
    if job.start_time is None:
        return None
    end = job.end_time if job.end_time is not None else now
    return max(0.0, end - job.start_time)


def _listed(job: RefreshJob) -> tuple[float, int]:
    """Refreshes of a collection never overlap: a later start is a newer job."""
    return (job.start_time or 0.0, job.job_id)


def _newest(job: RefreshJob, details: None, first_seen: float | None) -> tuple[float, str]:
    return (job.start_time or 0.0, f"{job.job_id:020d}")


def _age(job: RefreshJob, details: None, first_seen: float | None) -> float:
    """A finished refresh ages from its end, a running one from its start."""
    start = job.start_time or 0.0
    return (job.end_time or start) if job.finished else start


def _observed(job: RefreshJob, details: None) -> tuple[str, float] | None:
    if not job.finished:
        return None
    if job.start_time is None or job.end_time is None:
        return (job.state, -1.0)  # finished without its times: nothing to observe, ever
    return (job.state, job.end_time - job.start_time)


def _job_duration(view: View[RefreshJob, None]) -> float | None:
    """End minus start once finished (unknown without an end); poll time minus start while
    running."""
    start, end = view.job.start_time, view.job.end_time
    if start is None:
        return None
    if view.job.finished:
        return None if end is None else max(0.0, end - start)
    return max(0.0, view.polled_at - start)


def _described(data: Any, now: float) -> RefreshJob:
    return parse_refresh_job(data, now)


def _shown(job: RefreshJob, now: float) -> Shown:
    duration = _duration(job, None, now)
    shown_duration = "-"
    if duration is not None:
        shown_duration = short_duration(duration) + ("" if job.finished else " so far")
    return Shown(
        fields=(
            ("Job ID", str(job.job_id), False),
            ("Collection", job.collection, False),
            ("State", job.state, True),
            ("Progress", percent_text(job.progress_ratio), False),
            ("Started", both_times(job.start_time), False),
            ("Ended", both_times(job.end_time), False),
            ("Duration", shown_duration, False),
            ("Source", job.external_source or "-", False),
            ("Reason", job.reason or "-", False),
        ),
        document={
            "collection": job.collection,
            "jobId": str(job.job_id),
            "state": job.state,
            "progress": percent(job.progress_ratio),
            "startTime": rfc3339(job.start_time),
            "endTime": rfc3339(job.end_time),
            "durationSeconds": rounded(duration),
            "reason": job.reason,
            "externalSource": job.external_source,
        },
    )


REFRESH: JobKind[RefreshJob, None] = JobKind(
    name="refresh",
    noun="refresh",
    plural="refreshes",
    title="Refresh jobs of external collections",
    metric_prefix="milvus_refresh",
    default=True,
    endpoints=Endpoints(
        list="external_collection/list",
        describe="external_collection/describe",
        not_found=frozenset({"api_1100", "api_1802"}),
        describe_id=int,  # a JSON number: an int64 kept exact
    ),
    parse=_parse,
    states=States(
        pending=(PENDING,),
        running=(RUNNING,),
        succeeded=COMPLETED,
        failed=FAILED,
        documented=REFRESH_STATES,
    ),
    ordering=Ordering(listed=_listed, newest=_newest, age=_age),
    times=Times(started=_started, ended=_ended, duration=_duration),
    series=Series(
        per_job=(
            Value(m.REFRESH_JOB_PROGRESS, lambda view: view.job.progress_ratio),
            StateSeries(m.REFRESH_JOB_STATE),
            Value(m.REFRESH_JOB_START, lambda view: view.job.start_time),
            Value(m.REFRESH_JOB_END, lambda view: view.job.end_time),
            Value(m.REFRESH_JOB_DURATION, _job_duration),
            ReasonSeries(m.REFRESH_JOB_FAILURE, lambda job: job.state == FAILED),
            ReasonSeries(
                m.REFRESH_JOB_PENDING_REASON, lambda job: job.state == PENDING and bool(job.reason)
            ),
        ),
        counts=m.REFRESH_JOBS,
        durations=m.REFRESH_DURATION,
        observed=_observed,
        history=History(
            last_success=m.REFRESH_LAST_SUCCESS,
            last_failure=m.REFRESH_LAST_FAILURE,
            failure_info=m.REFRESH_LAST_FAILURE_INFO,
        ),
    ),
    memory=HISTORY,
    alerting=Alerting(
        row_title="Refreshes of external collections",
        subject="Refresh of",
        newest="The newest refresh of external collection",
        collection="external collection",
        failed_comment=(
            "The newest finished refresh of a collection failed: its failure is newer than its "
            "last success (or it never succeeded). Both times are remembered by the exporter "
            "beyond the server's ~24 h job list and across restarts (state_file). Resolves on "
            "evidence only: a later refresh completes, the collection or its database is "
            "confirmed gone upstream (the exporter stops reporting it), or the target is removed "
            "from the config. {held}"
        ),
        failed_extra=(
            " The collection serves data from before the failed refresh until a refresh completes."
        ),
        failed_table=(
            "Collections whose newest finished refresh failed (its failure is newer than its last "
            "success: the collections MilvusRefreshJobFailed pages on), with the job and the "
            "reason the cluster gave (trimmed to 200 characters) and when the refresh ended."
        ),
        stuck=True,
    ),
    described=_described,
    shown=_shown,
    legacy=Legacy(memory="collections", seen="refresh_seen", durations="refresh_durations"),
)
