"""What one job and one collection look like on /metrics: the one sample writer of the model,
driven by the series each kind declares (``Series``: catalogue metrics and their getters).

Pure functions from records to samples in the declared families (``catalogue.py``). Labels of a
job are rendered once and shared by its samples: a job has up to nine samples, and rendering
its four shared labels once is most of what makes 100,000 jobs cheap to export.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from operator import is_
from typing import Any, cast

from ..exposition import catalogue as m
from ..exposition.families import MetricFamily, escape_label_value, render_label_pairs
from ..kinds import AnyKind
from ..kinds.declaration import Job, ReasonSeries, StateSeries, Value, View
from ..memory.newest_finished import RememberedJob
from ..polling.snapshots import Snapshot
from ..polling.targets import TargetKey

Families = dict[m.Metric, MetricFamily]
JobOrder = Callable[[Job], tuple[float, float, str]]
"""(age for the cardinality guard, then what decides which finished job is the newest)."""


@dataclass
class Tracked:
    """A job that may get per-job series, with what the cardinality guard sorts by.

    ``details`` is set for a remembered job (``newest_finished.py``), which may no longer be
    listed, so its target no longer has its details."""

    key: TargetKey
    job: Job
    finished: bool
    age_key: float
    polled_at: float
    details: Any = None


def new_families(metrics: Sequence[m.Metric]) -> Families:
    return {metric: metric.family() for metric in metrics}


def job_order(
    kind: AnyKind, details: Mapping[str, Any], first_seen: Mapping[str, float]
) -> JobOrder:
    """A kind's order of its jobs (``Ordering``): (age, then newest time and id key), each job
    read with its follow-up details and when the exporter first saw it, when known."""
    newest, age = kind.ordering.newest, kind.ordering.age

    def order(job: Job) -> tuple[float, float, str]:
        key = str(job.job_id)
        known, seen = details.get(key), first_seen.get(key)
        time, id_key = newest(job, known, seen)
        return (age(job, known, seen), time, id_key)

    return order


def job_newest(
    kind: AnyKind, details: Mapping[str, Any], first_seen: Mapping[str, float]
) -> Callable[[Job], tuple[float, str]]:
    """``job_order`` without the age: what decides which finished job is the newest (half the
    work, for the ``max`` over every finished job of a collection)."""
    newest = kind.ordering.newest

    def order(job: Job) -> tuple[float, str]:
        key = str(job.job_id)
        return newest(job, details.get(key), first_seen.get(key))

    return order


@dataclass(frozen=True, slots=True)
class CollectionCounts:
    """One listed collection's jobs by state: its samples of its kind's counts
    (``milvus_refresh_jobs``)."""

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
    remembered: Callable[[str], RememberedJob | None] | None = None,
    *,
    gone: Callable[[str], bool] | None = None,
    newest_of: Callable[[Job], tuple[float, str]] | None = None,
) -> list[Tracked]:
    """Count the jobs of each collection by state (into ``counted``); return the jobs that may
    get per-job series: every unfinished one and the newest finished one per collection, which
    is the remembered one (``remembered(collection)``, for a ``newest_finished`` kind) when there
    is one: it is never older than the listed ones.

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
            newest = max(finished, key=newest_of or (lambda job: order(job)[1:]))
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


def write_count_row(
    family: MetricFamily, row: CollectionCounts, documented_states: tuple[str, ...]
) -> None:
    """One collection's jobs by state: every documented state, and any other state listed."""
    cluster, database, _kind = row.key
    labels = (
        ("milvus_cluster", cluster),
        ("database", database),
        ("collection", row.collection),
    )
    extra = sorted(set(row.states) - set(documented_states))
    for state_name in (*documented_states, *extra):
        family.add((*labels, ("state", state_name)), float(row.states.get(state_name, 0)))


