"""What a job kind is: everything the machinery needs to poll, keep, export, remember and show the
jobs of one kind, declared once as data and small pure functions (``JobKind``).

The machinery (the poller, the keep rules, the follow-ups, the model and its series writer, the
memory and its state file, the operator commands, the config's ``jobs``, the monitoring
generators) reads these declarations and names no kind. A declaration holds no machinery: its
series are (catalogue metric, value getter) pairs that ``metrics/series.py`` renders, its memory
across restarts is one of two strategies that ``memory/`` implements once each:

- ``HISTORY``: the newest success and failure times of each collection, its newest failure's job
  and reason (``memory/history.py``), exported as the declared ``History`` series;
- ``NEWEST_FINISHED``: the newest finished job of each collection, with its follow-up details,
  kept after the server forgets it (``memory/newest_finished.py``) and exported with the per-job
  series of a tracked job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..exposition.catalogue import Metric

HISTORY = "history"
NEWEST_FINISHED = "newest_finished"
MEMORY_STRATEGIES = (HISTORY, NEWEST_FINISHED)

DURATION_BUCKETS = (
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
"""The buckets of every kind's duration histogram (seconds): jobs take minutes to hours."""


class Job(Protocol):
    """What the machinery reads of a job record of any kind (a frozen dataclass of the kind)."""

    @property
    def job_id(self) -> int | str: ...

    @property
    def collection(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def progress_ratio(self) -> float: ...

    @property
    def reason(self) -> str: ...

    @property
    def progress_out_of_range(self) -> bool: ...

    @property
    def finished(self) -> bool: ...

    @property
    def known_state(self) -> bool: ...


J = TypeVar("J", bound=Job)
D = TypeVar("D")
"""What a kind's follow-up request adds to a listed job (``import/describe``: rows and times)."""


@dataclass(frozen=True)
class States:
    """A kind's states: which are documented (each a 0/1 series, in this order), which mean
    pending, running, succeeded and failed (the stuck rule, the state filter of ``jobs list``,
    the colours), and which others are known without a series of their own."""

    pending: tuple[str, ...]
    running: tuple[str, ...]
    succeeded: str
    failed: str
    documented: tuple[str, ...]
    also_known: tuple[str, ...] = ()
    """Known states in none of the groups above (import's ``None``): not counted as unknown."""

    @property
    def finished(self) -> frozenset[str]:
        return frozenset((self.succeeded, self.failed))

    @property
    def known(self) -> frozenset[str]:
        return frozenset(
            (*self.pending, *self.running, *self.finished, *self.documented, *self.also_known)
        )

    @property
    def listed(self) -> tuple[str, ...]:
        """Every known state, the documented ones first: what ``jobs list --state`` accepts."""
        return (*self.documented, *sorted(self.known - set(self.documented)))

    def group(self, state: str) -> str:
        """``pending``, ``running``, ``completed``, ``failed``, or "" for a state in none."""
        if state in self.pending:
            return "pending"
        if state in self.running:
            return "running"
        if state == self.succeeded:
            return "completed"
        if state == self.failed:
            return "failed"
        return ""


@dataclass(frozen=True)
class Endpoints:
    """Where a kind's jobs are listed and described (paths after ``/v2/vectordb/jobs/``).

    Every list takes ``{"dbName", "collectionName"?}``. ``numeric_ids``: a job id is an int64,
    sent in a describe request as ``describe_id`` makes it (a JSON number for refresh, a
    decimal string for restore), and checked to be digits before a command sends it.
    ``not_found`` are the failure reasons that mean "no such job" (``api_<code>``).
    ``served_since`` names the first servers that serve the list, for a kind that not every
    supported server serves: there a list answering HTTP 404 is the reason ``not_served``."""

    list: str
    describe: str
    not_found: frozenset[str]
    paged: bool = False
    numeric_ids: bool = True
    describe_id: Callable[[str], object] = str
    served_since: str = ""

    def describe_body(self, job_id: str) -> dict[str, object]:
        return {"jobId": self.describe_id(job_id)}


@dataclass(frozen=True)
class View(Generic[J, D]):
    """What a series getter reads: the job, its follow-up details if known, and the poll time."""

    job: J
    details: D | None
    polled_at: float


@dataclass(frozen=True)
class Value:
    """A per-job gauge: ``read(view)``, left out when None."""

    metric: Metric
    read: Callable[[View[Any, Any]], float | None]


@dataclass(frozen=True)
class StateSeries:
    """The per-job state enum: 1 for the current state, 0 for every other documented one."""

    metric: Metric


@dataclass(frozen=True)
class ReasonSeries:
    """A per-job info series carrying the job's ``reason`` while ``when(job)`` holds (a failed
    job's failure, a pending job's last transient error)."""

    metric: Metric
    when: Callable[[Any], bool]


PerJob = Value | StateSeries | ReasonSeries


@dataclass(frozen=True)
class History:
    """The series of the ``HISTORY`` memory, per collection: the newest success and failure end
    times and the newest failure's job id and reason."""

    last_success: Metric
    last_failure: Metric
    failure_info: Metric


@dataclass(frozen=True)
class Series(Generic[J, D]):
    """What a kind exports: per-job series, jobs per collection and state (``counts``), and a
    histogram of the durations the exporter saw jobs finish with (``durations``, by final
    state; ``observed`` gives a job's (final state, seconds) once both are known, and None
    until then; seconds below 0 are counted as observed but not recorded)."""

    per_job: tuple[PerJob, ...]
    counts: Metric
    durations: Metric
    observed: Callable[[J, D | None], tuple[str, float] | None]
    history: History | None = None
    buckets: tuple[float, ...] = DURATION_BUCKETS

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """Every family this kind fills."""
        history = self.history
        extra = () if history is None else (history.last_success, history.last_failure)
        return (
            *(part.metric for part in self.per_job),
            self.counts,
            *extra,
            *(() if history is None else (history.failure_info,)),
            self.durations,
        )

    @property
    def failure_info(self) -> Metric:
        """The series with the newest failure's job and reason, per collection: what the
        failed-job alert's description and the failure-changed alert read."""
        if self.history is not None:
            return self.history.failure_info
        for part in self.per_job:
            if isinstance(part, ReasonSeries) and part.metric.name.endswith("_failure_info"):
                return part.metric
        raise LookupError("a kind without a failure info series")


@dataclass(frozen=True)
class Ordering(Generic[J, D]):
    """Which job is newer.

    ``listed(job)``, from the record alone (larger is newer), orders a list answer: what the keep
    rules keep first and the order of ``jobs list``. ``newest(job, details, first_seen)`` is a
    (time, id key) that decides a collection's newest finished job (``first_seen``: when the
    exporter first saw the job, for kinds whose records carry no time); ``age(...)`` is when the
    job last changed, what the cardinality guard leaves out first (oldest first)."""

    listed: Callable[[J], Any]
    newest: Callable[[J, D | None, float | None], tuple[float, str]]
    age: Callable[[J, D | None, float | None], float]


@dataclass(frozen=True)
class Times(Generic[J, D]):
    """A job's start and end (Unix seconds, None when unknown), and its duration at ``now``
    (end minus start once finished, time so far while running)."""

    started: Callable[[J, D | None], float | None]
    ended: Callable[[J, D | None], float | None]
    duration: Callable[[J, D | None, float], float | None]


@dataclass(frozen=True)
class FollowUp(Generic[J, D]):
    """A request made after a list for each listed job (``import/describe``): every unfinished
    job each round, each finished one once, at most ``per_round`` per target and round (the
    config keys ``switch`` and ``per_round`` name turn it on and bound it). A failure costs only
    that job's details."""

    api: str
    body: Callable[[str], dict[str, object]]
    """The request for the job of this id."""
    read: Callable[[Any], D]
    """Reads the answer's ``data`` object; raises ``RecordError`` for one it cannot read."""
    job_id: Callable[[D], str]
    final: Callable[[D], bool]
    """The answer is the job's last: it is not asked again."""
    switch: str
    per_round: str
    kept: Callable[[D], D] | None = None
    """What the metrics model keeps of an answer until the job's next one (None: all of it):
    what no series, order or memory reads need not be held for every described job."""


class Fields(Protocol):
    """Reads the fields of a state file entry, each checked (``kinds/saved.py``)."""

    def text(self, value: Any) -> str: ...

    def identifier(self, value: Any) -> str: ...

    def time(self, value: Any) -> float | None: ...

    def count(self, value: Any) -> int | None: ...

    def ratio(self, value: Any) -> float: ...


@dataclass(frozen=True)
class Saved(Generic[J, D]):
    """How a ``NEWEST_FINISHED`` kind's remembered job (and details) go into the state file and
    come back; a reader raises ``ValueError``, ``TypeError`` or ``KeyError`` for an entry it
    cannot use (that entry alone is dropped and counted)."""

    job: Callable[[J], dict[str, Any]]
    read_job: Callable[[Mapping[str, Any], Fields], J]
    details: Callable[[D], dict[str, Any]] | None = None
    read_details: Callable[[Mapping[str, Any], J, Fields], D] | None = None


@dataclass(frozen=True)
class Legacy:
    """The sections of a version 1 or 2 state file that held this kind's memory (before the
    file kept each kind under its name); empty for a kind that came later."""

    memory: str = ""
    seen: str = ""
    durations: str = ""


@dataclass(frozen=True)
class Shown:
    """One job as ``jobs describe`` shows it: ``fields`` are (label, text, painted as a state)
    lines for a person, ``document`` the JSON for a script (``cluster`` and ``kind`` are put
    first by the command), ``table`` an optional table below the fields (header, rows, the
    column painted as a state), ``problems`` lines for stderr (parts not shown)."""

    fields: tuple[tuple[str, str, bool], ...]
    document: dict[str, Any]
    table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...], int] | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alerting:
    """The words the dashboards and alert rules use for a kind (``monitoring/`` builds its
    section of the overview and its alerts from them).

    ``subject``: "Refresh of" in "Refresh of books failed on prod"; ``newest``: the failed
    alert's description opening ("The newest refresh of external collection"); ``collection``:
    what its collections are ("external collection"); ``failed_comment``: why the failed alert
    is written the way it is (``{lookback}`` and ``{held}`` filled in); ``failed_extra``: a
    sentence after the failed alert's description; ``failed_table``: the failed-jobs table's
    description; ``failed_time``: for a ``NEWEST_FINISHED`` kind, the per-job timestamp series
    (name after ``milvus_<kind>_``) and column title of that table; ``stuck``: whether the
    kind has a stuck alert (no progress while running, or pending too long).
    """

    row_title: str
    subject: str
    newest: str
    collection: str
    failed_comment: str
    failed_table: str
    failed_extra: str = ""
    failed_time: tuple[str, str] = ("", "")
    stuck: bool = False


