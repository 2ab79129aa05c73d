"""What one job and one collection look like on /metrics: the sample writers of the model.

Pure functions from records to samples in the declared families (``catalogue.py``). Labels of a
job are rendered once and shared by its samples: a job has up to nine samples, and rendering
its four shared labels once is most of what makes 100,000 jobs cheap to export.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..exposition import catalogue as m
from ..exposition.families import MetricFamily, escape_label_value, render_label_pairs
from ..memory.imports import RememberedImport
from ..polling.snapshots import Snapshot
from ..polling.targets import TargetKey
from ..upstream.records import (
    IMPORT_STATES,
    REFRESH_STATES,
    ImportJob,
    ImportJobDetails,
    RefreshJob,
)

Families = dict[m.Metric, MetricFamily]
Job = RefreshJob | ImportJob
JobOrder = Callable[[Job], tuple[float, float, str]]
"""(age for the cardinality guard, then what decides which finished job is the newest)."""


@dataclass
class Tracked:
    """A job that may get per-job series, with what the cardinality guard sorts by.

    ``details`` is set for a remembered import (``import_memory.py``), which may no longer be
    listed, so its target no longer has its details."""

    key: TargetKey
    job: Job
    finished: bool
    age_key: float
    polled_at: float
    details: ImportJobDetails | None = None


def new_families(metrics: Sequence[m.Metric]) -> Families:
    return {metric: metric.family() for metric in metrics}


def refresh_order(job: Job) -> tuple[float, float, str]:
    """Newer refreshes started later; for the guard a finished one ages from its end."""
    assert isinstance(job, RefreshJob)
    start = job.start_time or 0.0
    age = (job.end_time or start) if job.finished else start
    return (age, start, f"{job.job_id:020d}")


def import_order(details: dict[str, ImportJobDetails], first_seen: dict[str, float]) -> JobOrder:
    """Imports by create time (``import/describe``), else by when the exporter first saw them,
    then by id: Zilliz Cloud's ``job-xxxx`` ids do not sort by age, and a newer failed import
    must not hide behind an older completed one whose id happens to sort higher."""

    def order(job: Job) -> tuple[float, float, str]:
        assert isinstance(job, ImportJob)
        known = details.get(job.job_id)
        created = known.create_time if known is not None else None
        if created is None:
            created = first_seen.get(job.job_id, 0.0)
        number, text = job.order_key
        return (created, created, f"{number:020d}{text}")

    return order


@dataclass(frozen=True, slots=True)
class CollectionCounts:
    """One listed collection's jobs by state: its samples of ``milvus_refresh_jobs`` /
    ``milvus_import_jobs``."""

    key: TargetKey
    collection: str
    states: Mapping[str, int]

    def active(self, succeeded: str) -> bool:
        """Any job listed in a state other than success: running, pending or failed."""
        return any(count for state, count in self.states.items() if state != succeeded)


def collection_series(
    counted: list[CollectionCounts],
    snapshot: Snapshot,
    listed: Sequence[Job],
    order: JobOrder,
    remembered: Callable[[str], RememberedImport | None] | None = None,
    *,
    gone: Callable[[str], bool] | None = None,
) -> list[Tracked]:
    """Count the jobs of each collection by state (into ``counted``); return the jobs that may
    get per-job series: every unfinished one and the newest finished one per collection, which
    is the remembered one (``remembered(collection)``) when there is one: it is never older
    than the listed ones.

    The counts are the snapshot's own (``Snapshot.collection_counts``: every listed job of each
    kept collection) when it has them, else those of ``listed``; a collection ``gone`` (confirmed
    dropped upstream, whose jobs ``listed`` already leaves out) is not counted either."""
    key = snapshot.target.key
    by_collection: dict[str, dict[object, Job]] = {}
    for job in listed:  # a repeated record (same collection and id) counts once
        by_collection.setdefault(job.collection, {}).setdefault(job.job_id, job)
    if snapshot.collection_counts is not None:
        counts: Mapping[str, Mapping[str, int]] = snapshot.collection_counts
        if gone is not None:
            counts = {name: states for name, states in counts.items() if not gone(name)}
    else:
        counts = {
            collection: Counter(job.state for job in jobs.values())
            for collection, jobs in by_collection.items()
        }
    counted += (
        CollectionCounts(key, collection, states) for collection, states in sorted(counts.items())
    )
    candidates: list[Tracked] = []
    for collection, jobs_by_id in sorted(by_collection.items()):
        jobs = list(jobs_by_id.values())
        finished = [job for job in jobs if job.finished]
        for job in jobs:
            if not job.finished:
                candidates.append(Tracked(key, job, False, order(job)[0], snapshot.polled_at))
        memory = remembered(collection) if remembered is not None else None
        if memory is not None:
            candidates.append(
                Tracked(key, memory.job, True, memory.order[0], snapshot.polled_at, memory.details)
            )
        elif finished:
            newest = max(finished, key=lambda job: order(job)[1:])
            candidates.append(Tracked(key, newest, True, order(newest)[0], snapshot.polled_at))
    return candidates


def within_collection_limit(
    rows: list[CollectionCounts], limit: int, succeeded: str
) -> tuple[list[CollectionCounts], int]:
    """At most ``limit`` collections keep their count series, those with a job running,
    pending or failed first (what the alerts and the dashboards look at), then by name; the
    rest are counted (``untracked_collections``). Order kept: by target, then collection."""
    if len(rows) <= limit:
        return rows, 0
    ranked = sorted(rows, key=lambda row: (not row.active(succeeded), row.key, row.collection))
    shown = sorted(ranked[:limit], key=lambda row: (row.key, row.collection))
    return shown, len(rows) - limit


def write_collection_counts(
    family: MetricFamily, rows: Sequence[CollectionCounts], documented_states: tuple[str, ...]
) -> None:
    """Each collection's jobs by state: every documented state, and any other state listed."""
    for row in rows:
        cluster, database, _kind = row.key
        labels = (
            ("milvus_cluster", cluster),
            ("database", database),
            ("collection", row.collection),
        )
        extra = sorted(set(row.states) - set(documented_states))
        for state_name in (*documented_states, *extra):
            family.add((*labels, ("state", state_name)), float(row.states.get(state_name, 0)))


