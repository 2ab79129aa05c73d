"""From poll snapshots to metric families: the rules of what is exported.

No I/O and no threads: ``MetricsModel.update`` takes one ``CycleResult`` and the time, and returns
the complete list of families for that moment. It keeps only what the rules need across cycles:
the last good snapshot of each target (its series keep their last values for as long as the
target is down, so an outage pages as an outage and resolves no job alert), the newest success
and failure of every collection (``history.py``), counters, histogram buckets and which finished
jobs were already counted. ``saved_state`` / ``restore`` carry the memory across a restart.

Sample output (abridged)::

    milvus_refresh_job_progress_ratio{milvus_cluster="prod",database="default",collection="ext_books",job_id="449503829274509311"} 0.42
    milvus_refresh_job_state{...,job_id="449503829274509311",state="RefreshInProgress"} 1.0
    milvus_refresh_jobs{milvus_cluster="prod",database="default",collection="ext_books",state="RefreshFailed"} 0.0
    milvus_jobs_exporter_target_up{milvus_cluster="prod",database="default",kind="refresh"} 1.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from . import __version__
from .families import (
    HistogramState,
    MetricFamily,
    escape_label_value,
    histogram_family,
    render_label_pairs,
)
from .history import RefreshHistory
from .records import IMPORT_STATES, REFRESH_STATES, ImportJob, ImportJobDetails, RefreshJob
from .snapshots import CycleResult, Snapshot, Target, TargetKey
from .state import SavedState

REFRESH_DURATION_BUCKETS = (
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)
API_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
POLLED = "Polled from the Milvus job API at the last poll, not live."


@dataclass
class _TargetState:
    target: Target
    up: bool = False
    reason: str = ""
    last_good: Snapshot | None = None
    last_success_time: float | None = None
    accounted_finished: set[tuple[str, str]] | None = None
    """Finished jobs already seen (collection, job id); None until the first good poll."""
    import_details: dict[str, ImportJobDetails] = field(default_factory=dict)
    """Latest ``import/describe`` answer per listed import job id."""
    accounted_imports: set[str] | None = None
    """Import jobs whose finish was already seen (or that were finished at the first poll)."""
    import_first_seen: dict[str, float] = field(default_factory=dict)
    """When each listed import job was first seen: what orders imports without a create time."""


@dataclass
class _Tracked:
    """A job that may get per-job series, with what the cardinality guard sorts by."""

    target: Target
    job: RefreshJob | ImportJob
    finished: bool
    age_key: float
    polled_at: float


@dataclass
class _Families:
    refresh_progress: MetricFamily
    refresh_state: MetricFamily
    refresh_start: MetricFamily
    refresh_end: MetricFamily
    refresh_duration: MetricFamily
    refresh_failure: MetricFamily
    refresh_jobs: MetricFamily
    refresh_last_success: MetricFamily
    refresh_last_failure: MetricFamily
    refresh_last_failure_info: MetricFamily
    import_progress: MetricFamily
    import_state: MetricFamily
    import_failure: MetricFamily
    import_jobs: MetricFamily
    import_imported_rows: MetricFamily
    import_total_rows: MetricFamily
    import_file_size: MetricFamily
    import_create: MetricFamily
    import_complete: MetricFamily
    import_duration: MetricFamily
    extra: list[MetricFamily] = field(default_factory=list)


class MetricsModel:
    """Keeps the cross-cycle state and builds the families for each cycle."""

    def __init__(
        self,
        max_tracked_jobs: int,
        poll_interval: float,
        *,
        max_tracked_collections: int = 10_000,
        collection_retention: float = 7 * 86_400.0,
    ) -> None:
        self.max_tracked_jobs = max_tracked_jobs
        self.poll_interval = poll_interval
        self._targets: dict[TargetKey, _TargetState] = {}
        self._history = RefreshHistory(max_tracked_collections, collection_retention)
        self._restored = SavedState()
        """Counted jobs from a state file, handed to each target when it first appears."""
        self._poll_errors: Counter[tuple[str, str, str, str]] = Counter()
        self._skipped_records: Counter[tuple[str, str, str, str]] = Counter()
        self._api_requests: Counter[tuple[str, str, str]] = Counter()
        self._api_latency: dict[tuple[str, str], HistogramState] = {}
        self._refresh_durations: dict[tuple[str, str, str], HistogramState] = {}
        self._import_durations: dict[tuple[str, str, str], HistogramState] = {}
        self._cycles = 0
        self._late_targets = 0
        self._last_cycle_seconds = 0.0
        self._last_cycle_end = 0.0
        self.untracked_jobs = 0

    def configure(
        self,
        max_tracked_jobs: int,
        poll_interval: float,
        *,
        max_tracked_collections: int = 10_000,
        collection_retention: float = 7 * 86_400.0,
    ) -> None:
        """Apply a reloaded config's limits; state for removed targets goes at the next update."""
        self.max_tracked_jobs = max_tracked_jobs
        self.poll_interval = poll_interval
        self._history.configure(max_tracked_collections, collection_retention)

    def update(self, cycle: CycleResult, now: float) -> list[MetricFamily]:
        self._forget_removed_targets(cycle.targets)
        for snapshot in cycle.snapshots:
            self._apply_snapshot(snapshot)
        for key, details in cycle.import_details:
            self._apply_import_details(key, details)
        self._history.prune(now, {key[:2] for key in self._targets if key[2] == "refresh"})
        for request in cycle.requests:
            record = request.record
            self._api_requests[(request.cluster, record.api, record.outcome)] += 1
            latency = self._api_latency.setdefault(
                (request.cluster, record.api), HistogramState(API_LATENCY_BUCKETS)
            )
            latency.observe(record.seconds)
        self._cycles += 1
        self._late_targets = len(cycle.late)
        self._last_cycle_seconds = cycle.seconds
        self._last_cycle_end = now
        return self.families(now)

    def saved_state(self) -> SavedState:
        """What a restart must not forget (see ``state.py``)."""
        refresh_seen = dict(self._restored.refresh_seen)
        imports_seen = dict(self._restored.imports_seen)
        for (cluster, database, kind), state in self._targets.items():
            if kind == "refresh" and state.accounted_finished is not None:
                refresh_seen[(cluster, database)] = set(state.accounted_finished)
            elif kind == "import" and state.accounted_imports is not None:
                imports_seen[(cluster, database)] = set(state.accounted_imports)
        return SavedState(
            collections=self._history.items(),
            refresh_seen=refresh_seen,
            imports_seen=imports_seen,
            refresh_durations=dict(self._refresh_durations),
            import_durations=dict(self._import_durations),
        )

    def restore(self, saved: SavedState) -> None:
        """Take back what an earlier run remembered (call before the first ``update``)."""
        self._history.restore(saved.collections)
        self._restored = saved
        for key, histogram in saved.refresh_durations.items():
            self._refresh_durations.setdefault(key, histogram)
        for key, histogram in saved.import_durations.items():
            self._import_durations.setdefault(key, histogram)

    def target_status(self) -> list[_TargetState]:
        """For the landing page: every target with up/down and the last reason."""
        return list(self._targets.values())

    def _forget_removed_targets(self, targets: Iterable[Target]) -> None:
        current = {target.key: target for target in targets}
        for key in list(self._targets):
            if key not in current:
                del self._targets[key]
        for key, target in current.items():
            state = self._targets.get(key)
            if state is None:
                self._targets[key] = _TargetState(
                    target,
                    accounted_finished=self._restored.refresh_seen.pop(key[:2], None)
                    if key[2] == "refresh"
                    else None,
                    accounted_imports=self._restored.imports_seen.pop(key[:2], None)
                    if key[2] == "import"
                    else None,
                )
            else:
                state.target = target
        clusters = {key[0] for key in current}
        self._poll_errors = Counter(
            {k: v for k, v in self._poll_errors.items() if k[:3] in current}
        )
        self._skipped_records = Counter(
            {k: v for k, v in self._skipped_records.items() if k[:3] in current}
        )
        self._api_requests = Counter(
            {k: v for k, v in self._api_requests.items() if k[0] in clusters}
        )
        self._api_latency = {k: v for k, v in self._api_latency.items() if k[0] in clusters}
        self._refresh_durations = {
            k: v for k, v in self._refresh_durations.items() if (k[0], k[1], "refresh") in current
        }
        self._import_durations = {
            k: v for k, v in self._import_durations.items() if (k[0], k[1], "import") in current
        }

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        state = self._targets.get(snapshot.target.key)
        if state is None:
            return
        state.up = snapshot.ok
        state.reason = snapshot.reason
        if not snapshot.ok:
            cluster, database, kind = snapshot.target.key
            self._poll_errors[(cluster, database, kind, snapshot.reason)] += 1
            return
        state.last_good = snapshot
        state.last_success_time = snapshot.polled_at
        cluster, database, kind = snapshot.target.key
        for reason, count, _message in snapshot.skipped_records:
            self._skipped_records[(cluster, database, kind, reason)] += count
        if snapshot.target.kind == "refresh":
            self._observe_finished_refreshes(state, snapshot)
            self._history.observe(cluster, database, snapshot.refresh_jobs, snapshot.polled_at)
        else:
            listed = {job.job_id for job in snapshot.import_jobs}
            state.import_details = {k: v for k, v in state.import_details.items() if k in listed}
            first_seen = {k: v for k, v in state.import_first_seen.items() if k in listed}
            for job_id in listed - first_seen.keys():
                first_seen[job_id] = snapshot.polled_at
            state.import_first_seen = first_seen
            finished = {job.job_id for job in snapshot.import_jobs if job.finished}
            if state.accounted_imports is None:
                state.accounted_imports = finished
            else:
                state.accounted_imports &= listed

    def _apply_import_details(self, key: TargetKey, details: ImportJobDetails) -> None:
        """Keep a job's details; observe its duration once, when the exporter sees it finish."""
        state = self._targets.get(key)
        if state is None or state.accounted_imports is None:
            return
        state.import_details[details.job_id] = details
        if details.complete_time is None or details.create_time is None:
            return
        if details.job_id in state.accounted_imports:
            return
        state.accounted_imports.add(details.job_id)
        if details.complete_time >= details.create_time:
            histogram = self._import_durations.setdefault(
                (key[0], key[1], details.state), HistogramState(REFRESH_DURATION_BUCKETS)
            )
            histogram.observe(details.complete_time - details.create_time)

    def _observe_finished_refreshes(self, state: _TargetState, snapshot: Snapshot) -> None:
        """Observe each refresh the exporter sees finish; the first good poll only sets a baseline."""
        finished = {
            (job.collection, str(job.job_id)): job for job in snapshot.refresh_jobs if job.finished
        }
        if state.accounted_finished is None:
            state.accounted_finished = set(finished)
            return
        cluster, database, _kind = snapshot.target.key
        for key, job in finished.items():
            if key in state.accounted_finished:
                continue
            if (
                job.start_time is not None
                and job.end_time is not None
                and job.end_time >= job.start_time
            ):
                histogram = self._refresh_durations.setdefault(
                    (cluster, database, job.state), HistogramState(REFRESH_DURATION_BUCKETS)
                )
                histogram.observe(job.end_time - job.start_time)
        state.accounted_finished = set(finished)

    def families(self, now: float) -> list[MetricFamily]:
        out = _Families(
            refresh_progress=MetricFamily(
                "milvus_refresh_job_progress_ratio",
                "gauge",
                f"Progress of a refresh job, 0 to 1. {POLLED}",
            ),
            refresh_state=MetricFamily(
                "milvus_refresh_job_state",
                "gauge",
                f"Refresh job state: 1 for the current state, else 0. {POLLED}",
            ),
            refresh_start=MetricFamily(
                "milvus_refresh_job_start_timestamp_seconds",
                "gauge",
                f"When a refresh job started (Unix time). {POLLED}",
            ),
            refresh_end=MetricFamily(
                "milvus_refresh_job_end_timestamp_seconds",
                "gauge",
                f"When a refresh job ended (Unix time). {POLLED}",
            ),
            refresh_duration=MetricFamily(
                "milvus_refresh_job_duration_seconds",
                "gauge",
                f"End minus start of a finished refresh job, or poll time minus start while running. {POLLED}",
            ),
            refresh_failure=MetricFamily(
                "milvus_refresh_job_failure_info",
                "gauge",
                f"Failure reason of a failed refresh job. {POLLED}",
            ),
            refresh_jobs=MetricFamily(
                "milvus_refresh_jobs",
                "gauge",
                f"Number of listed refresh jobs per collection and state. {POLLED}",
            ),
            refresh_last_success=MetricFamily(
                "milvus_refresh_last_success_timestamp_seconds",
                "gauge",
                f"End time of the newest completed refresh of a collection (Unix time). {POLLED}",
            ),
            refresh_last_failure=MetricFamily(
                "milvus_refresh_last_failure_timestamp_seconds",
                "gauge",
                f"End time of the newest failed refresh of a collection (Unix time). {POLLED}",
            ),
            refresh_last_failure_info=MetricFamily(
                "milvus_refresh_last_failure_info",
                "gauge",
                "Job id and reason of the newest failed refresh of a collection; remembered as "
                "long as its last failure time is.",
            ),
            import_progress=MetricFamily(
                "milvus_import_job_progress_ratio",
                "gauge",
                f"Progress of an import job, 0 to 1. {POLLED}",
            ),
            import_state=MetricFamily(
                "milvus_import_job_state",
                "gauge",
                f"Import job state: 1 for the current state, else 0. {POLLED}",
            ),
            import_failure=MetricFamily(
                "milvus_import_job_failure_info",
                "gauge",
                f"Failure reason of a failed import job. {POLLED}",
            ),
            import_jobs=MetricFamily(
                "milvus_import_jobs",
                "gauge",
                f"Number of listed import jobs per collection and state. {POLLED}",
            ),
            import_imported_rows=MetricFamily(
                "milvus_import_job_imported_rows",
                "gauge",
                f"Rows an import job has imported. {POLLED}",
            ),
            import_total_rows=MetricFamily(
                "milvus_import_job_total_rows", "gauge", f"Rows an import job will import. {POLLED}"
            ),
            import_file_size=MetricFamily(
                "milvus_import_job_file_size_bytes",
                "gauge",
                f"Size of an import job's files. {POLLED}",
            ),
            import_create=MetricFamily(
                "milvus_import_job_create_timestamp_seconds",
                "gauge",
                f"When an import job was created (Unix time). {POLLED}",
            ),
            import_complete=MetricFamily(
                "milvus_import_job_complete_timestamp_seconds",
                "gauge",
                f"When an import job completed or failed (Unix time), once set. {POLLED}",
            ),
            import_duration=MetricFamily(
                "milvus_import_job_duration_seconds",
                "gauge",
                f"Complete minus create time of a finished import job, or poll time minus create "
                f"time while running. {POLLED}",
            ),
        )
        candidates: list[_Tracked] = []
        unknown_states = MetricFamily(
            "milvus_jobs_exporter_unknown_state_jobs",
            "gauge",
            f"Listed jobs whose state is not one the exporter knows; kept with the state as sent. {POLLED}",
        )
        for key, state in sorted(self._targets.items()):
            snapshot = state.last_good  # kept while the target is down: last known state
            if snapshot is None:
                continue
            jobs: tuple[RefreshJob | ImportJob, ...] = snapshot.refresh_jobs or snapshot.import_jobs
            unknown_states.add(
                (("milvus_cluster", key[0]), ("database", key[1]), ("kind", key[2])),
                float(sum(1 for job in jobs if not job.known_state)),
            )
            if state.target.kind == "refresh":
                candidates.extend(
                    _collection_series(
                        out.refresh_jobs,
                        snapshot,
                        snapshot.refresh_jobs,
                        REFRESH_STATES,
                        _refresh_order,
                    )
                )
            else:
                candidates.extend(
                    _collection_series(
                        out.import_jobs,
                        snapshot,
                        snapshot.import_jobs,
                        IMPORT_STATES,
                        _import_order(state),
                    )
                )
        self._finish_time_series(out)
        tracked = self._apply_cardinality_guard(candidates)
        for item in tracked:
            if isinstance(item.job, RefreshJob):
                _refresh_job_series(out, item.target, item.job, item.polled_at)
            else:
                details = self._targets[item.target.key].import_details.get(item.job.job_id)
                _import_job_series(out, item.target, item.job, details, item.polled_at)
        return [
            out.refresh_progress,
            out.refresh_state,
            out.refresh_start,
            out.refresh_end,
            out.refresh_duration,
            out.refresh_failure,
            out.refresh_jobs,
            out.refresh_last_success,
            out.refresh_last_failure,
            out.refresh_last_failure_info,
            histogram_family(
                "milvus_refresh_duration_seconds",
                "Duration of refresh jobs the exporter saw finish, by final state.",
                [
                    ((("milvus_cluster", c), ("database", d), ("state", s)), h)
                    for (c, d, s), h in sorted(self._refresh_durations.items())
                ],
            ),
            out.import_progress,
            out.import_state,
            out.import_failure,
            out.import_jobs,
            out.import_imported_rows,
            out.import_total_rows,
            out.import_file_size,
            out.import_create,
            out.import_complete,
            out.import_duration,
            histogram_family(
                "milvus_import_duration_seconds",
                "Duration of import jobs the exporter saw finish, by final state (import/describe).",
                [
                    ((("milvus_cluster", c), ("database", d), ("state", s)), h)
                    for (c, d, s), h in sorted(self._import_durations.items())
                ],
            ),
            unknown_states,
            *self._health_families(now),
        ]

    def _finish_time_series(self, out: _Families) -> None:
        """Every remembered collection, whether its target answers right now or not: these
        are facts about the past that an outage does not change."""
        for (cluster, database, collection), entry in self._history.items():
            labels = (
                ("milvus_cluster", cluster),
                ("database", database),
                ("collection", collection),
            )
            if entry.last_success is not None:
                out.refresh_last_success.add(labels, entry.last_success)
            if entry.last_failure is not None:
                out.refresh_last_failure.add(labels, entry.last_failure)
                out.refresh_last_failure_info.add(
                    (
                        *labels,
                        ("job_id", entry.failure_job_id or "unknown"),
                        ("reason", entry.failure_reason or "unknown"),
                    ),
                    1.0,
                )

    def _apply_cardinality_guard(self, candidates: list[_Tracked]) -> list[_Tracked]:
        """Keep at most ``max_tracked_jobs``; leave out the oldest finished jobs first."""
        excess = len(candidates) - self.max_tracked_jobs
        if excess <= 0:
            self.untracked_jobs = 0
            return candidates
        self.untracked_jobs = excess
        finished = sorted(
            (item for item in candidates if item.finished), key=lambda item: item.age_key
        )
        unfinished = sorted(
            (item for item in candidates if not item.finished), key=lambda item: item.age_key
        )
        ordered_for_removal = finished + unfinished
        removed = {id(item) for item in ordered_for_removal[:excess]}
        return [item for item in candidates if id(item) not in removed]

    def _health_families(self, now: float) -> list[MetricFamily]:
        up = MetricFamily(
            "milvus_jobs_exporter_target_up",
            "gauge",
            "1 if the last poll of the target succeeded, else 0.",
        )
        error_info = MetricFamily(
            "milvus_jobs_exporter_target_error_info",
            "gauge",
            "Why a target that is down failed its last poll (present only while down).",
        )
        last_success = MetricFamily(
            "milvus_jobs_exporter_last_success_timestamp_seconds",
            "gauge",
            "When the target was last polled successfully (Unix time).",
        )
        for key, state in sorted(self._targets.items()):
            labels = (("milvus_cluster", key[0]), ("database", key[1]), ("kind", key[2]))
            up.add(labels, 1.0 if state.up else 0.0)
            if not state.up and state.reason:
                error_info.add((*labels, ("reason", state.reason)), 1.0)
            if state.last_success_time is not None:
                last_success.add(labels, state.last_success_time)
        errors = MetricFamily(
            "milvus_jobs_exporter_poll_errors",
            "counter",
            "Failed polls of a target, by bounded reason.",
        )
        for (cluster, database, kind, reason), count in sorted(self._poll_errors.items()):
            errors.add(
                (
                    ("milvus_cluster", cluster),
                    ("database", database),
                    ("kind", kind),
                    ("reason", reason),
                ),
                float(count),
                "_total",
            )
        skipped = MetricFamily(
            "milvus_jobs_exporter_skipped_records",
            "counter",
            "Listed job records that could not be read and were left out, by bounded reason "
            "(the target stays up with the rest).",
        )
        for (cluster, database, kind, reason), count in sorted(self._skipped_records.items()):
            skipped.add(
                (
                    ("milvus_cluster", cluster),
                    ("database", database),
                    ("kind", kind),
                    ("reason", reason),
                ),
                float(count),
                "_total",
            )
        collections = MetricFamily(
            "milvus_jobs_exporter_tracked_collections",
            "gauge",
            "Collections whose newest refresh success and failure the exporter remembers.",
        )
        collections.add((), float(len(self._history)))
        forgotten = MetricFamily(
            "milvus_jobs_exporter_forgotten_collections",
            "counter",
            "Collections forgotten: not listed for collection_retention (retention), or beyond "
            "max_tracked_collections (limit).",
        )
        for reason in ("retention", "limit"):
            forgotten.add((("reason", reason),), float(self._history.forgotten[reason]), "_total")
        requests_total = MetricFamily(
            "milvus_jobs_exporter_api_requests",
            "counter",
            "HTTP requests to the Milvus job API, by outcome.",
        )
        for (cluster, api, outcome), count in sorted(self._api_requests.items()):
            requests_total.add(
                (("milvus_cluster", cluster), ("api", api), ("outcome", outcome)),
                float(count),
                "_total",
            )
        latency = histogram_family(
            "milvus_jobs_exporter_api_request_duration_seconds",
            "Time taken by HTTP requests to the Milvus job API.",
            [
                ((("milvus_cluster", c), ("api", a)), h)
                for (c, a), h in sorted(self._api_latency.items())
            ],
        )
        cycle = MetricFamily(
            "milvus_jobs_exporter_poll_cycle_duration_seconds",
            "gauge",
            "How long the last full poll cycle took.",
        )
        cycle.add((), self._last_cycle_seconds)
        cycles = MetricFamily(
            "milvus_jobs_exporter_poll_cycles", "counter", "Poll cycles completed."
        )
        cycles.add((), float(self._cycles), "_total")
        last_cycle = MetricFamily(
            "milvus_jobs_exporter_last_poll_cycle_timestamp_seconds",
            "gauge",
            "When the last poll cycle finished (Unix time).",
        )
        if self._cycles:  # no cycle yet (a state file was just restored): no time to show
            last_cycle.add((), self._last_cycle_end)
        late = MetricFamily(
            "milvus_jobs_exporter_late_targets",
            "gauge",
            "Targets that had not answered when the last poll cycle ended (still running, or "
            "still waiting for the rate limit); two cycles late in a row is reason deadline.",
        )
        late.add((), float(self._late_targets))
        untracked = MetricFamily(
            "milvus_jobs_exporter_untracked_jobs",
            "gauge",
            "Jobs left without per-job series because max_tracked_jobs was reached (still counted).",
        )
        untracked.add((), float(self.untracked_jobs))
        build = MetricFamily(
            "milvus_jobs_exporter_build_info", "gauge", "Version of the exporter; always 1."
        )
        build.add((("version", __version__),), 1.0)
        return [
            up,
            error_info,
            last_success,
            errors,
            skipped,
            collections,
            forgotten,
            requests_total,
            latency,
            cycle,
            cycles,
            last_cycle,
            late,
            untracked,
            build,
        ]


