"""One section of the overview per job kind, drawn by one function, ``job_kind_section``, from a
``JobKind``: the panels every kind has, and the kind's own (``overview.py`` makes each from the
exporter's declaration of the kind).

Three rules hold for every panel:

- **Duplicates count once.** Each series is first merged by the labels that identify the thing
  (``max by (milvus_cluster, database, collection, job_id, state)``), then counted or summed, so
  an HA pair of exporters shows the numbers of one.
- **Bounded by construction.** A per-job or per-collection panel shows only unfinished or
  unhealthy items, the top ``TABLE_ROWS`` / ``GRAPH_LINES`` / ``BARS`` of them, chosen at the end
  of the time range (``@ end()``), whatever the size of the fleet.
- **Honest.** A count is 0 only while an exporter reports (``zero_while_reported``), never from
  ``or vector(0)``; failures are coloured the way the alerts decide them, with the thresholds of
  the thresholds file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import expressions
from ..expressions import COLLECTION_KEY, JOB_KEY, selector
from ..settings import Settings
from .layout import CLUSTER, COLLECTION, DATABASE, SCRAPE, Grid
from .panels import (
    Json,
    fixed_colors,
    or_unknown,
    override,
    stat,
    table,
    target,
    thresholds,
    timeseries,
    unknown_mapping,
    zero_while_reported,
)

JOB = (*SCRAPE, CLUSTER, DATABASE, COLLECTION)
"""The matchers of a job or collection series."""
DATABASE_SERIES = (*SCRAPE, CLUSTER, DATABASE)
"""The matchers of a series without a collection label (targets, duration histograms)."""

TABLE_ROWS = 50
GRAPH_LINES = 10
BARS = 20
DURATION_WINDOW = "1d"
"""Duration quantiles are taken over the past day: refreshes finish a few times a day, so a
shorter window is empty most of the time."""

JOB_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}} #{{job_id}}"
COLLECTION_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}}"
JOB_COLUMNS = {
    "milvus_cluster": "Cluster",
    "database": "Database",
    "collection": "Collection",
    "job_id": "Job ID",
}
POLLED = "Values are as of the exporter's last poll of the Milvus job API, not live."
DEDUPLICATED = "Series of several exporters (an HA pair) count once."


@dataclass(frozen=True)
class JobKind:
    """What differs between the sections of two kinds (``overview.section_of`` makes it from
    the exporter's declaration of the kind).

    ``metric`` is the prefix of the kind's series (``milvus_refresh``); ``unfinished`` matches
    the state series of jobs not finished; ``failing`` is the expression of the alert
    ``failing_alert``; ``failed_rows`` / ``failed_when`` are the rows and the time column of
    the failed-jobs table; ``extra_stats``, ``extra_tables`` and ``extra_graphs`` are the
    panels only this kind has, placed after the stats, tables and graphs of every kind.
    """

    kind: str
    metric: str
    noun: str
    plural: str
    row_title: str
    state_colors: dict[str, str]
    completed_state: str
    unfinished: str
    failing: Callable[[tuple[str, ...], str], str]
    failing_alert: str
    failed_description: str
    failed_rows: Callable[[Section], tuple[str, str]]
    failed_when: Callable[[Section], tuple[str, str]]
    extra_stats: tuple[Callable[[Section], Json], ...] = ()
    extra_tables: tuple[Callable[[Section], Json], ...] = ()
    extra_graphs: tuple[Callable[[Section], Json], ...] = ()
    declared: Any = None
    """The exporter's declaration of the kind (``exporter.kinds``), for what is read from it."""


@dataclass(frozen=True)
class Section:
    """A kind with the thresholds it is drawn with."""

    kind: JobKind
    settings: Settings

    def series(self, name: str, *matchers: str) -> str:
        """``series("jobs")`` -> ``milvus_refresh_jobs{<every variable>}``."""
        return selector(f"{self.kind.metric}_{name}", *JOB, *matchers)

    @property
    def lookback(self) -> str:
        return self.settings.alerts.lookback.text

    @property
    def reporting(self) -> str:
        """A series present while an exporter polls this kind for the selected databases."""
        return selector(
            "milvus_jobs_exporter_target_up", *DATABASE_SERIES, f'kind="{self.kind.kind}"'
        )

    def count(self, expr: str) -> str:
        return zero_while_reported(f"count(\n{expressions.indent(expr)}\n)", self.reporting)

    @property
    def unfinished_rows(self) -> str:
        """One series per unfinished job and its current state (value 1)."""
        return f"max by ({JOB_KEY}, state) ({self.series('job_state', self.kind.unfinished)}) == 1"

    def longest_unfinished(self, limit: int) -> str:
        """The ``limit`` unfinished jobs running longest at the end of the time range."""
        duration = self.series("job_duration_seconds")
        state = self.series("job_state", self.kind.unfinished)
        return (
            f"topk({limit},\n"
            f"  max by ({JOB_KEY}) (last_over_time({duration}[$__range] @ end()))\n"
            f"  and on ({JOB_KEY})\n"
            f"  (max by ({JOB_KEY}) (last_over_time({state}[$__range] @ end())) == 1)\n"
            ")"
        )


# --- Panels of every kind ---------------------------------------------------------------------


def jobs_by_state(s: Section) -> Json:
    k = s.kind
    return stat(
        f"{k.noun.capitalize()} jobs by state",
        f"{k.noun.capitalize()} jobs the clusters list right now, per state. Failed jobs stay "
        f"listed for hours after a later success, so they are not coloured here: "
        f"'Collections whose {k.noun} failed' is what pages. {DEDUPLICATED} {POLLED}",
        [
            target(
                f"sum by (state) (max by ({COLLECTION_KEY}, state) ({s.series('jobs')}))",
                "{{state}}",
                instant=True,
            )
        ],
        unit="short",
        steps=thresholds("text"),
        overrides=fixed_colors(k.state_colors),
        text_mode="value_and_name",
    )


def not_finished_count(s: Section) -> Json:
    return stat(
        f"{s.kind.plural.capitalize()} not finished",
        f"{s.kind.noun.capitalize()} jobs whose current state is not final ({s.kind.unfinished}). "
        f"No data: no exporter polls these {s.kind.plural}. {DEDUPLICATED} {POLLED}",
        [
            target(
                s.count(f"max by ({JOB_KEY}) ({s.unfinished_rows})"), "not finished", instant=True
            )
        ],
        unit="short",
        steps=thresholds("blue"),
    )


def failing_count(s: Section) -> Json:
    k = s.kind
    return stat(
        f"Collections whose {k.noun} failed",
        f"Collections whose newest finished {k.noun} failed: what {k.failing_alert} pages on "
        f"(after its for:), with the same expression. Red from 1; 0 once a later {k.noun} "
        f"completes. {POLLED}",
        [target(s.count(k.failing(JOB, s.lookback)), "failing", instant=True)],
        unit="short",
        steps=thresholds("green", (1, "red")),
    )


def duration_over_range(s: Section) -> Json:
    k = s.kind
    bucket = selector(
        f"{k.metric}_duration_seconds_bucket", *DATABASE_SERIES, f'state="{k.completed_state}"'
    )
    merged = f"max by (milvus_cluster, database, le) (increase({bucket}[$__range]))"
    return stat(
        f"Completed {k.noun} duration over the time range",
        f"p50 and p95 of the durations of the {k.plural} the exporter saw complete within the "
        f"time range ({k.metric}_duration_seconds; 'none finished' when none did). The "
        f"histogram has no collection label: the collection filter does not apply. "
        f"{DEDUPLICATED}",
        [
            target(
                f"histogram_quantile({quantile}, sum by (le) ({merged}))",
                f"p{round(quantile * 100)}",
                ref_id=ref_id,
                instant=True,
            )
            for ref_id, quantile in (("A", 0.5), ("B", 0.95))
        ],
        unit="s",
        steps=thresholds("blue"),
        mappings=[
            {
                "type": "special",
                "options": {"match": "nan", "result": {"index": 0, "text": "none finished"}},
            }
        ],
        text_mode="value_and_name",
    )


def progress_override() -> Json:
    return override(
        "Progress",
        unit="percentunit",
        min=0,
        max=1,
        custom__cellOptions={"mode": "basic", "type": "gauge", "valueDisplayMode": "text"},
    )


def unfinished_table(s: Section) -> Json:
    k = s.kind
    rows = s.unfinished_rows
    ranked = expressions.indent(
        or_unknown(
            f"max by ({JOB_KEY}) ({s.series('job_duration_seconds')})\nand on ({JOB_KEY}) ({rows})",
            rows,
            JOB_KEY,
        )
    )
    longest = f"topk({TABLE_ROWS},\n{ranked}\n)"
    return longest_running_table(
        s,
        f"Unfinished {k.plural}, longest first",
        f"The {TABLE_ROWS} unfinished {k.noun} jobs running longest, with their state, how "
        f"long they have been running (poll time minus start; 'unknown' without a start time) "
        f"and their progress. {DEDUPLICATED} {POLLED}",
        rows,
        longest,
        [override("Running for", mappings=unknown_mapping())],
    )


def longest_running_table(
    s: Section, title: str, description: str, rows: str, longest: str, overrides: list[Json]
) -> Json:
    """A table of jobs, longest running first: ``rows`` gives each job's state, ``longest``
    (a topk) how long it has run and which jobs make the cut; progress comes from the job's
    series. ``overrides`` go before the progress column's."""
    return table(
        title,
        description,
        [
            target(f"{rows}\nand on ({JOB_KEY}) {longest}", ref_id="A", instant=True, table=True),
            target(longest, ref_id="B", instant=True, table=True),
            target(
                f"max by ({JOB_KEY}) ({s.series('job_progress_ratio')})\n"
                f"and on ({JOB_KEY}) {longest}",
                ref_id="C",
                instant=True,
                table=True,
            ),
        ],
        columns={
            **JOB_COLUMNS,
            "state": "State",
            "Value #B": "Running for",
            "Value #C": "Progress",
        },
        unit="s",
        overrides=[*overrides, progress_override()],
        sort_by=("Running for", True),
    )


def failed_table(s: Section) -> Json:
    k = s.kind
    rows, key = k.failed_rows(s)
    when, when_title = k.failed_when(s)
    newest = f"topk({TABLE_ROWS},\n{expressions.indent(when)}\n)"
    return table(
        f"Failed {k.plural}",
        f"{k.failed_description} Newest first, at most {TABLE_ROWS}. {POLLED}",
        [
            target(f"{rows}\nand on ({key}) {newest}", ref_id="A", instant=True, table=True),
            target(newest, ref_id="B", instant=True, table=True),
        ],
        columns={**JOB_COLUMNS, "reason": "Reason", "Value #B": when_title},
        unit="dateTimeAsIso",
        overrides=[override(when_title, mappings=unknown_mapping())],
        sort_by=(when_title, True),
    )


def longest_unfinished_graph(
    name: str, title: str, what: str, unit: str
) -> Callable[[Section], Json]:
    """A graph of the per-job series ``name`` of the ``GRAPH_LINES`` longest unfinished jobs."""

    def build(s: Section) -> Json:
        k = s.kind
        return timeseries(
            title.format(plural=k.plural),
            f"{what.format(noun=k.noun)} of the {GRAPH_LINES} unfinished {k.noun} jobs running "
            f"longest at the end of the time range (jobs finished by then are left out). "
            f"{DEDUPLICATED} {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) ({s.series(name)})\n"
                    f"and on ({JOB_KEY}) {s.longest_unfinished(GRAPH_LINES)}",
                    JOB_LEGEND,
                )
            ],
            unit=unit,
            maximum=1 if unit == "percentunit" else None,
        )

    return build


