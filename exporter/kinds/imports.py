"""Bulk imports: rows loaded into a collection from files.

``POST /v2/vectordb/jobs/import/list`` ``{dbName, collectionName?}`` answers the database's
imports without times or row counts (paged on the Zilliz Cloud control plane: ``count``,
``pageSize``, ``currentPage``); ``import/describe`` with the id as a string adds rows, bytes,
RFC 3339 create and complete times and per-file details, so every listed import that is not
finished is described each round and every finished one once (the ``import/describe``
follow-up, switched by ``import_details``). Job ids are digits on Milvus and ``job-xxxx`` on the
Zilliz Cloud control plane; an unknown id answers 2100 (2101 on the newest servers).

The server forgets a finished import about three hours after it ends, so the exporter keeps
each collection's newest finished import (``NEWEST_FINISHED``): a failure never followed by
another import stays a failure. Before pre-import ends a describe answers rows 0 of 0 and no
files: those zeros are read as unknown (``records.pre_import``), so no row count or size is
exported before it exists. A job in state ``None`` (its reason: "unknown import job state") is
known, unfinished and not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..exposition import catalogue as m
from ..upstream.records import (
    IMPORT_EXTRA_STATES,
    IMPORT_FINISHED_STATES,
    IMPORT_STATES,
    ImportFileDetails,
    ImportJob,
    ImportJobDetails,
    parse_import_details,
    parse_import_job,
)
from .declaration import (
    NEWEST_FINISHED,
    Alerting,
    Endpoints,
    Fields,
    FollowUp,
    JobKind,
    Legacy,
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
from .view import number, percent, percent_text, rfc3339, size, trim

PENDING, IMPORTING, COMPLETED, FAILED = IMPORT_STATES
FILE_HEADER = ("FILE", "STATE", "PROGRESS", "ROWS", "SIZE", "COMPLETED")
REASON_COLUMN_WIDTH = 60

Details = ImportJobDetails | None


def _parse(record: Any, now: float, shared: dict[str, str]) -> ImportJob:
    del now  # the import list carries no times
    return parse_import_job(record, shared)


def _created(job: ImportJob, details: Details) -> float | None:
    return None if details is None else details.create_time


def _completed(job: ImportJob, details: Details) -> float | None:
    return None if details is None else details.complete_time


def _duration(job: ImportJob, details: Details, now: float) -> float | None:
    """Complete minus create once complete; time so far while not finished (describe only)."""
    created = _created(job, details)
    if created is None:
        return None
    completed = _completed(job, details)
    if completed is not None:
        return max(0.0, completed - created)
    return None if job.finished else max(0.0, now - created)


def _newest(job: ImportJob, details: Details, first_seen: float | None) -> tuple[float, str]:
    """By create time (``import/describe``), else by when the exporter first saw the job, then
    by id: Zilliz Cloud's ``job-xxxx`` ids do not sort by age, and a newer failed import must
    not hide behind an older completed one whose id happens to sort higher."""
    created = _created(job, details)
    if created is None:
        created = first_seen or 0.0
    number_part, text = job.order_key
    return (created, f"{number_part:020d}{text}")


def _age(job: ImportJob, details: Details, first_seen: float | None) -> float:
    return _newest(job, details, first_seen)[0]


def _observed(job: ImportJob, details: Details) -> tuple[str, float] | None:
    """Complete minus create, by the state ``import/describe`` gives; a failed import has no
    complete time on any real server, so it is never observed."""
    if details is None or details.complete_time is None or details.create_time is None:
        return None
    return (details.state, details.complete_time - details.create_time)


def _details(read: Any) -> Any:
    """A per-job value of the describe details, left out without them."""

    def value(view: View[ImportJob, ImportJobDetails]) -> float | None:
        if view.details is None:
            return None
        number_value = read(view.details)
        return None if number_value is None else float(number_value)

    return value


def _job_duration(view: View[ImportJob, ImportJobDetails]) -> float | None:
    """As ``_duration``; the poll time is read only while the job runs, so a finished job's
    samples are the same every cycle and are not rendered again (``metrics/series.py``)."""
    job, details = view.job, view.details
    if job.finished or _completed(job, details) is not None or _created(job, details) is None:
        return _duration(job, details, 0.0)
    return _duration(job, details, view.polled_at)


def _final(details: ImportJobDetails) -> bool:
    return details.complete_time is not None or details.state in IMPORT_FINISHED_STATES


def _saved_job(job: ImportJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "collection": job.collection,
        "state": job.state,
        "progress_ratio": job.progress_ratio,
        "reason": job.reason,
    }


def _read_saved_job(entry: Mapping[str, Any], fields: Fields) -> ImportJob:
    return ImportJob(
        fields.identifier(entry["job_id"]),
        fields.text(entry["collection"]),
        fields.text(entry["state"]),
        fields.ratio(entry["progress_ratio"]),
        fields.text(entry.get("reason", "")),
    )


def _saved_details(details: ImportJobDetails) -> dict[str, Any]:
    """Its ``details[]`` files are not kept: no remembered series reads them."""
    return {
        "state": details.state,
        "imported_rows": details.imported_rows,
        "total_rows": details.total_rows,
        "file_size_bytes": details.file_size_bytes,
        "create_time": details.create_time,
        "complete_time": details.complete_time,
        "progress_ratio": details.progress_ratio,
        "reason": details.reason,
    }


def _read_saved_details(
    entry: Mapping[str, Any], job: ImportJob, fields: Fields
) -> ImportJobDetails:
    return ImportJobDetails(
        job_id=job.job_id,
        state=fields.text(entry["state"]),
        imported_rows=fields.count(entry.get("imported_rows")),
        total_rows=fields.count(entry.get("total_rows")),
        file_size_bytes=fields.count(entry.get("file_size_bytes")),
        create_time=fields.time(entry.get("create_time")),
        complete_time=fields.time(entry.get("complete_time")),
        collection=job.collection,
        progress_ratio=fields.ratio(entry.get("progress_ratio", 0.0)),
        reason=fields.text(entry.get("reason", "")),
    )


def _file_document(file: ImportFileDetails) -> dict[str, Any]:
    ratio = file.progress_ratio
    return {
        "fileName": file.file_name,
        "fileSize": file.file_size_bytes,
        "state": file.state,
        "progress": None if ratio is None else percent(ratio),
        "importedRows": file.imported_rows,
        "totalRows": file.total_rows,
        "completeTime": rfc3339(file.complete_time),
        "reason": file.reason,
    }


def _file_cells(file: ImportFileDetails, with_reason: bool) -> tuple[str, ...]:
    ratio = file.progress_ratio
    row = [
        file.file_name or "-",
        file.state or "-",
        f"{percent(ratio)}%" if ratio is not None else "-",
        f"{number(file.imported_rows)}/{number(file.total_rows)}",
        size(file.file_size_bytes),
        rfc3339(file.complete_time) or "-",
    ]
    if with_reason:
        row.append(trim(file.reason, REASON_COLUMN_WIDTH))
    return tuple(row)


def _shown(details: ImportJobDetails, now: float) -> Shown:
    """Nothing the server did not send: a failed import has no completion time."""
    file_size = details.file_size_bytes
    table = None
    if details.files:
        with_reason = any(file.reason for file in details.files)
        header = (*FILE_HEADER, *(("REASON",) if with_reason else ()))
        rows = tuple(_file_cells(file, with_reason) for file in details.files)
        table = (header, rows, 1)
    problems = tuple(
        f"import job {details.job_id}: {count} file {'entry' if count == 1 else 'entries'} not "
        f"shown, {reason} ({message})"
        for reason, count, message in details.skipped_files
    )
    return Shown(
        fields=(
            ("Job ID", details.job_id, False),
            ("Collection", details.collection, False),
            ("State", details.state, True),
            ("Progress", percent_text(details.progress_ratio), False),
            (
                "Rows",
                f"{number(details.imported_rows)} of {number(details.total_rows)} imported",
                False,
            ),
            (
                "File size",
                size(file_size) + (f" ({file_size:,} bytes)" if file_size is not None else ""),
                False,
            ),
            ("Created", rfc3339(details.create_time) or "-", False),
            ("Completed", rfc3339(details.complete_time) or "-", False),
            ("Reason", details.reason or "-", False),
        ),
        document={
            "collection": details.collection,
            "jobId": details.job_id,
            "state": details.state,
            "progress": percent(details.progress_ratio),
            "reason": details.reason,
            "importedRows": details.imported_rows,
            "totalRows": details.total_rows,
            "fileSize": details.file_size_bytes,
            "createTime": rfc3339(details.create_time),
            "completeTime": rfc3339(details.complete_time),
            "details": [_file_document(file) for file in details.files],
        },
        table=table,
        problems=problems,
    )


def _kept(details: ImportJobDetails) -> ImportJobDetails:
    """Without its ``details[]`` files, which no series reads (``jobs describe`` shows them,
    from its own answer): the model holds an answer for every described listed import."""
    if not details.files and not details.skipped_files:
        return details
    return replace(details, files=(), skipped_files=())


def _described(data: Any, now: float) -> ImportJobDetails:
    return parse_import_details(data)


IMPORT: JobKind[ImportJob, ImportJobDetails] = JobKind(
    name="import",
    noun="import",
    plural="imports",
    title="Bulk import jobs",
    metric_prefix="milvus_import",
    default=True,
    endpoints=Endpoints(
        list="import/list",
        describe="import/describe",
        not_found=frozenset({"api_2100", "api_2101", "api_1802"}),
        paged=True,
        numeric_ids=False,
    ),
    parse=_parse,
    states=States(
        pending=(PENDING,),
        running=(IMPORTING, "InProgress", "Uncommitted", "Committing"),
        succeeded=COMPLETED,
        failed=FAILED,
        documented=IMPORT_STATES,
        also_known=tuple(sorted(IMPORT_EXTRA_STATES - {"InProgress", "Uncommitted", "Committing"})),
    ),
    ordering=Ordering(listed=lambda job: job.order_key, newest=_newest, age=_age),
    times=Times(started=_created, ended=_completed, duration=_duration),
    series=Series(
        per_job=(
            Value(m.IMPORT_JOB_PROGRESS, lambda view: view.job.progress_ratio),
            StateSeries(m.IMPORT_JOB_STATE),
            ReasonSeries(m.IMPORT_JOB_FAILURE, lambda job: job.state == FAILED),
            Value(m.IMPORT_JOB_IMPORTED_ROWS, _details(lambda details: details.imported_rows)),
            Value(m.IMPORT_JOB_TOTAL_ROWS, _details(lambda details: details.total_rows)),
            Value(m.IMPORT_JOB_FILE_SIZE, _details(lambda details: details.file_size_bytes)),
            Value(m.IMPORT_JOB_CREATE, _details(lambda details: details.create_time)),
            Value(m.IMPORT_JOB_COMPLETE, _details(lambda details: details.complete_time)),
            Value(m.IMPORT_JOB_DURATION, _job_duration),
        ),
        counts=m.IMPORT_JOBS,
        durations=m.IMPORT_DURATION,
        observed=_observed,
    ),
    memory=NEWEST_FINISHED,
    alerting=Alerting(
        row_title="Bulk imports",
        subject="Import into",
        newest="The newest bulk import into collection",
        collection="collection",
        failed_comment=(
            "The newest finished import of a collection (by create time, else by when the "
            "exporter first saw it) failed. Resolves when a later import into the collection "
            "completes; the exporter keeps exporting the failed job after the server forgets it "
            "(about 3 h after it finished) until it forgets the collection "
            "(collection_retention). While the exporter sends nothing about the collection (a "
            "missed scrape, a restart), the last {lookback} hold it; while it sends data, that "
            "data decides at once. {held}"
        ),
        failed_table=(
            "The newest finished import of each collection, when it failed (the collections "
            "MilvusImportJobFailed pages on), with the reason the cluster gave and when the job "
            "was created ('unknown' without import_details)."
        ),
        failed_time=("job_create_timestamp_seconds", "Created"),
    ),
    described=_described,
    shown=_shown,
    saved=Saved(
        job=_saved_job,
        read_job=_read_saved_job,
        details=_saved_details,
        read_details=_read_saved_details,
    ),
    follow_up=FollowUp(
        api="import/describe",
        body=lambda job_id: {"jobId": job_id},
        read=parse_import_details,
        job_id=lambda details: details.job_id,
        final=_final,
        switch="import_details",
        per_round="max_import_describes",
        kept=_kept,
    ),
    legacy=Legacy(memory="imports", seen="imports_seen", durations="import_durations"),
)