Job = RefreshJob | ImportJob


JobOrder = Callable[[Job], tuple[float, float, str]]
"""(age for the cardinality guard, then what decides which finished job is the newest)."""


def _refresh_order(job: Job) -> tuple[float, float, str]:
    """Newer refreshes started later; for the guard a finished one ages from its end."""
    assert isinstance(job, RefreshJob)
    start = job.start_time or 0.0
    age = (job.end_time or start) if job.finished else start
    return (age, start, f"{job.job_id:020d}")


def _import_order(state: _TargetState) -> JobOrder:
    """Imports by create time (``import/describe``), else by when the exporter first saw them,
    then by id: Zilliz Cloud's ``job-xxxx`` ids do not sort by age, and a newer failed import
    must not hide behind an older completed one whose id happens to sort higher."""

    def order(job: Job) -> tuple[float, float, str]:
        assert isinstance(job, ImportJob)
        details = state.import_details.get(job.job_id)
        created = details.create_time if details is not None else None
        if created is None:
            created = state.import_first_seen.get(job.job_id, 0.0)
        number, text = job.order_key
        return (created, created, f"{number:020d}{text}")

    return order


def _collection_series(
    counts: MetricFamily,
    snapshot: Snapshot,
    listed: Sequence[Job],
    documented_states: tuple[str, ...],
    order: JobOrder,
) -> list[_Tracked]:
    """Count the jobs of each collection by state; return the jobs that may get per-job series:
    every unfinished one and the newest finished one per collection."""
    cluster, database, _kind = snapshot.target.key
    by_collection: dict[str, dict[object, Job]] = {}
    for job in listed:  # a repeated record (same collection and id) counts once
        by_collection.setdefault(job.collection, {}).setdefault(job.job_id, job)
    candidates: list[_Tracked] = []
    for collection, jobs_by_id in sorted(by_collection.items()):
        jobs = list(jobs_by_id.values())
        labels = (("milvus_cluster", cluster), ("database", database), ("collection", collection))
        per_state = Counter(job.state for job in jobs)
        for state_name in (*documented_states, *sorted(set(per_state) - set(documented_states))):
            counts.add((*labels, ("state", state_name)), float(per_state.get(state_name, 0)))
        finished = [job for job in jobs if job.finished]
        for job in jobs:
            if not job.finished:
                candidates.append(
                    _Tracked(snapshot.target, job, False, order(job)[0], snapshot.polled_at)
                )
        if finished:
            newest = max(finished, key=lambda job: order(job)[1:])
            candidates.append(
                _Tracked(snapshot.target, newest, True, order(newest)[0], snapshot.polled_at)
            )
    return candidates


