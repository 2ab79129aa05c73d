"""``refresh``: start a refresh of an external collection, print its job id, maybe wait.

The job id is alone on the first line of stdout (``JOB=$(milvus-jobs-exporter refresh ...)``).
``--external-source`` and ``--external-spec`` are sent exactly as given: Zilliz Cloud documents
JSON, a self-hosted Milvus takes a URI such as ``s3://host/bucket/key/``, and only the server
knows what it accepts, so the command checks only what the API itself demands of any caller:
both or neither, and neither empty.

Only a rate-limited trigger is certain not to have started a refresh, so only that is retried:
repeating a trigger that timed out could start a second refresh, or be refused as one.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from ..config.loader import ClusterConfig, Config
from ..kinds.refresh import REFRESH
from ..upstream.client import ApiError
from ..upstream.records import RefreshJob
from . import arguments
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROGRAM, CommandError
from .jobs_wait import WaitRequest, run_wait
from .terminal import Console, explain, percent_text
from .upstream import Upstream, find_cluster

REFRESH_ACTIVE_REASON = "api_703"


@dataclass(frozen=True)
class RefreshRequest:
    config_path: str
    cluster: str
    database: str
    collection: str
    external_source: str | None
    external_spec: str | None
    wait: bool
    timeout: float
    interval: float


def refresh_request(args: argparse.Namespace) -> RefreshRequest:
    """Check the flags before anything is sent: a refused refresh must cost no request."""
    source, spec = args.external_source, args.external_spec
    if (source is None) != (spec is None):
        given, missing = (
            ("--external-source", "--external-spec")
            if source is not None
            else ("--external-spec", "--external-source")
        )
        raise CommandError(
            f"refresh: {given} needs {missing}: give both, or neither to reuse the "
            "collection's persisted source and spec",
            EXIT_USAGE,
        )
    for flag, text in (("--external-source", source), ("--external-spec", spec)):
        if text is not None and not text.strip():
            raise CommandError(
                f"refresh: {flag} is empty: give a value, or leave out both --external-source "
                "and --external-spec to reuse the collection's persisted ones",
                EXIT_USAGE,
            )
    if not args.wait and (args.timeout is not None or args.interval is not None):
        raise CommandError("refresh: --timeout and --interval need --wait", EXIT_USAGE)
    if not args.database.strip() or not args.collection.strip():
        raise CommandError("refresh: --database and --collection must not be empty", EXIT_USAGE)
    timeout, interval = arguments.wait_timing(args)
    return RefreshRequest(
        config_path=args.config,
        cluster=args.cluster,
        database=args.database,
        collection=args.collection,
        external_source=source,
        external_spec=spec,
        wait=args.wait,
        timeout=timeout,
        interval=interval,
    )


def run_refresh(
    request: RefreshRequest, config: Config, upstream: Upstream, console: Console
) -> int:
    cluster = find_cluster(config, request.cluster)
    where = f"{cluster.name}/{request.database} {request.collection}"
    try:
        job_id = upstream.call(
            cluster,
            lambda client: client.refresh(
                request.database,
                request.collection,
                request.external_source,
                request.external_spec,
            ),
            retry_if=lambda error: error.reason == "rate_limited",
        )
    except ApiError as error:
        if error.reason == REFRESH_ACTIVE_REASON:
            raise _already_running(request, cluster, upstream, error) from None
        raise CommandError(f"{where}: refresh refused: {explain(error)}") from None
    except KeyboardInterrupt:
        quoted = shlex.quote(request.config_path)
        raise CommandError(
            "interrupted while asking for the refresh; it may have started",
            EXIT_INTERRUPTED,
            [
                f"check with: {PROGRAM} jobs list --config {quoted} --cluster "
                f"{shlex.quote(cluster.name)} --kind {REFRESH.name} --collection "
                f"{shlex.quote(request.collection)}"
            ],
        ) from None
    console.line(str(job_id))
    if not request.wait:
        return EXIT_OK
    watched = WaitRequest(
        request.config_path, cluster.name, job_id, request.timeout, request.interval
    )
    return run_wait(watched, config, upstream, console)


def _already_running(
    request: RefreshRequest, cluster: ClusterConfig, upstream: Upstream, error: ApiError
) -> CommandError:
    """Name the running job so the operator can watch it instead of starting another."""
    where = f"{cluster.name}/{request.database} {request.collection}"
    try:
        jobs: tuple[RefreshJob, ...] = upstream.call(
            cluster, lambda client: client.list_refresh_jobs(request.database, request.collection)
        ).jobs
    except ApiError:
        jobs = ()
    running = [job for job in jobs if not job.finished and job.collection == request.collection]
    if not running:
        return CommandError(f"{where}: refresh refused: one is already running ({error.message})")
    job = max(running, key=lambda job: (job.start_time or 0.0, job.job_id))
    watch = (
        f"{PROGRAM} jobs wait --config {shlex.quote(request.config_path)} "
        f"--cluster {shlex.quote(cluster.name)} {job.job_id}"
    )
    return CommandError(
        f"{where}: refresh refused: job {job.job_id} is already running "
        f"({job.state} {percent_text(job.progress_ratio)}); watch it with: {watch}"
    )