class RenderedRows:
    """Sample lines of keyed rows (a target's collection counts, a collection's remembered
    history), written again while the values they were rendered from are equal. Call ``next_cycle`` once before each cycle's
    writes: what a cycle did not write is let go at the next."""

    def __init__(self) -> None:
        self._last: dict[Any, tuple[Any, tuple[tuple[int, bytes], ...]]] = {}
        self._current: dict[Any, tuple[Any, tuple[tuple[int, bytes], ...]]] = {}
        self.rendered = 0
        """Rows rendered (not reused) since start: what a test can watch."""

    def next_cycle(self) -> None:
        self._last, self._current = self._current, {}

    def write(
        self,
        key: Any,
        values: Any,
        families: Sequence[MetricFamily],
        render: Callable[[], None],
    ) -> None:
        """``render()`` writes the row into ``families``, unless the lines it wrote last cycle
        for ``key`` came from equal ``values``: those are written again.

        The lines are kept by family position: the families are new every cycle."""
        entry = self._last.get(key)
        if entry is not None and entry[0] == values:
            for index, lines in entry[1]:
                families[index].add_text(lines)
        else:
            starts = [family.mark() for family in families]
            render()
            entry = (
                values,
                tuple(
                    (index, family.since(start))
                    for index, (family, start) in enumerate(zip(families, starts, strict=True))
                    if family.mark() != start
                ),
            )
            self.rendered += 1
        self._current[key] = entry


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


@cache
def _state_suffix(state: str) -> str:
    """``,state="RefreshFailed"}`` for a documented state, rendered once (cached)."""
    return f',state="{escape_label_value(state)}"}}'


def _with_state(prefix: str, state: str, documented: tuple[str, ...]) -> str:
    if state in documented:
        return "{" + prefix + _state_suffix(state)
    return "{" + prefix + f',state="{escape_label_value(state)}"}}'


def _state_samples(
    family: MetricFamily, prefix: str, documented: tuple[str, ...], state: str
) -> None:
    """The enum as 0/1 samples: every documented state, and a state the docs do not know as sent."""
    for state_name in documented:
        family.add_rendered(
            _with_state(prefix, state_name, documented), 1.0 if state == state_name else 0.0
        )
    if state not in documented:
        family.add_rendered(_with_state(prefix, state, documented), 1.0)


def _reason_sample(family: MetricFamily, prefix: str, reason: str) -> None:
    escaped = escape_label_value(reason or "unknown")
    family.add_rendered("{" + prefix + f',reason="{escaped}"}}', 1.0)


def _write_parts(
    out: Families, kind: AnyKind, key: TargetKey, job: Job, view: View[Any, Any]
) -> None:
    """One job's series: each ``Value`` its getter gives (none when it gives None), the
    state enum, and each reason series whose condition holds."""
    prefix = job_label_prefix(key, job.collection, str(job.job_id))
    labels = "{" + prefix + "}"
    documented = kind.states.documented
    for part in kind.series.per_job:
        family = out[part.metric]
        if isinstance(part, Value):
            number = part.read(view)
            if number is not None:
                family.add_rendered(labels, float(number))
        elif isinstance(part, StateSeries):
            _state_samples(family, prefix, documented, job.state)
        elif isinstance(part, ReasonSeries) and part.when(job):
            _reason_sample(family, prefix, job.reason)


class _TimedView:
    """A ``View`` that notes whether a getter read the poll time: the samples of a job whose
    getters did not are the same next cycle for the same job and details."""

    __slots__ = ("_polled_at", "details", "job", "timed")

    def __init__(self, job: Job, details: Any, polled_at: float) -> None:
        self.job = job
        self.details = details
        self._polled_at = polled_at
        self.timed = False

    @property
    def polled_at(self) -> float:
        self.timed = True
        return self._polled_at


@dataclass(slots=True)
class _Run:
    """Consecutive jobs of a group whose lines read no poll time, as the last cycle wrote them:
    in each family of the kind (``metrics``, by position) one slice of that cycle's body.

    ``starts[i]`` is where the slice begins in the body of family ``i``; ``ends[i][j]`` where
    the run's ``j``-th job's lines end, from that start (the slice ends at ``ends[i][-1]``)."""

    first: int
    """The position in its group of the run's first job."""
    starts: list[int]
    ends: list[list[int]]

    @property
    def count(self) -> int:
        return len(self.ends[0]) if self.ends else 0


