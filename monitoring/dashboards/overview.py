"""The "Milvus jobs overview" dashboard: what refreshes and imports are doing, per cluster and
collection: a Polling row, then one section per job kind (``job_section.py``), refreshes with
their stuck and stale panels, imports with the rows they imported.
"""

from __future__ import annotations

from .. import expressions
from ..expressions import COLLECTION_KEY, JOB_KEY, selector
from ..settings import Settings
from .job_section import (
    BARS,
    COLLECTION_LEGEND,
    DATABASE_SERIES,
    JOB,
    POLLED,
    TABLE_ROWS,
    JobKind,
    Section,
    job_kind_section,
    longest_running_table,
    longest_unfinished_graph,
)
from .layout import (
    CLUSTER,
    EXPORTER_UID,
    OVERVIEW_UID,
    SCRAPE,
    Grid,
    dashboard,
    dashboard_link,
    panel_id,
    query_variable,
    scrape_variables,
    textbox_variable,
)
from .panels import (
    Json,
    bargauge,
    linked,
    or_unknown,
    stat,
    target,
    thresholds,
    zero_while_reported,
)

# --- Refresh only -----------------------------------------------------------------------------


def stuck(s: Section) -> str:
    alerts = s.settings.alerts
    return expressions.stuck_refreshes(
        JOB, s.lookback, alerts.stuck_without_progress, alerts.stuck_pending
    )


def stuck_count(s: Section) -> Json:
    alerts = s.settings.alerts
    return stat(
        "Stuck refreshes",
        f"Refreshes running with no progress for {alerts.stuck_without_progress.words}, or "
        f"pending for over {alerts.stuck_pending.words}: what MilvusRefreshJobStuck pages on "
        f"(after its for: of {alerts.stuck_for.words}). {POLLED}",
        [target(s.count(stuck(s)), "stuck", instant=True)],
        unit="short",
        steps=thresholds("green", (1, "orange")),
    )


def stale_count(s: Section) -> Json:
    alerts = s.settings.alerts
    since = expressions.time_since_refresh(JOB, s.lookback)
    return stat(
        "Stale collections",
        f"Collections without a successful refresh for {alerts.stale_after.words}: what "
        f"MilvusExternalCollectionStale pages on (after its for: of {alerts.stale_for.words}). "
        f"{POLLED}",
        [target(s.count(f"{since}\n> {alerts.stale_after.seconds}"), "stale", instant=True)],
        unit="short",
        steps=thresholds("green", (1, "orange")),
    )


def time_since_refresh(s: Section) -> Json:
    settings = s.settings
    since = expressions.indent(expressions.time_since_refresh(JOB, s.lookback))
    objective, stale = settings.dashboards.freshness_objective, settings.alerts.stale_after
    return bargauge(
        "Time since last successful refresh",
        f"The {BARS} collections with the oldest newest successful refresh, stalest first: "
        f"green within the freshness objective ({objective.words}), yellow beyond it, red from "
        f"{stale.words} on (MilvusExternalCollectionStale). A collection that never refreshed "
        f"successfully has no bar. {POLLED}",
        [target(f"sort_desc(topk({BARS},\n{since}\n))", COLLECTION_LEGEND, instant=True)],
        unit="s",
        steps=thresholds("green", (objective.seconds, "yellow"), (stale.seconds, "red")),
    )


def stuck_table(s: Section) -> Json:
    alerts = s.settings.alerts
    duration = selector("milvus_refresh_job_duration_seconds", *JOB)
    longest = (
        f"topk({TABLE_ROWS},\n"
        f"  max by ({JOB_KEY}) (last_over_time({duration}[{s.lookback}]))\n"
        f"  and on ({JOB_KEY}) (\n{expressions.indent(stuck(s), 4)}\n  )\n"
        ")"
    )
    return longest_running_table(
        s,
        "Stuck refresh jobs",
        f"Refresh jobs running with no progress for {alerts.stuck_without_progress.words}, or "
        f"pending for over {alerts.stuck_pending.words}, longest first (at most {TABLE_ROWS}): "
        f"the jobs MilvusRefreshJobStuck pages on. {POLLED}",
        f"(\n{expressions.indent(stuck(s))}\n)",
        longest,
        [],
    )


def refresh_failed_rows(s: Section) -> tuple[str, str]:
    info = s.series("last_failure_info")
    failing = expressions.indent(expressions.refresh_failing(JOB, s.lookback))
    return (
        f"max by ({COLLECTION_KEY}, job_id, reason) ({info})\nand on ({COLLECTION_KEY}) (\n"
        f"{failing}\n)",
        COLLECTION_KEY,
    )


def refresh_failed_when(s: Section) -> tuple[str, str]:
    return (
        f"(\n{expressions.indent(expressions.refresh_failing(JOB, s.lookback))}\n) * 1000",
        "Failed at",
    )


# --- Import only ------------------------------------------------------------------------------


def import_failed_rows(s: Section) -> tuple[str, str]:
    return f"max by ({JOB_KEY}, reason) ({s.series('job_failure_info')})", JOB_KEY


def import_failed_when(s: Section) -> tuple[str, str]:
    rows, key = import_failed_rows(s)
    created = f"max by ({key}) ({s.series('job_create_timestamp_seconds')}) * 1000\nand on ({key}) ({rows})"
    return or_unknown(created, rows, key), "Created"


# --- The two kinds ----------------------------------------------------------------------------