def duration_quantiles(s: Section) -> Json:
    k = s.kind
    bucket = selector(f"{k.metric}_duration_seconds_bucket", *DATABASE_SERIES)
    merged = f"max by (milvus_cluster, database, state, le) (increase({bucket}[{DURATION_WINDOW}]))"
    return timeseries(
        f"{k.noun.capitalize()} duration p50 / p95 over the past day",
        f"Quantiles of the durations of the {k.plural} the exporter saw finish in the day "
        f"before each point, per final state ({k.metric}_duration_seconds): a day, because "
        f"{k.plural} finish a few times a day and a shorter window is mostly empty. The "
        f"collection filter does not apply. {DEDUPLICATED}",
        [
            target(
                f"histogram_quantile({quantile}, sum by (le, state) ({merged}))",
                f"p{round(quantile * 100)} {{{{state}}}}",
                ref_id=ref_id,
            )
            for ref_id, quantile in (("A", 0.5), ("B", 0.95))
        ],
        unit="s",
    )


def jobs_by_state_over_time(s: Section) -> Json:
    k = s.kind
    return timeseries(
        f"{k.noun.capitalize()} jobs by state over time",
        f"Listed {k.noun} jobs per state, stacked. {DEDUPLICATED} {POLLED}",
        [
            target(
                f"sum by (state) (max by ({COLLECTION_KEY}, state) ({s.series('jobs')}))",
                "{{state}}",
            )
        ],
        unit="short",
        stacked=True,
        overrides=fixed_colors(k.state_colors),
    )


def job_kind_section(grid: Grid, kind: JobKind, settings: Settings) -> None:
    """The row of one job kind: counts, then tables, then graphs, all bounded."""
    s = Section(kind, settings)
    grid.row(kind.row_title)
    stats = [jobs_by_state, not_finished_count, failing_count, *kind.extra_stats]
    widths = [6, 3, 4] + [3] * len(kind.extra_stats)
    for build, width in zip(stats, widths, strict=True):
        grid.add(build(s), width, 5)
    grid.add(duration_over_range(s), 24 - sum(widths), 5)
    graphs = [
        longest_unfinished_graph(
            "job_duration_seconds",
            "Duration of the longest unfinished {plural}",
            "Running time (poll time minus start)",
            "s",
        ),
        longest_unfinished_graph(
            "job_progress_ratio",
            "Progress of the longest unfinished {plural}",
            "Progress, 0 to 100 %,",
            "percentunit",
        ),
        *kind.extra_graphs,
        duration_quantiles,
        jobs_by_state_over_time,
    ]
    for build in [unfinished_table, failed_table, *kind.extra_tables, *graphs]:
        grid.add(build(s), 12, 8)
    grid.new_line()
