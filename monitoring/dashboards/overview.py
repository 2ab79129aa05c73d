"""The "Milvus jobs overview" dashboard: what the jobs of every kind are doing, per cluster and
collection: a Polling row, then one section per job kind the exporter declares
(``job_section.py``, built from the declaration by ``section_of``), with stuck panels for the
kinds that have a stuck alert, refreshes with their stale panels, imports with the rows they
imported.
"""

from __future__ import annotations

from exporter.kinds import AnyKind

from .. import expressions, kinds
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

# --- Stuck jobs, for the kinds that have a stuck alert -------------------------------------


def stuck(s: Section) -> str:
    return kinds.stuck(s.kind.declared, JOB, s.settings)


def stuck_count(s: Section) -> Json:
    alerts = s.settings.alerts
    k = s.kind
    return stat(
        f"Stuck {k.plural}",
        f"{k.plural.capitalize()} running with no progress for "
        f"{alerts.stuck_without_progress.words}, or pending for over {alerts.stuck_pending.words}: "
        f"what {kinds.alert(k.declared, 'Stuck')} pages on (after its for: of "
        f"{alerts.stuck_for.words}). {POLLED}",
        [target(s.count(stuck(s)), "stuck", instant=True)],
        unit="short",
        steps=thresholds("green", (1, "orange")),
    )


def stuck_table(s: Section) -> Json:
    alerts = s.settings.alerts
    k = s.kind
    duration = selector(f"{k.metric}_job_duration_seconds", *JOB)
    longest = (
        f"topk({TABLE_ROWS},\n"
        f"  max by ({JOB_KEY}) (last_over_time({duration}[{s.lookback}]))\n"
        f"  and on ({JOB_KEY}) (\n{expressions.indent(stuck(s), 4)}\n  )\n"
        ")"
    )
    return longest_running_table(
        s,
        f"Stuck {k.noun} jobs",
        f"{k.noun.capitalize()} jobs running with no progress for "
        f"{alerts.stuck_without_progress.words}, or pending for over {alerts.stuck_pending.words}, "
        f"longest first (at most {TABLE_ROWS}): the jobs {kinds.alert(k.declared, 'Stuck')} "
        f"pages on. {POLLED}",
        f"(\n{expressions.indent(stuck(s))}\n)",
        longest,
        [],
    )


# --- Refresh only: staleness ----------------------------------------------------------------


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


# --- The failed-jobs table, by the kind's memory --------------------------------------------


def history_failed_rows(s: Section) -> tuple[str, str]:
    """A kind that remembers each collection's newest success and failure (refresh)."""
    info = s.series("last_failure_info")
    failing = expressions.indent(kinds.failing(s.kind.declared, JOB, s.lookback))
    return (
        f"max by ({COLLECTION_KEY}, job_id, reason) ({info})\nand on ({COLLECTION_KEY}) (\n"
        f"{failing}\n)",
        COLLECTION_KEY,
    )


def history_failed_when(s: Section) -> tuple[str, str]:
    return (
        f"(\n{expressions.indent(kinds.failing(s.kind.declared, JOB, s.lookback))}\n) * 1000",
        "Failed at",
    )


def newest_failed_rows(s: Section) -> tuple[str, str]:
    """A kind that remembers each collection's newest finished job (import, restore)."""
    return f"max by ({JOB_KEY}, reason) ({s.series('job_failure_info')})", JOB_KEY


def newest_failed_when(s: Section) -> tuple[str, str]:
    rows, key = newest_failed_rows(s)
    series, title = s.kind.declared.alerting.failed_time
    when = f"max by ({key}) ({s.series(series)}) * 1000\nand on ({key}) ({rows})"
    return or_unknown(when, rows, key), title


# --- Each kind's section --------------------------------------------------------------------

EXTRA_STATS = {"refresh": (stale_count,)}
EXTRA_TABLES = {"refresh": (time_since_refresh,)}
EXTRA_GRAPHS = {
    "import": (
        longest_unfinished_graph(
            "job_imported_rows",
            "Rows imported by the longest unfinished {plural}",
            "Rows imported so far (import/describe, only while import_details is on)",
            "short",
        ),
    ),
}
"""What only one kind has, by kind name: refresh's staleness, import's rows."""


def section_of(kind: AnyKind) -> JobKind:
    """A kind's section of the overview, from its declaration (and its extras above)."""
    has_history = kind.series.history is not None
    stuck_stats = (stuck_count,) if kind.alerting.stuck else ()
    stuck_tables = (stuck_table,) if kind.alerting.stuck else ()
    return JobKind(
        kind=kind.name,
        metric=kind.metric_prefix,
        noun=kind.noun,
        plural=kind.plural,
        row_title=kind.alerting.row_title,
        state_colors=kinds.state_colours(kind),
        completed_state=kind.states.succeeded,
        unfinished=kinds.unfinished(kind),
        failing=lambda matchers, lookback: kinds.failing(kind, matchers, lookback),
        failing_alert=kinds.alert(kind, "Failed"),
        failed_description=kind.alerting.failed_table,
        failed_rows=history_failed_rows if has_history else newest_failed_rows,
        failed_when=history_failed_when if has_history else newest_failed_when,
        extra_stats=(*stuck_stats, *EXTRA_STATS.get(kind.name, ())),
        extra_tables=(*EXTRA_TABLES.get(kind.name, ()), *stuck_tables),
        extra_graphs=EXTRA_GRAPHS.get(kind.name, ()),
        declared=kind,
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
    for kind in kinds.kinds():
        job_kind_section(grid, section_of(kind), settings)
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
