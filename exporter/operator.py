"""Operator commands: look at jobs and start refreshes from a shell, with the daemon's config.

    milvus-jobs-exporter jobs list --config config.yaml --state failed
    milvus-jobs-exporter jobs describe --config config.yaml --cluster prod 449503829274509301
    milvus-jobs-exporter refresh --config config.yaml --cluster prod --database default \\
        --collection ext_books --wait
    milvus-jobs-exporter jobs wait --config config.yaml --cluster prod 449503829274509301

They read the same config file and credentials as ``serve`` and go through the same client and
rate limiter (one sliding window per credential and API path, ``requests_per_second``). The
window lives in this process: it keeps one command within the limit, not a command and a
running daemon together, which is why a command makes few requests (one per target for
``jobs list``, one per ``--interval`` while waiting). Results go to stdout (a table, or JSON for
scripts); problems go to stderr as one line each, with every token scrubbed. Exit codes: 0 ok,
1 a runtime failure (a target failed, a job failed or was not found, a refresh was refused),
2 a usage or config error, 3 ``--wait`` timed out, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import difflib
import json
import os
import random
import shlex
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, TypeVar

import requests

from .client import REFRESH_DESCRIBE, ApiError, MilvusClient, RequestRecord
from .config import JOB_KINDS, ClusterConfig, Config, load_config
from .durations import format_duration, parse_duration
from .log import redactor
from .ratelimit import SlidingWindowLimiter
from .records import (
    IMPORT_EXTRA_STATES,
    IMPORT_STATES,
    REFRESH_STATES,
    ImportJob,
    RecordError,
    RefreshJob,
    parse_import_job,
    parse_refresh_job,
)
from .redact import redact
from .transport import new_session, tls_verify
from .watchdog import Watchdog

PROGRAM = "milvus-jobs-exporter"
COMMANDS = ("jobs", "refresh")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

NOT_FOUND_REASONS = frozenset({"api_1802", "api_1100"})
REFRESH_ACTIVE_REASON = "api_703"
DEFAULT_WAIT_TIMEOUT = "2h"
DEFAULT_WAIT_INTERVAL = "2s"
BAR_REDRAW_SECONDS = 0.25
REASON_COLUMN_WIDTH = 60
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0

STATE_GROUPS = {
    "RefreshPending": "pending",
    "RefreshInProgress": "running",
    "RefreshCompleted": "completed",
    "RefreshFailed": "failed",
    "Pending": "pending",
    "Importing": "running",
    "InProgress": "running",
    "Uncommitted": "running",
    "Committing": "running",
    "Completed": "completed",
    "Failed": "failed",
}
"""Each known state's kind-neutral group: what ``--state`` accepts besides the state itself."""
GROUP_COLOURS = {"failed": "31", "completed": "32", "running": "33"}
KNOWN_STATES = (*REFRESH_STATES, *IMPORT_STATES, *sorted(IMPORT_EXTRA_STATES))
STATE_FILTERS = ("pending", "running", "completed", "failed", *KNOWN_STATES)

T = TypeVar("T")


class CommandError(Exception):
    """A problem the user can act on: one line, an exit code, and optional hint lines."""

    def __init__(
        self, message: str, exit_code: int = EXIT_FAILURE, hints: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.hints = tuple(hints)


# -- arguments -------------------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``jobs list|describe|wait`` and ``refresh`` on the CLI's sub-command parser."""
    jobs = commands.add_parser("jobs", help="list, describe and wait for refresh and import jobs")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list", help="list the jobs of every configured target that matches the filters"
    )
    _add_config_argument(listing)
    listing.add_argument("--cluster", metavar="C", help="only this configured cluster")
    listing.add_argument("--database", metavar="D", help="only this configured database")
    listing.add_argument("--collection", metavar="X", help="only jobs of this collection")
    listing.add_argument("--kind", choices=JOB_KINDS, help="only refresh or only import jobs")
    listing.add_argument(
        "--state",
        metavar="S",
        help="only jobs in this state: pending, running, completed, failed, or an exact state "
        "(RefreshFailed, Importing, ...); comma-separated for several",
    )
    _add_output_argument(listing)

    describe = actions.add_parser("describe", help="show one job in detail")
    _add_config_argument(describe)
    _add_cluster_argument(describe)
    describe.add_argument("--kind", choices=JOB_KINDS, default="refresh", help="default: refresh")
    _add_output_argument(describe)
    describe.add_argument("job_id", metavar="JOB_ID")

    wait = actions.add_parser("wait", help="wait for an existing refresh job to finish")
    _add_config_argument(wait)
    _add_cluster_argument(wait)
    _add_wait_arguments(wait)
    wait.add_argument("job_id", metavar="JOB_ID")

    refresh = commands.add_parser(
        "refresh", help="start a refresh of an external collection and print its job id"
    )
    _add_config_argument(refresh)
    _add_cluster_argument(refresh)
    refresh.add_argument("--database", required=True, metavar="D")
    refresh.add_argument("--collection", required=True, metavar="X")
    refresh.add_argument(
        "--external-source", metavar="JSON", help="new source (JSON); needs --external-spec"
    )
    refresh.add_argument(
        "--external-spec", metavar="JSON", help="new spec (JSON); needs --external-source"
    )
    refresh.add_argument("--wait", action="store_true", help="wait until the refresh finishes")
    _add_wait_arguments(refresh)

    for parser in (listing, describe, wait, refresh):
        # The CLI configures logging for every command; these commands only log errors.
        parser.set_defaults(log_level="error", log_format=None)


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="YAML config file")