REFRESH = JobKind(
    kind="refresh",
    metric="milvus_refresh",
    noun="refresh",
    plural="refreshes",
    row_title="Refreshes of external collections",
    state_colors={
        "RefreshPending": "yellow",
        "RefreshInProgress": "blue",
        "RefreshCompleted": "green",
        "RefreshFailed": "text",
    },
    completed_state="RefreshCompleted",
    unfinished='state=~"RefreshPending|RefreshInProgress"',
    failing=expressions.refresh_failing,
    failing_alert="MilvusRefreshJobFailed",
    failed_description="Collections whose newest finished refresh failed (its failure is newer "
    "than its last success: the collections MilvusRefreshJobFailed pages on), with the job and "
    "the reason the cluster gave (trimmed to 200 characters) and when the refresh ended.",
    failed_rows=refresh_failed_rows,
    failed_when=refresh_failed_when,
    extra_stats=(stuck_count, stale_count),
    extra_tables=(time_since_refresh, stuck_table),
)

IMPORT = JobKind(
    kind="import",
    metric="milvus_import",
    noun="import",
    plural="imports",
    row_title="Bulk imports",
    state_colors={
        "Pending": "yellow",
        "Importing": "blue",
        "Completed": "green",
        "Failed": "text",
    },
    completed_state="Completed",
    unfinished='state!~"Completed|Failed"',
    failing=expressions.import_failing,
    failing_alert="MilvusImportJobFailed",
    failed_description="The newest finished import of each collection, when it failed (the "
    "collections MilvusImportJobFailed pages on), with the reason the cluster gave and when the "
    "job was created ('unknown' without import_details).",
    failed_rows=import_failed_rows,
    failed_when=import_failed_when,
    extra_graphs=(
        longest_unfinished_graph(
            "job_imported_rows",
            "Rows imported by the longest unfinished {plural}",
            "Rows imported so far (import/describe, only while import_details is on)",
            "short",
        ),
    ),
)


def polling_row(grid: Grid, settings: Settings, exporter: Json) -> None:
    """Whether the numbers below can be trusted: targets down, untracked jobs, last poll."""
    del settings
    grid.row("Polling")
    targets = selector("milvus_jobs_exporter_target_up", *DATABASE_SERIES)
    to_exporter = (
        f"/d/{EXPORTER_UID}?${{__url_time_range}}&${{datasource:queryparam}}&${{job:queryparam}}"
        f"&${{instance:queryparam}}&${{milvus_cluster:queryparam}}"
    )
    grid.add(
        linked(
            stat(
                "Targets down",
                "Polled (cluster, database, job kind) targets some exporter could not poll at "
                "its last attempt (what MilvusJobsExporterTargetDown watches): their job series "
                "keep their last values meanwhile. The link opens the exporter dashboard's "
                "table of the reasons, with the same job, instance and cluster selected.",
                [
                    target(
                        zero_while_reported(
                            f"count({expressions.targets_down(DATABASE_SERIES)})", targets
                        ),
                        "down",
                        instant=True,
                    )
                ],
                unit="short",
                steps=thresholds("green", (1, "red")),
            ),
            "Why: the targets down, on the Milvus jobs exporter dashboard",
            f"{to_exporter}&viewPanel={panel_id(exporter, 'Targets down, longest first')}",
        ),
        8,
        4,
    )
    grid.add(
        stat(
            "Untracked jobs",
            "The most jobs any exporter leaves without per-job series because "
            "max_tracked_jobs was reached (they still count in the per-state totals). Above "
            "0, raise max_tracked_jobs: the per-job panels miss those jobs.",
            [
                target(
                    f"max({selector('milvus_jobs_exporter_untracked_jobs', *SCRAPE)})",
                    "untracked",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        8,
        4,
    )
    grid.add(
        stat(
            "Since the last poll cycle",
            "How old the newest data is: time since the most recent poll cycle of any exporter, "
            "as the exporters measure it themselves (a host clock that is off does not change "
            "it). It should stay under poll_interval; MilvusJobsExporterStalled fires when an "
            "exporter stops polling.",
            [
                target(
                    f"min(\n{expressions.indent(expressions.cycle_age(SCRAPE))}\n)",
                    "age",
                    instant=True,
                )
            ],
            unit="s",
        ),
        8,
        4,
    )


def overview_dashboard(settings: Settings, exporter: Json) -> Json:
    """Milvus jobs overview; ``exporter`` is the exporter dashboard, for links to its panels."""
    grid = Grid()
    polling_row(grid, settings, exporter)
    for kind in (REFRESH, IMPORT):
        job_kind_section(grid, kind, settings)
    targets = selector("milvus_jobs_exporter_target_up", *SCRAPE)
    variables = [
        *scrape_variables(settings.scrape_job_selector),
        query_variable(
            "milvus_cluster", "Cluster", f"label_values({targets}, milvus_cluster)", all_value=".*"
        ),
        query_variable(
            "database",
            "Database",
            f"label_values({selector('milvus_jobs_exporter_target_up', *SCRAPE, CLUSTER)}, database)",
            all_value=".*",
        ),
        textbox_variable(
            "collection",
            "Collection",
            "A regular expression of collection names (.* for all; a_.*|b for some). Free text, "
            "not a list: a list of thousands of collections loads slowly and cannot be "
            "scrolled. Alert links fill it in.",
        ),
    ]
    return dashboard(
        OVERVIEW_UID,
        "Milvus jobs overview",
        "Refreshes of external collections and bulk imports of Milvus / Zilliz Cloud, as "
        "polled by milvus-jobs-exporter: states, unfinished and failed jobs with reasons, stuck "
        "and stale refreshes, durations. Thresholds come from prometheus/thresholds.yml, as "
        "the alerts' do.",
        grid,
        variables,
        dashboard_link("Milvus jobs exporter", EXPORTER_UID),
    )
