"""The "Milvus jobs overview" dashboard: what refreshes and imports are doing, per cluster and
collection.

Refreshes and imports are two kinds of the same thing, so one function, ``job_kind_section``,
draws the section of either from a ``JobKind``: the metrics, states and words of the kind, and
the panels it shows, in order, with their sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .layout import Grid, dashboard, dashboard_link, query_variable
from .panels import (
    Json,
    bargauge,
    fixed_colors,
    override,
    selector,
    stat,
    table,
    target,
    thresholds,
    timeseries,
)

OVERVIEW_UID = "milvus-jobs-overview"
EXPORTER_UID = "milvus-jobs-exporter"

# Label matchers of job series: the three chained variables.
CLUSTER = 'milvus_cluster=~"$milvus_cluster"'
DATABASE = 'database=~"$database"'
COLLECTION = 'collection=~"$collection"'
JOB = (CLUSTER, DATABASE, COLLECTION)
JOB_KEY = "milvus_cluster, database, collection, job_id"

JOB_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}} #{{job_id}}"
COLLECTION_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}}"

JOB_COLUMNS = {
    "milvus_cluster": "Cluster",
    "database": "Database",
    "collection": "Collection",
    "job_id": "Job ID",
}

SIX_HOURS = 6 * 3600
ONE_DAY = 24 * 3600

POLLED = "Values are as of the exporter's last poll of the Milvus job API, not live."

PanelBuilder = Callable[["JobKind"], Json]


@dataclass(frozen=True)
class JobKind:
    """What differs between the refresh section and the import section of the overview.

    ``metric`` is the prefix of the kind's series (``milvus_refresh`` / ``milvus_import``);
    ``panels`` lists the section's panels in order as (builder, width, height).
    """

    metric: str
    row_title: str
    noun: str
    plural: str
    state_colors: dict[str, str]
    failed_state: str
    by_state_description: str
    active_title: str
    active_matcher: str
    active_description: str
    failed_listed_description: str
    panels: tuple[tuple[PanelBuilder, int, int], ...]

    def series(self, name: str, *matchers: str) -> str:
        """``series("jobs")`` -> ``milvus_refresh_jobs{<the job variables>}``."""
        return selector(f"{self.metric}_{name}", *JOB, *matchers)

    @property
    def active(self) -> str:
        """The state series of the jobs the kind counts as not finished."""
        return self.series("job_state", self.active_matcher)


# --- Panels every kind has ---------------------------------------------------------------------


def jobs_by_state(kind: JobKind) -> Json:
    return stat(
        f"{kind.noun.capitalize()} jobs by state",
        f"{kind.by_state_description} {POLLED}",
        [target(f"sum by (state) ({kind.series('jobs')})", "{{state}}", instant=True)],
        unit="short",
        steps=thresholds("text"),
        overrides=[
            *fixed_colors(kind.state_colors),
            override(kind.failed_state, thresholds=thresholds("green", (1, "red"))),
        ],
        text_mode="value_and_name",
    )


def active_jobs(kind: JobKind) -> Json:
    return stat(
        kind.active_title,
        f"{kind.active_description} {POLLED}",
        [target(f"count({kind.active} == 1) or vector(0)", "running", instant=True)],
        unit="short",
        steps=thresholds("blue"),
    )


def failed_listed(kind: JobKind) -> Json:
    failed = kind.series("jobs", f'state="{kind.failed_state}"')
    return stat(
        f"Failed {kind.plural} listed",
        f"{kind.failed_listed_description} {POLLED}",
        [target(f"sum({failed}) or vector(0)", "failed", instant=True)],
        unit="short",
        steps=thresholds("green", (1, "red")),
    )


def jobs_by_state_over_time(kind: JobKind) -> Json:
    return timeseries(
        f"{kind.noun.capitalize()} jobs by state over time",
        f"Listed {kind.noun} jobs per state, stacked. {POLLED}",
        [target(f"sum by (state) ({kind.series('jobs')})", "{{state}}")],
        unit="short",
        stacked=True,
        overrides=fixed_colors({**kind.state_colors, kind.failed_state: "red"}),
    )


def per_job(
    name: str, title: str, description: str, *, unit: str, maximum: float | None = None
) -> PanelBuilder:
    """A builder of a graph of the kind's per-job series ``name``, one line per job."""

    def build(kind: JobKind) -> Json:
        return timeseries(
            title,
            f"{description} {POLLED}",
            [target(f"max by ({JOB_KEY}) ({kind.series(name)})", JOB_LEGEND)],
            unit=unit,
            maximum=maximum,
        )

    return build


# --- Panels of one kind ------------------------------------------------------------------------


def targets_down(kind: JobKind) -> Json:
    del kind  # the targets of every kind
    return stat(
        "Targets down",
        "Polled (cluster, database, job kind) targets whose last poll failed: their job "
        "series keep their last values for 3 poll intervals, then disappear. The Milvus "
        "jobs exporter dashboard has the reasons.",
        [
            target(
                "count("
                f"{selector('milvus_jobs_exporter_target_up', CLUSTER, DATABASE)} == 0"
                ") or vector(0)",
                "down",
                instant=True,
            )
        ],
        unit="short",
        steps=thresholds("green", (1, "red")),
    )