def _job_label_prefix(target: Target, collection: str, job_id: str) -> str:
    """``milvus_cluster="..",database="..",collection="..",job_id=".."`` rendered once per job.

    A job has up to nine samples; rendering its four shared labels once, not per sample, is
    most of what makes 100,000 jobs cheap to export.
    """
    return render_label_pairs(
        (
            ("milvus_cluster", target.cluster.name),
            ("database", target.database),
            ("collection", collection),
            ("job_id", job_id),
        )
    )


_STATE_SUFFIXES = {state: f',state="{state}"}}' for state in (*REFRESH_STATES, *IMPORT_STATES)}


def _with_state(prefix: str, state: str) -> str:
    suffix = _STATE_SUFFIXES.get(state) or f',state="{escape_label_value(state)}"}}'
    return "{" + prefix + suffix


def _refresh_job_series(out: _Families, target: Target, job: RefreshJob, polled_at: float) -> None:
    prefix = _job_label_prefix(target, job.collection, str(job.job_id))
    labels = "{" + prefix + "}"
    out.refresh_progress.add_rendered(labels, job.progress_ratio)
    for state_name in REFRESH_STATES:
        out.refresh_state.add_rendered(
            _with_state(prefix, state_name), 1.0 if job.state == state_name else 0.0
        )
    if not job.known_state:
        out.refresh_state.add_rendered(_with_state(prefix, job.state), 1.0)
    start, end = job.start_time, job.end_time
    if start is not None:
        out.refresh_start.add_rendered(labels, start)
    if end is not None:
        out.refresh_end.add_rendered(labels, end)
    if start is not None:
        if job.finished and end is not None:
            out.refresh_duration.add_rendered(labels, max(0.0, end - start))
        elif not job.finished:
            out.refresh_duration.add_rendered(labels, max(0.0, polled_at - start))
    if job.state == "RefreshFailed":
        reason = escape_label_value(job.reason or "unknown")
        out.refresh_failure.add_rendered("{" + prefix + f',reason="{reason}"}}', 1.0)


