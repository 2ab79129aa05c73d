"""``jobs describe``: one job in detail, as aligned fields for a person or JSON for a script.

The answer is read by the daemon's own parsers (``parse_refresh_job``, ``parse_import_details``),
so the command and ``/metrics`` never disagree about what the server said. Times are shown in
RFC 3339 UTC whatever offset the server wrote them in, and nothing is shown that the server did
not send: a failed import has no completion time, and none is made up.

    Cluster:    prod
    Kind:       import
    Job ID:     458912301925678745
    State:      Failed
    Rows:       0 of 0 imported
    Completed:  -
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Any

from ..config.loader import ClusterConfig, Config
from ..upstream.client import ApiError
from ..upstream.records import ImportFileDetails, ImportJobDetails, RefreshJob
from . import arguments
from .errors import EXIT_OK, CommandError
from .terminal import (
    REASON_COLUMN_WIDTH,
    Console,
    both_times,
    explain,
    number,
    percent,
    percent_text,
    refresh_duration,
    rfc3339,
    rounded,
    short_duration,
    show_fields,
    size,
    table,
    trim,
)
from .upstream import Upstream, find_cluster, is_not_found, not_found_line

FILE_HEADER = ("FILE", "STATE", "PROGRESS", "ROWS", "SIZE", "COMPLETED")


@dataclass(frozen=True)
class DescribeRequest:
    config_path: str
    cluster: str
    kind: str
    job_id: str
    output: str


def describe_request(args: argparse.Namespace) -> DescribeRequest:
    return DescribeRequest(
        config_path=args.config,
        cluster=args.cluster,
        kind=args.kind,
        job_id=arguments.job_id(args.job_id, args.kind),
        output=args.output,
    )


def run_describe(
    request: DescribeRequest, config: Config, upstream: Upstream, console: Console
) -> int:
    cluster = find_cluster(config, request.cluster)
    try:
        if request.kind == "refresh":
            job = upstream.call(
                cluster, lambda client: client.describe_refresh_job(int(request.job_id))
            )
            _show_refresh(cluster, job, console, request.output)
        else:
            details = upstream.call(
                cluster, lambda client: client.import_job_details(request.job_id)
            )
            _show_import(cluster, details, console, request.output)
    except ApiError as error:
        if is_not_found(error, request.kind):
            raise CommandError(
                not_found_line(cluster, request.kind, request.job_id, error)
            ) from None
        raise CommandError(
            f"{cluster.name}: describe {request.kind} job: {explain(error)}"
        ) from None
    return EXIT_OK


# -- refresh -----------------------------------------------------------------------------------


def _show_refresh(cluster: ClusterConfig, job: RefreshJob, console: Console, output: str) -> None:
    duration = refresh_duration(job, time.time())
    if output == "json":
        document = {
            "cluster": cluster.name,
            "kind": "refresh",
            "collection": job.collection,
            "jobId": str(job.job_id),
            "state": job.state,
            "progress": percent(job.progress_ratio),
            "startTime": rfc3339(job.start_time),
            "endTime": rfc3339(job.end_time),
            "durationSeconds": rounded(duration),
            "reason": job.reason,
            "externalSource": job.external_source,
        }
        console.line(json.dumps(document, indent=2))
        return
    shown_duration = "-"
    if duration is not None:
        shown_duration = short_duration(duration) + ("" if job.finished else " so far")
    show_fields(
        console,
        [
            ("Cluster", cluster.name),
            ("Kind", "refresh"),
            ("Job ID", str(job.job_id)),
            ("Collection", job.collection),
            ("State", console.paint(job.state, job.state)),
            ("Progress", percent_text(job.progress_ratio)),
            ("Started", both_times(job.start_time)),
            ("Ended", both_times(job.end_time)),
            ("Duration", shown_duration),
            ("Source", job.external_source or "-"),
            ("Reason", job.reason or "-"),
        ],
    )


# -- import --------------------------------------------------------------------------------------


def _file_json(file: ImportFileDetails) -> dict[str, Any]:
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


def _file_cells(file: ImportFileDetails, with_reason: bool) -> list[str]:
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
    return row


def _import_json(cluster: ClusterConfig, details: ImportJobDetails) -> dict[str, Any]:
    return {
        "cluster": cluster.name,
        "kind": "import",
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
        "details": [_file_json(file) for file in details.files],
    }


def _show_import(
    cluster: ClusterConfig, details: ImportJobDetails, console: Console, output: str
) -> None:
    _report_skipped_files(cluster, details, console)
    if output == "json":
        console.line(json.dumps(_import_json(cluster, details), indent=2))
        return
    file_size = details.file_size_bytes
    show_fields(
        console,
        [
            ("Cluster", cluster.name),
            ("Kind", "import"),
            ("Job ID", details.job_id),
            ("Collection", details.collection),
            ("State", console.paint(details.state, details.state)),
            ("Progress", percent_text(details.progress_ratio)),
            (
                "Rows",
                f"{number(details.imported_rows)} of {number(details.total_rows)} imported",
            ),
            (
                "File size",
                size(file_size) + (f" ({file_size:,} bytes)" if file_size is not None else ""),
            ),
            ("Created", rfc3339(details.create_time) or "-"),
            ("Completed", rfc3339(details.complete_time) or "-"),
            ("Reason", details.reason or "-"),
        ],
    )
    if not details.files:
        return
    with_reason = any(file.reason for file in details.files)
    header = [*FILE_HEADER, *(["REASON"] if with_reason else [])]
    console.line()

    def paint(column: int, text: str) -> str:
        return console.paint(text, text) if column == 1 else text

    rows = [_file_cells(file, with_reason) for file in details.files]
    for line in table(header, rows, paint):
        console.line(line)


def _report_skipped_files(
    cluster: ClusterConfig, details: ImportJobDetails, console: Console
) -> None:
    """A file entry that could not be read is named on stderr, once per reason: the rest of
    the job is still shown (exit 0), and the reader knows the file list is not whole."""
    for reason, count, message in details.skipped_files:
        entries = "entry" if count == 1 else "entries"
        console.problem(
            f"{cluster.name}: import job {details.job_id}: {count} file {entries} not shown, "
            f"{reason} ({message})"
        )