@dataclass(frozen=True)
class JobKind(Generic[J, D]):
    """One kind of Milvus background job, declared once (see the module docstring).

    ``name`` is the config's ``jobs`` value, the ``kind`` label and ``--kind``; ``default``
    says whether a cluster without ``jobs`` polls it; ``noun`` / ``plural`` are for messages and
    docs; ``title`` names its group of metrics; ``metric_prefix`` starts its series' names.
    """

    name: str
    noun: str
    plural: str
    title: str
    metric_prefix: str
    default: bool
    endpoints: Endpoints
    parse: Callable[[Any, float, dict[str, str]], J]
    """Reads one listed record: (record, now, shared names); raises ``RecordError``."""
    states: States
    ordering: Ordering[J, D]
    times: Times[J, D]
    series: Series[J, D]
    memory: str
    alerting: Alerting
    described: Callable[[Any, float], Any]
    """Reads a describe answer's ``data`` for ``jobs describe`` (raises ``RecordError``)."""
    shown: Callable[[Any, float], Shown]
    """How ``jobs describe`` shows what ``described`` read, at ``now``."""
    saved: Saved[J, D] | None = None
    follow_up: FollowUp[J, D] | None = None
    legacy: Legacy = field(default_factory=Legacy)

    def __post_init__(self) -> None:
        if self.memory not in MEMORY_STRATEGIES:
            raise ValueError(f"{self.name}: memory must be one of {MEMORY_STRATEGIES}")
        if (self.memory == HISTORY) != (self.series.history is not None):
            raise ValueError(f"{self.name}: the history memory and its series go together")
        if self.memory == NEWEST_FINISHED and self.saved is None:
            raise ValueError(f"{self.name}: a newest_finished memory needs its saved form")