def _import_job_series(
    out: _Families,
    target: Target,
    job: ImportJob,
    details: ImportJobDetails | None,
    polled_at: float,
) -> None:
    prefix = _job_label_prefix(target, job.collection, job.job_id)
    labels = "{" + prefix + "}"
    out.import_progress.add_rendered(labels, job.progress_ratio)
    for state_name in IMPORT_STATES:
        out.import_state.add_rendered(
            _with_state(prefix, state_name), 1.0 if job.state == state_name else 0.0
        )
    if job.state not in IMPORT_STATES:
        out.import_state.add_rendered(_with_state(prefix, job.state), 1.0)
    if job.state == "Failed":
        reason = escape_label_value(job.reason or "unknown")
        out.import_failure.add_rendered("{" + prefix + f',reason="{reason}"}}', 1.0)
    if details is None:
        return
    for family, number in (
        (out.import_imported_rows, details.imported_rows),
        (out.import_total_rows, details.total_rows),
        (out.import_file_size, details.file_size_bytes),
        (out.import_create, details.create_time),
        (out.import_complete, details.complete_time),
    ):
        if number is not None:
            family.add_rendered(labels, float(number))
    created, completed = details.create_time, details.complete_time
    if created is not None:
        if completed is not None:
            out.import_duration.add_rendered(labels, max(0.0, completed - created))
        elif not job.finished:
            out.import_duration.add_rendered(labels, max(0.0, polled_at - created))