def job_label_prefix(key: TargetKey, collection: str, job_id: str) -> str:
    """``milvus_cluster="..",database="..",collection="..",job_id=".."`` rendered once per job."""
    return render_label_pairs(
        (
            ("milvus_cluster", key[0]),
            ("database", key[1]),
            ("collection", collection),
            ("job_id", job_id),
        )
    )


_STATE_SUFFIXES = {state: f',state="{state}"}}' for state in (*REFRESH_STATES, *IMPORT_STATES)}


def _with_state(prefix: str, state: str) -> str:
    suffix = _STATE_SUFFIXES.get(state) or f',state="{escape_label_value(state)}"}}'
    return "{" + prefix + suffix


def _state_samples(
    family: MetricFamily, prefix: str, documented: tuple[str, ...], state: str
) -> None:
    """The enum as 0/1 samples: every documented state, and a state the docs do not know as sent."""
    for state_name in documented:
        family.add_rendered(_with_state(prefix, state_name), 1.0 if state == state_name else 0.0)
    if state not in documented:
        family.add_rendered(_with_state(prefix, state), 1.0)


def _failure_sample(family: MetricFamily, prefix: str, reason: str) -> None:
    escaped = escape_label_value(reason or "unknown")
    family.add_rendered("{" + prefix + f',reason="{escaped}"}}', 1.0)


def refresh_job_series(out: Families, key: TargetKey, job: RefreshJob, polled_at: float) -> None:
    prefix = job_label_prefix(key, job.collection, str(job.job_id))
    labels = "{" + prefix + "}"
    out[m.REFRESH_JOB_PROGRESS].add_rendered(labels, job.progress_ratio)
    _state_samples(out[m.REFRESH_JOB_STATE], prefix, REFRESH_STATES, job.state)
    start, end = job.start_time, job.end_time
    if start is not None:
        out[m.REFRESH_JOB_START].add_rendered(labels, start)
    if end is not None:
        out[m.REFRESH_JOB_END].add_rendered(labels, end)
    if start is not None:
        if job.finished and end is not None:
            out[m.REFRESH_JOB_DURATION].add_rendered(labels, max(0.0, end - start))
        elif not job.finished:
            out[m.REFRESH_JOB_DURATION].add_rendered(labels, max(0.0, polled_at - start))
    if job.state == "RefreshFailed":
        _failure_sample(out[m.REFRESH_JOB_FAILURE], prefix, job.reason)


def import_job_series(
    out: Families,
    key: TargetKey,
    job: ImportJob,
    details: ImportJobDetails | None,
    polled_at: float,
) -> None:
    prefix = job_label_prefix(key, job.collection, job.job_id)
    labels = "{" + prefix + "}"
    out[m.IMPORT_JOB_PROGRESS].add_rendered(labels, job.progress_ratio)
    _state_samples(out[m.IMPORT_JOB_STATE], prefix, IMPORT_STATES, job.state)
    if job.state == "Failed":
        _failure_sample(out[m.IMPORT_JOB_FAILURE], prefix, job.reason)
    if details is None:
        return
    for metric, number in (
        (m.IMPORT_JOB_IMPORTED_ROWS, details.imported_rows),
        (m.IMPORT_JOB_TOTAL_ROWS, details.total_rows),
        (m.IMPORT_JOB_FILE_SIZE, details.file_size_bytes),
        (m.IMPORT_JOB_CREATE, details.create_time),
        (m.IMPORT_JOB_COMPLETE, details.complete_time),
    ):
        if number is not None:
            out[metric].add_rendered(labels, float(number))
    created, completed = details.create_time, details.complete_time
    if created is not None:
        if completed is not None:
            out[m.IMPORT_JOB_DURATION].add_rendered(labels, max(0.0, completed - created))
        elif not job.finished:
            out[m.IMPORT_JOB_DURATION].add_rendered(labels, max(0.0, polled_at - created))
