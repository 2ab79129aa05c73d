"""``jobs wait``: follow a refresh job until it finishes, and exit by how it ended.

Waiting never touches the job: Ctrl-C (130) and ``--timeout`` (3) stop the watching, the
refresh keeps running, and the last lines say how to resume. A temporary failure while waiting
(a timeout, a 5xx, a rate-limited answer) is shown and the next look is the retry, so a short
outage does not end a two-hour wait; anything else (auth, an unknown job) ends it at once.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config.durations import format_duration
from ..config.loader import ClusterConfig, Config
from ..kinds.refresh import REFRESH
from ..upstream.client import ApiError
from ..upstream.records import RefreshJob
from ..upstream.retry import is_temporary
from . import arguments
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT, PROGRAM, CommandError
from .terminal import Console, ProgressBar, ProgressLines, ProgressView, explain, percent_text
from .upstream import Upstream, find_cluster, is_not_found, not_found_line


@dataclass(frozen=True)
class WaitRequest:
    config_path: str
    cluster: str
    job_id: int
    timeout: float
    interval: float


def wait_request(args: argparse.Namespace) -> WaitRequest:
    timeout, interval = arguments.wait_timing(args)
    return WaitRequest(
        config_path=args.config,
        cluster=args.cluster,
        job_id=int(arguments.job_id(args.job_id, REFRESH.name)),
        timeout=timeout,
        interval=interval,
    )


def resume_hints(config_path: str, cluster: str, job_id: int) -> list[str]:
    """The commands that pick up where an interrupted or timed-out wait left off."""
    where = f"--config {shlex.quote(config_path)} --cluster {shlex.quote(cluster)} {job_id}"
    return [
        f"resume watching with: {PROGRAM} jobs wait {where}",
        f"or look once with: {PROGRAM} jobs describe {where}",
    ]


class WaitTimeout(Exception):
    """``--timeout`` passed; ``job`` is the last look at the job, if any succeeded."""

    def __init__(self, job: RefreshJob | None) -> None:
        super().__init__("timed out")
        self.job = job


def wait_for_refresh(
    upstream: Upstream,
    cluster: ClusterConfig,
    job_id: int,
    timeout: float,
    interval: float,
    view: ProgressView,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RefreshJob:
    """Describe the job every ``interval`` (under the limiter) until it finishes.

    A temporary failure (timeout, 5xx, rate limited) is shown and the next look is the retry;
    anything else (auth, job not found) is raised. Raises ``WaitTimeout`` after ``timeout``.
    """
    started = clock()
    deadline = started + timeout
    next_look = started
    last: RefreshJob | None = None
    while True:
        now = clock()
        if now >= next_look:
            next_look = now + interval
            try:
                job = upstream.call(
                    cluster, lambda client: client.describe_refresh_job(job_id), retries=0
                )
            except ApiError as error:
                if not is_temporary(error):
                    raise
                view.problem(error, clock() - started)
            else:
                last = job
                view.update(job, clock() - started)
                if job.finished:
                    return job
        now = clock()
        if now >= deadline:
            raise WaitTimeout(last)
        pause = min(next_look, deadline, now + view.redraw_seconds) - now
        sleep(max(0.0, pause))
        if clock() < next_look:
            view.tick(clock() - started)


def run_wait(request: WaitRequest, config: Config, upstream: Upstream, console: Console) -> int:
    cluster = find_cluster(config, request.cluster)
    view: ProgressView = (
        ProgressBar(console, request.job_id)
        if console.tty
        else ProgressLines(console, request.job_id)
    )
    hints = resume_hints(request.config_path, cluster.name, request.job_id)
    try:
        job = wait_for_refresh(
            upstream, cluster, request.job_id, request.timeout, request.interval, view
        )
    except WaitTimeout as timed_out:
        view.close()
        now = ""
        if timed_out.job is not None:
            job = timed_out.job
            now = f", still {job.state} {percent_text(job.progress_ratio)}"
        raise CommandError(
            f"gave up waiting after {format_duration(request.timeout)} (--timeout): "
            f"refresh job {request.job_id} keeps running{now}",
            EXIT_TIMEOUT,
            hints,
        ) from None
    except KeyboardInterrupt:
        view.close()
        raise CommandError(
            f"stopped waiting; refresh job {request.job_id} keeps running",
            EXIT_INTERRUPTED,
            hints,
        ) from None
    except ApiError as error:
        view.close()
        if is_not_found(error, REFRESH.name):
            raise CommandError(
                not_found_line(cluster, REFRESH.name, request.job_id, error)
            ) from None
        raise CommandError(
            f"{cluster.name}: describe refresh job {request.job_id}: {explain(error)}"
        ) from None
    view.close()
    if job.state == "RefreshFailed":
        raise CommandError(
            f"refresh job {request.job_id} failed: {job.reason or 'no reason given'}"
        )
    return EXIT_OK