def _add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, metavar="C", help="a configured cluster")


def _add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("table", "json"), default="table")


def _add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        metavar="DURATION",
        help=f"stop waiting after this long, exit 3 (default {DEFAULT_WAIT_TIMEOUT})",
    )
    parser.add_argument(
        "--interval",
        metavar="DURATION",
        help=f"time between two looks at the job (default {DEFAULT_WAIT_INTERVAL})",
    )


# -- entry point -----------------------------------------------------------------------------


def run(
    args: argparse.Namespace,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one operator command; every user error ends here as lines on stderr and a code.

    A ``ConfigError`` is left to the CLI, which prints it the same way for every command.
    """
    console = Console(
        stdout or sys.stdout, stderr or sys.stderr, os.environ if environ is None else environ
    )
    try:
        command = _parse_command(args)
        config = load_config(args.config)
        console.secrets = config.secrets
        redactor.set_secrets(config.secrets)
        upstream = Upstream(config)
        try:
            return command(config, upstream, console)
        finally:
            upstream.close()
    except CommandError as error:
        console.problem(str(error))
        for hint in error.hints:
            console.problem(hint)
        return error.exit_code
    except KeyboardInterrupt:
        console.problem("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (``| head``) has gone: stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


Command = Callable[[Config, "Upstream", "Console"], int]


def _parse_command(args: argparse.Namespace) -> Command:
    """Check the arguments that need no config, and pick the command: nothing is sent yet."""
    if args.command == "refresh":
        request = _refresh_request(args)
        return lambda config, upstream, console: run_refresh(request, config, upstream, console)
    if args.jobs_command == "list":
        listing = _list_request(args)
        return lambda config, upstream, console: run_list(listing, config, upstream, console)
    if args.jobs_command == "describe":
        described = DescribeRequest(
            config_path=args.config,
            cluster=args.cluster,
            kind=args.kind,
            job_id=_job_id(args.job_id, args.kind),
            output=args.output,
        )
        return lambda config, upstream, console: run_describe(described, config, upstream, console)
    watched = WaitRequest(
        config_path=args.config,
        cluster=args.cluster,
        job_id=int(_job_id(args.job_id, "refresh")),
        timeout=_duration(args.timeout, DEFAULT_WAIT_TIMEOUT, "--timeout"),
        interval=_duration(args.interval, DEFAULT_WAIT_INTERVAL, "--interval"),
    )
    return lambda config, upstream, console: run_wait(watched, config, upstream, console)


def _job_id(text: str, kind: str) -> str:
    job_id = text.strip()
    if kind == "refresh" and not (job_id.isascii() and job_id.isdigit() and len(job_id) <= 19):
        raise CommandError(
            f"JOB_ID {text!r} is not a refresh job id (a number); "
            "for an import job add --kind import",
            EXIT_USAGE,
        )
    if not job_id:
        raise CommandError("JOB_ID is empty", EXIT_USAGE)
    return str(int(job_id)) if kind == "refresh" else job_id


def _duration(text: str | None, default: str, flag: str) -> float:
    try:
        seconds = parse_duration(text if text is not None else default)
    except ValueError as error:
        raise CommandError(f"{flag}: {error}", EXIT_USAGE) from None
    if seconds <= 0:
        raise CommandError(f"{flag}: must be longer than 0s", EXIT_USAGE)
    return seconds


# -- the upstream ------------------------------------------------------------------------------


class Upstream:
    """The configured clusters, reached with the daemon's credentials, limits and retries."""

    def __init__(
        self,
        config: Config,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.limiter = SlidingWindowLimiter(config.requests_per_second)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._sessions: list[requests.Session] = []
        self._clients: dict[str, MilvusClient] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog(name="operator-watchdog")

    def client(self, cluster: ClusterConfig) -> MilvusClient:
        """One client (and connection pool) per cluster, shared by the threads of ``jobs list``."""
        with self._lock:
            return self._client_locked(cluster)

    def _client_locked(self, cluster: ClusterConfig) -> MilvusClient:
        client = self._clients.get(cluster.name)
        if client is None:
            session = new_session(self.config.max_concurrent_requests)
            self._sessions.append(session)
            key = cluster.credential_id

            def gate(api: str) -> None:
                self.limiter.acquire((key, api))

            def observe(record: RequestRecord) -> None:
                if record.outcome == "rate_limited":
                    self.limiter.pause((key, record.api), 1.0)

            client = MilvusClient(
                cluster.endpoint,
                cluster.token,
                session,
                self.config.request_timeout,
                gate=gate,
                observe=observe,
                max_response_bytes=self.config.max_response_bytes,
                verify=tls_verify(cluster),
                watchdog=self._watchdog,
                secrets=self.config.secrets,
            )
            self._clients[cluster.name] = client
        return client

    def call(
        self,
        cluster: ClusterConfig,
        action: Callable[[MilvusClient], T],
        *,
        retry_if: Callable[[ApiError], bool] = lambda error: error.temporary,
        retries: int | None = None,
    ) -> T:
        """``action(client)``, retried with jittered exponential backoff while ``retry_if``."""
        limit = self.config.max_retries if retries is None else retries
        attempts = 0
        while True:
            try:
                return action(self.client(cluster))
            except ApiError as error:
                attempts += 1
                if attempts > limit or not retry_if(error):
                    raise
                backoff = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
                self._sleep(max(backoff * self._rng.uniform(0.5, 1.0), error.retry_after or 0.0))

    def close(self) -> None:
        self._watchdog.stop()
        for session in self._sessions:
            session.close()


def find_cluster(config: Config, name: str) -> ClusterConfig:
    for cluster in config.clusters:
        if cluster.name == name:
            return cluster
    names = [cluster.name for cluster in config.clusters]
    raise CommandError(
        f"--cluster {name!r}: no such cluster in {config.source}{_suggestion(name, names)}; "
        f"configured: {', '.join(names)}",
        EXIT_USAGE,
    )


def _suggestion(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _explain(error: ApiError) -> str:
    return f"{error.reason} ({error.message})"


# -- output ----------------------------------------------------------------------------------


class Console:
    """stdout for results, stderr for problems; every token scrubbed from both."""

    def __init__(self, out: TextIO, err: TextIO, environ: Mapping[str, str]) -> None:
        self.out = out
        self.err = err
        self.environ = environ
        self.secrets: tuple[str, ...] = ()

    @property
    def tty(self) -> bool:
        try:
            return self.out.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def colour(self) -> bool:
        """ANSI colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
        return self.tty and not self.environ.get("NO_COLOR") and self.environ.get("TERM") != "dumb"

    @property
    def unicode(self) -> bool:
        encoding = (getattr(self.out, "encoding", None) or "").lower().replace("-", "")
        return encoding == "utf8"

    def width(self) -> int:
        columns = self.environ.get("COLUMNS", "")
        if columns.isascii() and columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(self.out.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            return 80

    def paint(self, text: str, state: str) -> str:
        code = GROUP_COLOURS.get(STATE_GROUPS.get(state, ""))
        if not code or not self.colour:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def write(self, text: str) -> None:
        self.out.write(redact(text, *self.secrets))
        self.out.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def problem(self, text: str) -> None:
        self.err.write(f"{PROGRAM}: {redact(text, *self.secrets)}\n")
        self.err.flush()


def short_duration(seconds: float) -> str:
    """``45s``, ``12m30s``, ``3h05m``, ``2d04h``: readable at a glance, sortable by eye."""
    total = int(max(0.0, seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def rfc3339(epoch_seconds: float | None) -> str | None:
    """UTC to the second (``2026-11-23T10:00:05Z``), the form ``jq``'s fromdateiso8601 reads."""
    if epoch_seconds is None:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(int(epoch_seconds), tz=datetime.timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(epoch_seconds: float | None) -> str:
    if epoch_seconds is None:
        return "-"
    try:
        return datetime.datetime.fromtimestamp(int(epoch_seconds)).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):
        return "?"


def percent(ratio: float) -> int | float:
    """Progress 0..100 as the server sent it: an int unless it really had a fraction."""
    value = round(ratio * 100, 2)
    return int(value) if value.is_integer() else value


def _percent_text(ratio: float) -> str:
    return f"{int(ratio * 100 + 1e-9)}%"


def _trim(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    paint: Callable[[int, str], str] = lambda column, text: text,
) -> list[str]:
    """Left-aligned columns two spaces apart; ``paint`` may colour a cell after padding."""
    widths = [len(title) for title in header]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(title.ljust(width) for title, width in zip(header, widths, strict=True)).rstrip()
    ]
    for row in rows:
        cells = []
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padding = " " * (width - len(cell)) if column < len(row) - 1 else ""
            cells.append(paint(column, cell) + padding)
        lines.append("  ".join(cells).rstrip())
    return lines


# -- jobs list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    cluster: str | None
    database: str | None
    collection: str | None
    kind: str | None
    states: frozenset[str]
    output: str


def _list_request(args: argparse.Namespace) -> ListRequest:
    states: set[str] = set()
    for word in (args.state or "").split(","):
        word = word.strip()
        if not word:
            continue
        matches = [name for name in STATE_FILTERS if name.lower() == word.lower()]
        if not matches:
            raise CommandError(
                f"--state {word!r}: not a state{_suggestion(word, STATE_FILTERS)}; "
                "use pending, running, completed, failed or a state such as RefreshFailed",
                EXIT_USAGE,
            )
        states.add(matches[0].lower())
    if args.state is not None and not states:
        raise CommandError("--state: give at least one state", EXIT_USAGE)
    return ListRequest(
        cluster=args.cluster,
        database=args.database,
        collection=args.collection,
        kind=args.kind,
        states=frozenset(states),
        output=args.output,
    )


@dataclass(frozen=True)
class Target:
    cluster: ClusterConfig
    database: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.cluster.name}/{self.database} {self.kind}"


@dataclass(frozen=True)
class JobRow:
    """One listed job, either kind, as the table and the JSON output show it."""

    cluster: str
    database: str
    kind: str
    collection: str
    job_id: str
    state: str
    progress_ratio: float
    start_time: float | None
    end_time: float | None
    duration_seconds: float | None
    reason: str

    @classmethod
    def of_refresh(cls, target: Target, job: RefreshJob, now: float) -> JobRow:
        return cls(
            cluster=target.cluster.name,
            database=target.database,
            kind="refresh",
            collection=job.collection,
            job_id=str(job.job_id),
            state=job.state,
            progress_ratio=job.progress_ratio,
            start_time=job.start_time,
            end_time=job.end_time,
            duration_seconds=refresh_duration(job, now),
            reason=job.reason,
        )

    @classmethod
    def of_import(cls, target: Target, job: ImportJob) -> JobRow:
        return cls(
            cluster=target.cluster.name,
            database=target.database,
            kind="import",
            collection=job.collection,
            job_id=job.job_id,
            state=job.state,
            progress_ratio=job.progress_ratio,
            start_time=None,
            end_time=None,
            duration_seconds=None,
            reason=job.reason,
        )

    def matches(self, request: ListRequest) -> bool:
        if request.collection is not None and self.collection != request.collection:
            return False
        if request.states:
            group = STATE_GROUPS.get(self.state, "")
            return self.state.lower() in request.states or group in request.states
        return True

    def as_json(self) -> dict[str, Any]:
        """Stable keys for scripts; ``jobId`` a string so int64 ids survive any JSON reader."""
        return {
            "cluster": self.cluster,
            "database": self.database,
            "kind": self.kind,
            "collection": self.collection,
            "jobId": self.job_id,
            "state": self.state,
            "progress": percent(self.progress_ratio),
            "startTime": rfc3339(self.start_time),
            "endTime": rfc3339(self.end_time),
            "durationSeconds": _rounded(self.duration_seconds),
            "reason": self.reason,
        }

    def cells(self) -> tuple[str, ...]:
        duration = self.duration_seconds
        return (
            self.cluster,
            self.database,
            self.kind,
            self.collection,
            self.job_id,
            self.state,
            _percent_text(self.progress_ratio),
            local_time(self.start_time),
            short_duration(duration) if duration is not None else "-",
            _trim(self.reason, REASON_COLUMN_WIDTH),
        )


LIST_HEADER = (
    "CLUSTER",
    "DATABASE",
    "KIND",
    "COLLECTION",
    "JOB ID",
    "STATE",
    "PROGRESS",
    "STARTED",
    "DURATION",
    "REASON",
)
STATE_COLUMN = LIST_HEADER.index("STATE")


def refresh_duration(job: RefreshJob, now: float) -> float | None:
    """End minus start once finished; time so far while running (never below zero)."""
    if job.start_time is None:
        return None
    end = job.end_time if job.end_time is not None else now
    return max(0.0, end - job.start_time)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def select_targets(config: Config, request: ListRequest) -> list[Target]:
    """Every configured (cluster, database, kind) the filters allow, in config order."""
    clusters = [find_cluster(config, request.cluster)] if request.cluster else list(config.clusters)
    if request.database is not None:
        databases = sorted({name for cluster in clusters for name in cluster.databases})
        if request.database not in databases:
            where = f"cluster {clusters[0].name!r}" if request.cluster else config.source
            raise CommandError(
                f"--database {request.database!r}: not a configured database of {where}"
                f"{_suggestion(request.database, databases)}; configured: {', '.join(databases)}",
                EXIT_USAGE,
            )
    targets = [
        Target(cluster, database, kind)
        for cluster in clusters
        for database in cluster.databases
        if request.database in (None, database)
        for kind in cluster.jobs
        if request.kind in (None, kind)
    ]
    if not targets:
        raise CommandError(
            f"--kind {request.kind}: no selected cluster polls {request.kind} jobs "
            "(clusters[].jobs in the config)",
            EXIT_USAGE,
        )
    return targets


def list_target(upstream: Upstream, target: Target) -> list[JobRow]:
    """One target's jobs, newest first: refresh by start time, import by numeric job id."""
    cluster, database = target.cluster, target.database
    if target.kind == "refresh":
        refresh_jobs = list(
            upstream.call(cluster, lambda client: client.list_refresh_jobs(database)).jobs
        )
        now = time.time()
        refresh_jobs.sort(
            key=lambda job: (job.start_time if job.start_time is not None else -1.0, job.job_id),
            reverse=True,
        )
        return [JobRow.of_refresh(target, job, now) for job in refresh_jobs]
    import_jobs = list(
        upstream.call(cluster, lambda client: client.list_import_jobs(database)).jobs
    )
    import_jobs.sort(key=lambda job: job.order_key, reverse=True)
    return [JobRow.of_import(target, job) for job in import_jobs]


def run_list(request: ListRequest, config: Config, upstream: Upstream, console: Console) -> int:
    targets = select_targets(config, request)
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(len(targets), config.max_concurrent_requests)),
        thread_name_prefix="jobs-list",
    )
    rows: list[JobRow] = []
    failed = 0
    try:
        futures = [pool.submit(list_target, upstream, target) for target in targets]
        for target, future in zip(targets, futures, strict=True):
            try:
                rows.extend(row for row in future.result() if row.matches(request))
            except ApiError as error:
                failed += 1
                console.problem(f"{target.label}: {_explain(error)}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if request.output == "json":
        console.line(json.dumps([row.as_json() for row in rows], indent=2))
    elif rows:

        def paint(column: int, text: str) -> str:
            return console.paint(text, text) if column == STATE_COLUMN else text

        for line in _table(LIST_HEADER, [row.cells() for row in rows], paint):
            console.line(line)
    elif not failed:
        console.err.write("No jobs found.\n")
    return EXIT_FAILURE if failed else EXIT_OK


# -- jobs describe -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DescribeRequest:
    config_path: str
    cluster: str
    kind: str
    job_id: str
    output: str


@dataclass(frozen=True)
class RefreshDetail:
    job: RefreshJob
    external_source: str


def _read_refresh_detail(data: Any) -> RefreshDetail:
    if not isinstance(data, dict):
        raise ApiError("bad_response", "describe answer has no job object")
    try:
        job = parse_refresh_job(data)
    except RecordError as error:
        raise ApiError("bad_response", f"job record: {error}") from None
    source = data.get("externalSource")
    return RefreshDetail(job, source if isinstance(source, str) else "")


def run_describe(
    request: DescribeRequest, config: Config, upstream: Upstream, console: Console
) -> int:
    cluster = find_cluster(config, request.cluster)
    try:
        if request.kind == "refresh":
            detail = upstream.call(
                cluster,
                lambda client: client.call(
                    REFRESH_DESCRIBE, {"jobId": int(request.job_id)}, _read_refresh_detail
                ),
            )
            _show_refresh(cluster, detail, console, request.output)
        else:
            data = upstream.call(cluster, lambda client: client.describe_import_job(request.job_id))
            _show_import(cluster, data, console, request.output)
    except ApiError as error:
        if error.reason in NOT_FOUND_REASONS:
            raise CommandError(
                f"{cluster.name}: {request.kind} job {request.job_id} not found ({error.message})"
            ) from None
        raise CommandError(
            f"{cluster.name}: describe {request.kind} job: {_explain(error)}"
        ) from None
    return EXIT_OK


def _show_refresh(
    cluster: ClusterConfig, detail: RefreshDetail, console: Console, output: str
) -> None:
    job = detail.job
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
            "durationSeconds": _rounded(duration),
            "reason": job.reason,
            "externalSource": detail.external_source,
        }
        console.line(json.dumps(document, indent=2))
        return
    shown_duration = "-"
    if duration is not None:
        shown_duration = short_duration(duration) + ("" if job.finished else " so far")
    _show_fields(
        console,
        [
            ("Cluster", cluster.name),
            ("Kind", "refresh"),
            ("Job ID", str(job.job_id)),
            ("Collection", job.collection),
            ("State", console.paint(job.state, job.state)),
            ("Progress", _percent_text(job.progress_ratio)),
            ("Started", _both_times(job.start_time)),
            ("Ended", _both_times(job.end_time)),
            ("Duration", shown_duration),
            ("Source", detail.external_source or "-"),
            ("Reason", job.reason or "-"),
        ],
    )


