"""``jobs list``: every job of every configured target that matches the filters.

It asks the same targets the daemon polls (``snapshots.Target``: one cluster, database and job
kind), one list request each, concurrently up to ``max_concurrent_requests``. A target that
fails costs only itself: one line on stderr, exit 1, and the other targets are still listed.

    CLUSTER  DATABASE   KIND     COLLECTION  JOB ID              STATE          PROGRESS  ...
    prod     analytics  refresh  ext_books   449503830172898219  RefreshFailed  1%        ...
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config.loader import ClusterConfig, Config
from ..config.reader import suggest
from ..kinds import KINDS
from ..kinds.declaration import Job
from ..polling.targets import Target, databases_of
from ..upstream.client import ApiError, job_list_body
from .errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError
from .terminal import (
    REASON_COLUMN_WIDTH,
    Console,
    explain,
    local_time,
    percent,
    percent_text,
    rfc3339,
    rounded,
    short_duration,
    state_group,
    table,
    trim,
)
from .upstream import Upstream, find_cluster

KNOWN_STATES = tuple(dict.fromkeys(state for kind in KINDS for state in kind.states.listed))
STATE_GROUP_NAMES = ("pending", "running", "completed", "failed")
STATE_FILTERS = (*STATE_GROUP_NAMES, *KNOWN_STATES)
SUGGESTED_STATES = (
    *STATE_GROUP_NAMES,
    *(state for state in KNOWN_STATES if state.lower() not in STATE_GROUP_NAMES),
)
"""What a mistyped ``--state`` is compared with: a group wins over the state of the same name
(``failed`` rather than ``Failed``), since the suggestion ignores case."""
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


@dataclass(frozen=True)
class ListRequest:
    cluster: str | None
    database: str | None
    collection: str | None
    kind: str | None
    states: frozenset[str]
    output: str


def list_request(args: argparse.Namespace) -> ListRequest:
    """The filters, checked before the config is read: an unknown state is a usage error."""
    states: set[str] = set()
    for word in (args.state or "").split(","):
        word = word.strip()
        if not word:
            continue
        matches = [name for name in STATE_FILTERS if name.lower() == word.lower()]
        if not matches:
            raise CommandError(
                f"--state {word!r}: not a state{suggest(word, SUGGESTED_STATES)}; "
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


def target_label(target: Target) -> str:
    """``prod/analytics refresh``: how a failed target is named on stderr."""
    return f"{target.cluster.name}/{target.database} {target.kind}"


@dataclass(frozen=True)
class JobRow:
    """One listed job, of any kind, as the table and the JSON output show it."""

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
    def of(cls, target: Target, job: Job, now: float) -> JobRow:
        """Times as the listed record gives them (its kind's ``times``): the import list
        carries none, so an import's start, end and duration stay unknown."""
        times = target.job_kind.times
        return cls(
            cluster=target.cluster.name,
            database=target.database,
            kind=target.kind,
            collection=job.collection,
            job_id=str(job.job_id),
            state=job.state,
            progress_ratio=job.progress_ratio,
            start_time=times.started(job, None),
            end_time=times.ended(job, None),
            duration_seconds=times.duration(job, None, now),
            reason=job.reason,
        )

    def matches(self, request: ListRequest) -> bool:
        if request.collection is not None and self.collection != request.collection:
            return False
        if request.states:
            group = state_group(self.state)
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
            "durationSeconds": rounded(self.duration_seconds),
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
            percent_text(self.progress_ratio),
            local_time(self.start_time),
            short_duration(duration) if duration is not None else "-",
            trim(self.reason, REASON_COLUMN_WIDTH),
        )