def progress_gauge(**properties: object) -> Json:
    return override(
        "Progress",
        **properties,
        min=0,
        max=1,
        custom__cellOptions={"mode": "basic", "type": "gauge", "valueDisplayMode": "text"},
    )


def refreshes_in_progress(kind: JobKind) -> Json:
    running = f"({kind.active} == 1)"
    return table(
        "Refreshes in progress",
        "Each refresh job in RefreshInProgress with its progress and how long it has been "
        f"running (poll time minus start time). {POLLED}",
        [
            target(
                f"max by ({JOB_KEY}) ({kind.series('job_progress_ratio')})"
                f" and on ({JOB_KEY}) {running}",
                ref_id="A",
                instant=True,
                table=True,
            ),
            target(
                f"max by ({JOB_KEY}) ({kind.series('job_duration_seconds')})"
                f" and on ({JOB_KEY}) {running}",
                ref_id="B",
                instant=True,
                table=True,
            ),
        ],
        columns={**JOB_COLUMNS, "Value #A": "Progress", "Value #B": "Running for"},
        unit="percentunit",
        overrides=[progress_gauge(unit="percentunit"), override("Running for", unit="s")],
        sort_by=("Running for", True),
    )


def imports_in_progress(kind: JobKind) -> Json:
    return table(
        "Imports in progress",
        f"Each import job that is not finished, with its current state and progress. {POLLED}",
        [
            target(
                f"max by ({JOB_KEY}) ({kind.series('job_progress_ratio')})"
                f" * on ({JOB_KEY}) group_left (state) "
                f"max by ({JOB_KEY}, state) ({kind.active} == 1)",
                instant=True,
                table=True,
            )
        ],
        columns={**JOB_COLUMNS, "state": "State", "Value": "Progress"},
        unit="percentunit",
        overrides=[progress_gauge()],
        sort_by=("Progress", False),
    )


def time_since_last_refresh(kind: JobKind) -> Json:
    return bargauge(
        "Time since last successful refresh",
        "Per collection, time since the end of its newest completed refresh: green under "
        "6 hours, yellow under 24 hours, red above. A collection with no completed refresh "
        f"among the listed jobs has no bar. {POLLED}",
        [
            target(
                "time() - max by (milvus_cluster, database, collection) ("
                f"{kind.series('last_success_timestamp_seconds')})",
                COLLECTION_LEGEND,
                instant=True,
            )
        ],
        unit="s",
        steps=thresholds("green", (SIX_HOURS, "yellow"), (ONE_DAY, "red")),
    )


def failed_refreshes(kind: JobKind) -> Json:
    failure = kind.series("job_failure_info")
    return table(
        "Failed refreshes",
        "Failed refresh jobs still tracked (every failed job that is the newest finished "
        "job of its collection), with the reason the cluster gave, trimmed to 200 "
        f"characters, and when the job ended. {POLLED}",
        [
            target(
                f"max by ({JOB_KEY}, reason) ({failure})",
                ref_id="A",
                instant=True,
                table=True,
            ),
            target(
                f"max by ({JOB_KEY}) ({kind.series('job_end_timestamp_seconds')}) * 1000"
                f" and on ({JOB_KEY}) {failure}",
                ref_id="B",
                instant=True,
                table=True,
            ),
        ],
        columns={**JOB_COLUMNS, "Value #B": "Ended", "reason": "Reason"},
        unit="dateTimeAsIso",
        sort_by=("Ended", True),
    )


def failed_imports(kind: JobKind) -> Json:
    return table(
        "Failed imports",
        "Failed import jobs still tracked (the newest finished import of each collection "
        f"when it failed), with the reason the cluster gave. {POLLED}",
        [
            target(
                f"max by ({JOB_KEY}, reason) ({kind.series('job_failure_info')})",
                instant=True,
                table=True,
            )
        ],
        columns={**JOB_COLUMNS, "reason": "Reason"},
    )


def refresh_duration_quantiles(kind: JobKind) -> Json:
    histogram = selector(f"{kind.metric}_duration_seconds_bucket", CLUSTER, DATABASE)
    return timeseries(
        "Refresh duration p50 / p95",
        "Quantiles of the durations of refreshes the exporter saw finish, per final state, "
        "from the milvus_refresh_duration_seconds histogram. Gaps mean no refresh finished "
        "in that interval. The histogram has no collection label, so the collection "
        "filter does not apply.",
        [
            target(
                f"histogram_quantile({quantile}, sum by (le, state) "
                f"(rate({histogram}[$__rate_interval])))",
                f"p{round(quantile * 100)} {{{{state}}}}",
                ref_id=ref_id,
            )
            for ref_id, quantile in (("A", 0.5), ("B", 0.95))
        ],
        unit="s",
    )