def _both_times(epoch_seconds: float | None) -> str:
    if epoch_seconds is None:
        return "-"
    return f"{local_time(epoch_seconds)} ({rfc3339(epoch_seconds)})"


def _show_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in fields) + 2
    for name, text in fields:
        console.line(f"{name + ':':<{width}}{text}")


def _count(value: Any) -> int | None:
    """A row count or a byte size sent as a number or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip()[:19])
    return None


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # unreachable: the loop returns at TiB


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@dataclass(frozen=True)
class ImportFileDetail:
    """One file of an import job, from ``details[]`` of ``import/describe``."""

    file_name: str
    file_size: int | None
    state: str
    progress: int | None
    imported_rows: int | None
    total_rows: int | None
    complete_time: str | None
    reason: str

    @classmethod
    def parse(cls, item: dict[str, Any]) -> ImportFileDetail:
        return cls(
            file_name=_text(item.get("fileName")),
            file_size=_count(item.get("fileSize")),
            state=_text(item.get("state")),
            progress=_count(item.get("progress")),
            imported_rows=_count(item.get("importedRows")),
            total_rows=_count(item.get("totalRows")),
            complete_time=_text(item.get("completeTime")) or None,
            reason=_text(item.get("reason")),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "fileName": self.file_name,
            "fileSize": self.file_size,
            "state": self.state,
            "progress": self.progress,
            "importedRows": self.imported_rows,
            "totalRows": self.total_rows,
            "completeTime": self.complete_time,
            "reason": self.reason,
        }

    def cells(self, with_reason: bool) -> list[str]:
        row = [
            self.file_name or "-",
            self.state or "-",
            f"{self.progress}%" if self.progress is not None else "-",
            f"{_number(self.imported_rows)}/{_number(self.total_rows)}",
            _size(self.file_size),
            self.complete_time or "-",
        ]
        if with_reason:
            row.append(_trim(self.reason, REASON_COLUMN_WIDTH))
        return row


@dataclass(frozen=True)
class ImportDetail:
    """An import job as ``import/describe`` answers it: rows, bytes, times and files.

    Read liberally (counts as numbers or digit strings, times kept as the RFC 3339 text the
    server sent, ``completeTime`` empty until done) because only a person reads it.
    """

    job: ImportJob
    imported_rows: int | None
    total_rows: int | None
    file_size: int | None
    create_time: str | None
    complete_time: str | None
    files: tuple[ImportFileDetail, ...]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ImportDetail:
        try:
            job = parse_import_job(data)
        except RecordError as error:
            raise ApiError("bad_response", f"job record: {error}") from None
        details = data.get("details")
        return cls(
            job=job,
            imported_rows=_count(data.get("importedRows")),
            total_rows=_count(data.get("totalRows")),
            file_size=_count(data.get("fileSize")),
            create_time=_text(data.get("createTime")) or None,
            complete_time=_text(data.get("completeTime")) or None,
            files=tuple(
                ImportFileDetail.parse(item)
                for item in (details if isinstance(details, list) else [])
                if isinstance(item, dict)
            ),
        )

    def as_json(self, cluster: str) -> dict[str, Any]:
        return {
            "cluster": cluster,
            "kind": "import",
            "collection": self.job.collection,
            "jobId": self.job.job_id,
            "state": self.job.state,
            "progress": percent(self.job.progress_ratio),
            "reason": self.job.reason,
            "importedRows": self.imported_rows,
            "totalRows": self.total_rows,
            "fileSize": self.file_size,
            "createTime": self.create_time,
            "completeTime": self.complete_time,
            "details": [file.as_json() for file in self.files],
        }


def _show_import(
    cluster: ClusterConfig, data: dict[str, Any], console: Console, output: str
) -> None:
    detail = ImportDetail.parse(data)
    if output == "json":
        console.line(json.dumps(detail.as_json(cluster.name), indent=2))
        return
    job, size = detail.job, detail.file_size
    _show_fields(
        console,
        [
            ("Cluster", cluster.name),
            ("Kind", "import"),
            ("Job ID", job.job_id),
            ("Collection", job.collection),
            ("State", console.paint(job.state, job.state)),
            ("Progress", _percent_text(job.progress_ratio)),
            ("Rows", f"{_number(detail.imported_rows)} of {_number(detail.total_rows)} imported"),
            ("File size", _size(size) + (f" ({size:,} bytes)" if size is not None else "")),
            ("Created", detail.create_time or "-"),
            ("Completed", detail.complete_time or "-"),
            ("Reason", job.reason or "-"),
        ],
    )
    if not detail.files:
        return
    with_reason = any(file.reason for file in detail.files)
    header = ["FILE", "STATE", "PROGRESS", "ROWS", "SIZE", "COMPLETED"]
    header += ["REASON"] if with_reason else []
    console.line()

    def paint(column: int, text: str) -> str:
        return console.paint(text, text) if column == 1 else text

    rows = [file.cells(with_reason) for file in detail.files]
    for line in _table(header, rows, paint):
        console.line(line)


# -- refresh and jobs wait -------------------------------------------------------------------


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


@dataclass(frozen=True)
class WaitRequest:
    config_path: str
    cluster: str
    job_id: int
    timeout: float
    interval: float


def _refresh_request(args: argparse.Namespace) -> RefreshRequest:
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
        if text is None:
            continue
        try:
            json.loads(text)
        except ValueError as error:
            raise CommandError(f"refresh: {flag} is not valid JSON: {error}", EXIT_USAGE) from None
    if not args.wait and (args.timeout is not None or args.interval is not None):
        raise CommandError("refresh: --timeout and --interval need --wait", EXIT_USAGE)
    if not args.database.strip() or not args.collection.strip():
        raise CommandError("refresh: --database and --collection must not be empty", EXIT_USAGE)
    return RefreshRequest(
        config_path=args.config,
        cluster=args.cluster,
        database=args.database,
        collection=args.collection,
        external_source=source,
        external_spec=spec,
        wait=args.wait,
        timeout=_duration(args.timeout, DEFAULT_WAIT_TIMEOUT, "--timeout"),
        interval=_duration(args.interval, DEFAULT_WAIT_INTERVAL, "--interval"),
    )


def resume_hints(config_path: str, cluster: str, job_id: int) -> list[str]:
    where = f"--config {shlex.quote(config_path)} --cluster {shlex.quote(cluster)} {job_id}"
    return [
        f"resume watching with: {PROGRAM} jobs wait {where}",
        f"or look once with: {PROGRAM} jobs describe {where}",
    ]


def run_refresh(
    request: RefreshRequest, config: Config, upstream: Upstream, console: Console
) -> int:
    cluster = find_cluster(config, request.cluster)
    where = f"{cluster.name}/{request.database} {request.collection}"
    try:
        # Only a rate-limited request is certain not to have started a refresh: retry only that.
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
        raise CommandError(f"{where}: refresh refused: {_explain(error)}") from None
    except KeyboardInterrupt:
        quoted = shlex.quote(request.config_path)
        raise CommandError(
            "interrupted while asking for the refresh; it may have started",
            EXIT_INTERRUPTED,
            [
                f"check with: {PROGRAM} jobs list --config {quoted} --cluster "
                f"{shlex.quote(cluster.name)} --kind refresh --collection "
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
        f"({job.state} {_percent_text(job.progress_ratio)}); watch it with: {watch}"
    )


class ProgressView(Protocol):
    """How waiting looks: a bar redrawn in place on a terminal, plain lines elsewhere."""

    redraw_seconds: float

    def update(self, job: RefreshJob, elapsed: float) -> None: ...

    def problem(self, error: ApiError, elapsed: float) -> None: ...

    def tick(self, elapsed: float) -> None: ...

    def close(self) -> None: ...


class ProgressLines:
    """One line per change of state or progress, for pipes, CI logs and ``| tee``.

    2026-11-23T10:00:05Z job 449503829274509301 RefreshInProgress 42% elapsed 1m05s
    """

    redraw_seconds = float("inf")

    def __init__(
        self, console: Console, job_id: int, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._console = console
        self._job_id = job_id
        self._wall_clock = wall_clock
        self._last: tuple[str, str] | None = None
        self._last_problem = ""

    def update(self, job: RefreshJob, elapsed: float) -> None:
        self._last_problem = ""
        shown = (job.state, _percent_text(job.progress_ratio))
        if shown == self._last:
            return
        self._last = shown
        self._say(f"{shown[0]} {shown[1]} elapsed {short_duration(elapsed)}")

    def problem(self, error: ApiError, elapsed: float) -> None:
        if error.reason == self._last_problem:
            return
        self._last_problem = error.reason
        self._say(f"describe failed: {_explain(error)}; still waiting")

    def tick(self, elapsed: float) -> None:
        del elapsed

    def close(self) -> None:
        pass

    def _say(self, text: str) -> None:
        self._console.line(f"{rfc3339(self._wall_clock())} job {self._job_id} {text}")


class ProgressBar:
    """A one-line bar redrawn in place with ``\\r``, sized to the terminal at every draw.

    job 449503829274509301 [████████░░░░░░░░░░░░]  42%  RefreshInProgress  elapsed 1m05s
    """

    redraw_seconds = BAR_REDRAW_SECONDS

    def __init__(self, console: Console, job_id: int) -> None:
        self._console = console
        self._job_id = job_id
        self._job: RefreshJob | None = None
        self._note = ""
        self._drawn = False

    def update(self, job: RefreshJob, elapsed: float) -> None:
        self._job, self._note = job, ""
        self._draw(elapsed)

    def problem(self, error: ApiError, elapsed: float) -> None:
        self._note = f"last look failed: {error.reason}"
        self._draw(elapsed)

    def tick(self, elapsed: float) -> None:
        self._draw(elapsed)

    def close(self) -> None:
        if self._drawn:
            self._console.write("\n")
            self._drawn = False

    def _draw(self, elapsed: float) -> None:
        width = max(20, self._console.width() - 1)  # the last column would wrap on some terminals
        job = self._job
        state = job.state if job else "waiting"
        ratio = job.progress_ratio if job else 0.0
        label = f"job {self._job_id} "
        tail = f" {_percent_text(ratio):>4}  {state}  elapsed {short_duration(elapsed)}"
        if self._note:
            tail += f"  ({self._note})"
        # The bar is sized for the longest tail a running job shows, so it keeps its length
        # while the state and the elapsed time change under it.
        reserved = max(len(tail), len(" 100%  RefreshInProgress  elapsed 59m59s"))
        room = width - len(label) - reserved - 2
        if room < 10:
            label, room = "", width - reserved - 2
        bar = ""
        if room >= 10:
            room = min(room, 40)
            full, empty = ("█", "░") if self._console.unicode else ("#", "-")
            filled = int(room * min(max(ratio, 0.0), 1.0))
            bar = "[" + full * filled + empty * (room - filled) + "]"
        plain = label + bar + tail
        if len(plain) > width:
            text = plain[:width]
        else:
            text = label + bar + tail.replace(state, self._console.paint(state, state), 1)
        self._console.write("\r" + text + ("\x1b[K" if self._console.tty else ""))
        self._drawn = True


class WaitTimeout(Exception):
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
                if not error.temporary:
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
            now = f", still {job.state} {_percent_text(job.progress_ratio)}"
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
        if error.reason in NOT_FOUND_REASONS:
            raise CommandError(
                f"{cluster.name}: refresh job {request.job_id} not found ({error.message})"
            ) from None
        raise CommandError(
            f"{cluster.name}: describe refresh job {request.job_id}: {_explain(error)}"
        ) from None
    view.close()
    if job.state == "RefreshFailed":
        raise CommandError(
            f"refresh job {request.job_id} failed: {job.reason or 'no reason given'}"
        )
    return EXIT_OK