def select_targets(
    config: Config, request: ListRequest, listed: Mapping[str, tuple[str, ...]] | None = None
) -> list[Target]:
    """Every configured (cluster, database, kind) the filters allow, in config order.

    Databases given as patterns are those ``listed`` (the cluster's own database list) matches,
    as the daemon's discovery does. Unlike the daemon's ``targets_of`` this ignores ``shard``: an
    operator asking about a cluster wants all of it, whichever replica polls it.
    """
    listed = listed or {}
    clusters = [find_cluster(config, request.cluster)] if request.cluster else list(config.clusters)

    def wanted(cluster: ClusterConfig) -> tuple[str, ...]:
        if request.database is None:
            return databases_of(cluster, listed.get(cluster.name, ()))
        named = request.database in cluster.database_names
        return (request.database,) if named or cluster.matches(request.database) else ()

    if request.database is not None and not any(wanted(cluster) for cluster in clusters):
        configured = tuple(sorted({name for cluster in clusters for name in cluster.databases}))
        where = f"cluster {clusters[0].name!r}" if request.cluster else config.source
        raise CommandError(
            f"--database {request.database!r}: not a configured database of {where}"
            f"{suggest(request.database, configured)}; configured: {', '.join(configured)}",
            EXIT_USAGE,
        )
    targets = [
        Target(cluster, database, kind)
        for cluster in clusters
        for database in wanted(cluster)
        for kind in cluster.jobs
        if request.kind in (None, kind)
    ]
    if not targets and request.kind is not None:
        raise CommandError(
            f"--kind {request.kind}: no selected cluster polls {request.kind} jobs "
            "(clusters[].jobs in the config)",
            EXIT_USAGE,
        )
    return targets


def discover(
    config: Config, request: ListRequest, upstream: Upstream, console: Console
) -> tuple[dict[str, tuple[str, ...]], int]:
    """List the databases of every selected cluster that names them by pattern; return the
    lists and how many clusters could not be listed (each said on one line)."""
    if request.database is not None:
        return {}, 0
    clusters = [find_cluster(config, request.cluster)] if request.cluster else list(config.clusters)
    listed: dict[str, tuple[str, ...]] = {}
    failed = 0
    for cluster in clusters:
        if not cluster.database_patterns:
            continue
        try:
            listed[cluster.name] = upstream.call(cluster, lambda client: client.list_databases())
        except ApiError as error:
            failed += 1
            patterns = ", ".join(map(repr, cluster.database_patterns))
            console.problem(f"{cluster.name}: databases {patterns}: {explain(error)}")
    return listed, failed


def list_target(upstream: Upstream, target: Target) -> list[JobRow]:
    """One target's jobs (every page), newest first by its kind's order (``ordering.listed``:
    refresh by start time, import by numeric job id)."""
    kind = target.job_kind
    body = job_list_body(target.database)
    listing = upstream.call(
        target.cluster,
        lambda client: client.list_jobs(
            kind.endpoints.list, body, kind.parse, paged=kind.endpoints.paged
        ),
    )
    jobs = sorted(listing.jobs, key=kind.ordering.listed, reverse=True)
    now = time.time()
    return [JobRow.of(target, job, now) for job in jobs]


def run_list(request: ListRequest, config: Config, upstream: Upstream, console: Console) -> int:
    listed, failed = discover(config, request, upstream, console)
    targets = select_targets(config, request, listed)
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(len(targets), config.max_concurrent_requests)),
        thread_name_prefix="jobs-list",
    )
    rows: list[JobRow] = []
    try:
        futures = [pool.submit(list_target, upstream, target) for target in targets]
        for target, future in zip(targets, futures, strict=True):
            try:
                rows.extend(row for row in future.result() if row.matches(request))
            except ApiError as error:
                failed += 1
                console.problem(f"{target_label(target)}: {explain(error)}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if request.output == "json":
        console.line(json.dumps([row.as_json() for row in rows], indent=2))
    elif rows:

        def paint(column: int, text: str) -> str:
            return console.paint(text, text) if column == STATE_COLUMN else text

        for line in table(LIST_HEADER, [row.cells() for row in rows], paint):
            console.line(line)
    elif not failed:
        console.err.write("No jobs found.\n")
    return EXIT_FAILURE if failed else EXIT_OK