@dataclass(slots=True)
class _Group:
    """What a group of jobs (a target's, in the order written) wrote last cycle: its runs, and
    the positions of the jobs whose lines read the poll time (rendered every cycle)."""

    jobs: tuple[Job, ...]
    details: tuple[Any, ...]
    pieces: list[_Run | int]


class RenderedJobs:
    """Each tracked job's sample lines of the last cycle, written again as they are while the
    job is the same record object (``polling/reuse.py`` gives back the object of an unchanged
    record) and its details the same answer. A job whose record changed in any field is a new
    object, and is rendered anew; so is every cycle a job whose lines read the poll time.

    Jobs are written by group (a target's candidates, in order): a group whose jobs and details
    are all the very same as last cycle writes each run of them again as one slice per family,
    whatever its size. The lines are not copied to be kept: each run remembers where they are
    in the bodies of the last cycle's families, which the exposition cache holds anyway
    (``MetricFamily.buffer``), so keeping 20,000 jobs' lines costs a few arrays of offsets.

    Call ``next_cycle`` before each cycle's writes and ``end_cycle`` after them: what a cycle
    did not write (a job no longer tracked) is let go at the next, and a cycle that did not end
    (an error halfway) leaves nothing to reuse."""

    def __init__(self) -> None:
        self._last: dict[Any, _Group] = {}
        self._current: dict[Any, _Group] = {}
        self._families: dict[int, MetricFamily] = {}
        self._bodies: dict[int, bytearray] = {}
        """The last ended cycle's family bodies by ``id`` of their metric."""
        self._open = False
        self._metric_ids: dict[str, tuple[int, ...]] = {}
        self.rendered = 0
        """Jobs rendered (not reused) since start: what a test can watch."""

    @property
    def kept(self) -> int:
        """Jobs whose lines are kept for the next cycle (none whose lines read the poll time)."""
        return sum(
            piece.count
            for group in self._current.values()
            for piece in group.pieces
            if isinstance(piece, _Run)
        )

    def next_cycle(self, out: Families) -> None:
        """A new cycle writes into ``out`` (until ``end_cycle``)."""
        if self._open:  # the last cycle did not end: its runs may point into unfinished bodies
            self._current, self._bodies = {}, {}
        self._last, self._current = self._current, {}
        self._families = {id(metric): family for metric, family in out.items()}
        self._open = True

    def end_cycle(self) -> None:
        """The cycle's families are written: the next cycle reads its kept lines from their
        bodies (the exposition cache holds them while they are published)."""
        self._bodies = {metric: family.buffer() for metric, family in self._families.items()}
        self._families = {}
        self._open = False

    def write_group(
        self,
        out: Families,
        kind: AnyKind,
        key: Any,
        jobs: tuple[Job, ...],
        details: tuple[Any, ...],
        polled_at: float,
    ) -> None:
        """The series of ``jobs`` (``details[i]`` the details of ``jobs[i]``), one after the
        other, as their kind declares them (``Series.per_job``); ``key`` names the group from
        one cycle to the next and starts with the target key."""
        metrics = self._metrics(kind)
        last = self._last.get(key)
        if (
            last is not None
            and len(last.jobs) == len(jobs)
            and all(map(is_, jobs, last.jobs))
            and all(map(is_, details, last.details))
        ):
            self._write_again(out, kind, key[0], last, metrics, polled_at)
            self._current[key] = last
            return
        self._current[key] = self._write_anew(out, kind, key[0], last, jobs, details, polled_at)

    def _metrics(self, kind: AnyKind) -> tuple[int, ...]:
        """``id`` of each family a job of ``kind`` writes in, in a fixed order."""
        found = self._metric_ids.get(kind.name)
        if found is None:
            found = tuple(dict.fromkeys(id(part.metric) for part in kind.series.per_job))
            self._metric_ids[kind.name] = found
        return found

    def _write_again(
        self,
        out: Families,
        kind: AnyKind,
        key: TargetKey,
        group: _Group,
        metrics: tuple[int, ...],
        polled_at: float,
    ) -> None:
        families, bodies = self._families, self._bodies
        for piece in group.pieces:
            if isinstance(piece, int):
                self._render(out, kind, key, group.jobs[piece], group.details[piece], polled_at)
                continue
            starts = piece.starts
            for index, metric in enumerate(metrics):
                size = piece.ends[index][-1]
                family = families[metric]
                start = starts[index]
                starts[index] = family.mark()
                if size:
                    family.add_slice(bodies[metric], start, start + size)

    def _write_anew(
        self,
        out: Families,
        kind: AnyKind,
        key: TargetKey,
        last: _Group | None,
        jobs: tuple[Job, ...],
        details: tuple[Any, ...],
        polled_at: float,
    ) -> _Group:
        """Write job by job: each one the same as in ``last`` from where it was, the others
        rendered; runs made anew of the jobs whose lines read no poll time."""
        metrics = self._metrics(kind)
        families = [self._families[metric] for metric in metrics]
        bodies = [self._bodies.get(metric) for metric in metrics]
        where: dict[int, int] = {}
        runs: list[_Run | None] = []
        if last is not None:  # by position in ``last``, built at C speed: most are skipped
            where = dict(zip(map(id, last.jobs), range(len(last.jobs)), strict=True))
            runs = [None] * len(last.jobs)
            for piece in last.pieces:
                if isinstance(piece, _Run):
                    runs[piece.first : piece.first + piece.count] = [piece] * piece.count
        pieces: list[_Run | int] = []
        run: _Run | None = None
        position = 0
        while position < len(jobs):
            job, detail = jobs[position], details[position]
            was = where.get(id(job), -1)
            before = None if was < 0 else runs[was]
            if (
                before is not None
                and last is not None
                and last.jobs[was] is job
                and last.details[was] is detail
            ):
                offset = was - before.first
                count = before.count - offset
                if (
                    offset == 0
                    and position + count <= len(jobs)
                    and all(map(is_, jobs[position : position + count], last.jobs[was:]))
                    and all(map(is_, details[position : position + count], last.details[was:]))
                ):  # the whole run again, one slice a family (positions moved: a job before
                    # it came or went)
                    if run is None:
                        run = _Run(position, [f.mark() for f in families], [[] for _ in metrics])
                    for index, family in enumerate(families):
                        shift = family.mark() - run.starts[index]
                        ends = before.ends[index]
                        run.ends[index] += [shift + end for end in ends] if shift else ends
                        body = bodies[index]
                        start = before.starts[index]
                        if ends[-1] and body is not None:
                            family.add_slice(body, start, start + ends[-1])
                    position += count
                    continue
                if run is None:
                    run = _Run(position, [f.mark() for f in families], [[] for _ in metrics])
                for index, family in enumerate(families):
                    ends = before.ends[index]
                    start = before.starts[index] + (ends[offset - 1] if offset else 0)
                    end = before.starts[index] + ends[offset]
                    body = bodies[index]
                    if end > start and body is not None:
                        family.add_slice(body, start, end)
                    run.ends[index].append(family.mark() - run.starts[index])
                position += 1
                continue
            starts = [family.mark() for family in families]
            if self._render(out, kind, key, job, detail, polled_at):
                if run is not None:
                    pieces.append(run)
                    run = None
                pieces.append(position)
                position += 1
                continue
            if run is None:
                run = _Run(position, starts, [[] for _ in metrics])
            for index, family in enumerate(families):
                run.ends[index].append(family.mark() - run.starts[index])
            position += 1
        if run is not None:
            pieces.append(run)
        return _Group(jobs, details, pieces)

    def _render(
        self,
        out: Families,
        kind: AnyKind,
        key: TargetKey,
        job: Job,
        details: Any,
        polled_at: float,
    ) -> bool:
        """Render one job's lines; whether they read the poll time."""
        self.rendered += 1
        view = _TimedView(job, details, polled_at)
        _write_parts(out, kind, key, job, cast(View[Any, Any], view))
        return view.timed