def completed_refresh_duration(kind: JobKind) -> Json:
    completed = selector(
        f"{kind.metric}_duration_seconds_bucket", CLUSTER, DATABASE, 'state="RefreshCompleted"'
    )
    return stat(
        "Completed refresh duration over the time range",
        "p50 and p95 of the durations of refreshes that completed within the dashboard's "
        "time range (from the histogram; 'none finished' when none did). The collection "
        "filter does not apply.",
        [
            target(
                f"histogram_quantile({quantile}, sum by (le) (increase({completed}[$__range])))",
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


# --- The two kinds -----------------------------------------------------------------------------

REFRESH = JobKind(
    metric="milvus_refresh",
    row_title="Refreshes of external collections",
    noun="refresh",
    plural="refreshes",
    state_colors={
        "RefreshPending": "yellow",
        "RefreshInProgress": "blue",
        "RefreshCompleted": "green",
    },
    failed_state="RefreshFailed",
    by_state_description="Refresh jobs listed by the clusters right now, per state, for the "
    "selected collections. A failed count above 0 turns red.",
    active_title="Refreshes running",
    active_matcher='state="RefreshInProgress"',
    active_description="Refresh jobs whose current state is RefreshInProgress.",
    failed_listed_description="Refresh jobs in RefreshFailed among the jobs the clusters still "
    "list. Finished jobs stay listed for a while, so this falls back to 0 on its own.",
    panels=(
        (jobs_by_state, 10, 5),
        (active_jobs, 4, 5),
        (failed_listed, 5, 5),
        (targets_down, 5, 5),
        (refreshes_in_progress, 12, 8),
        (time_since_last_refresh, 12, 8),
        (failed_refreshes, 24, 8),
        (
            per_job(
                "job_duration_seconds",
                "Refresh duration per job",
                "Duration of each tracked refresh job: end minus start once finished, poll time "
                "minus start while it runs (the line grows).",
                unit="s",
            ),
            10,
            8,
        ),
        (refresh_duration_quantiles, 9, 8),
        (completed_refresh_duration, 5, 8),
        (jobs_by_state_over_time, 24, 7),
    ),
)

IMPORT = JobKind(
    metric="milvus_import",
    row_title="Bulk imports",
    noun="import",
    plural="imports",
    state_colors={"Pending": "yellow", "Importing": "blue", "Completed": "green"},
    failed_state="Failed",
    by_state_description="Import jobs listed by the clusters right now, per state (server "
    "states other than the documented four appear only while a job is in them).",
    active_title="Imports not finished",
    active_matcher='state!~"Completed|Failed"',
    active_description="Import jobs whose current state is neither Completed nor Failed "
    "(Pending, Importing and the other server states).",
    failed_listed_description="Import jobs in Failed among the jobs the clusters still list.",
    panels=(
        (jobs_by_state, 10, 5),
        (active_jobs, 7, 5),
        (failed_listed, 7, 5),
        (imports_in_progress, 12, 8),
        (failed_imports, 12, 8),
        (
            per_job(
                "job_progress_ratio",
                "Import progress per job",
                "Progress of each tracked import job, 0 to 100 %.",
                unit="percentunit",
                maximum=1,
            ),
            12,
            8,
        ),
        (jobs_by_state_over_time, 12, 8),
        (
            per_job(
                "job_imported_rows",
                "Rows imported per job",
                "Rows imported so far by each tracked import job, from import/describe (only "
                "while import_details is on).",
                unit="short",
            ),
            12,
            8,
        ),
        (
            per_job(
                "job_duration_seconds",
                "Import duration per job",
                "Duration of each tracked import job from import/describe: complete minus "
                "create time once finished, poll time minus create time while it runs.",
                unit="s",
            ),
            12,
            8,
        ),
    ),
)


def job_kind_section(grid: Grid, kind: JobKind) -> None:
    """The row of one job kind and its panels, placed in order."""
    grid.row(kind.row_title)
    for build, width, height in kind.panels:
        grid.add(build(kind), width, height)


def overview_dashboard() -> Json:
    """Milvus jobs overview: what refreshes and imports are doing, per cluster and collection."""
    grid = Grid()
    for kind in (REFRESH, IMPORT):
        job_kind_section(grid, kind)
    variables = [
        query_variable(
            "milvus_cluster",
            "Cluster",
            "label_values(milvus_jobs_exporter_target_up, milvus_cluster)",
            all_value=".*",
        ),
        query_variable(
            "database",
            "Database",
            f"label_values({selector('milvus_jobs_exporter_target_up', CLUSTER)}, database)",
            all_value=".*",
        ),
        query_variable(
            "collection",
            "Collection",
            "label_values("
            + selector("", '__name__=~"milvus_refresh_jobs|milvus_import_jobs"', CLUSTER, DATABASE)
            + ", collection)",
            all_value=".*",
        ),
    ]
    return dashboard(
        OVERVIEW_UID,
        "Milvus jobs overview",
        "Refreshes of external collections and bulk imports of Milvus / Zilliz Cloud, as "
        "polled by milvus-jobs-exporter: states, progress, failures with reasons, durations.",
        grid,
        variables,
        dashboard_link("Milvus jobs exporter", EXPORTER_UID),
    )
