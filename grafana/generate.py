"""Generate the Grafana dashboards of milvus-jobs-exporter: this file is their only source.

The JSON under ``grafana/dashboards/`` is written by this script and committed; edit the panels
here, never the JSON. Output is deterministic (sorted keys, 2-space indent, trailing newline), so
a stale file shows up as a diff::

    python grafana/generate.py            # (re)write grafana/dashboards/*.json
    python grafana/generate.py --check    # exit 1 if a committed file differs from the output

Stdlib only, so it runs anywhere the repository is checked out. ``panel_queries`` lists every
PromQL expression of a dashboard for the tests that run them against a real Prometheus.

Every panel and query uses the ``${datasource}`` variable, never a data source id, and every
selector of a job series carries ``milvus_cluster=~"$milvus_cluster"`` (plus ``database`` and
``collection`` where the series has them), so the dashboards work on any Grafana as provisioned.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]

SCHEMA_VERSION = 39
DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
GRID_WIDTH = 24
TAGS = ["milvus", "milvus-jobs-exporter"]

OVERVIEW_UID = "milvus-jobs-overview"
EXPORTER_UID = "milvus-jobs-exporter"

# Label matchers, one per kind of series. Job series of the overview are filtered by the three
# chained variables; the exporter dashboard also filters by scrape job and instance, because its
# own series (poll cycle, process) carry no milvus_cluster label.
CLUSTER = 'milvus_cluster=~"$milvus_cluster"'
DATABASE = 'database=~"$database"'
COLLECTION = 'collection=~"$collection"'
SCRAPE_JOB = 'job=~"$job"'
SCRAPE_INSTANCE = 'instance=~"$instance"'
JOB_KEY = "milvus_cluster, database, collection, job_id"
REFRESH_COMPLETED = 'state="RefreshCompleted"'
REFRESH_FAILED = 'state="RefreshFailed"'
IMPORT_FAILED = 'state="Failed"'
TARGET_KEY = "milvus_cluster, database, kind"

JOB_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}} #{{job_id}}"
COLLECTION_LEGEND = "{{milvus_cluster}} / {{database}} / {{collection}}"
TARGET_LEGEND = "{{milvus_cluster}} / {{database}} / {{kind}}"

SIX_HOURS = 6 * 3600
ONE_DAY = 24 * 3600

REFRESH_STATE_COLORS = {
    "RefreshPending": "yellow",
    "RefreshInProgress": "blue",
    "RefreshCompleted": "green",
}
IMPORT_STATE_COLORS = {"Pending": "yellow", "Importing": "blue", "Completed": "green"}

JOB_COLUMNS = {
    "milvus_cluster": "Cluster",
    "database": "Database",
    "collection": "Collection",
    "job_id": "Job ID",
}
TARGET_COLUMNS = {"milvus_cluster": "Cluster", "database": "Database", "kind": "Kind"}


def selector(metric: str, *matchers: str) -> str:
    """``selector("up", 'job=~"$job"')`` -> ``up{job=~"$job"}``."""
    return f"{metric}{{{', '.join(matchers)}}}"


def zero_when_empty(expr: str, label: str) -> str:
    """``expr``, or one series at 0 labelled ``label="(none)"`` when ``expr`` has no series.

    ``or on ()`` matches on no label, so the zero joins only when the left side is empty; a
    plain ``or vector(0)`` after ``sum by (...)`` would add it next to every real series.
    """
    return f'{expr} or on () label_replace(vector(0), "{label}", "(none)", "", "")'


def datasource() -> Json:
    return {"type": "prometheus", "uid": "${datasource}"}


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: ``base`` colour below the first step, then each step's colour."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def value_mapping(texts: dict[str, tuple[str, str]]) -> list[Json]:
    """``{"1": ("UP", "green")}`` -> Grafana value mappings showing a word in a colour."""
    return [
        {
            "type": "value",
            "options": {
                value: {"color": color, "index": index, "text": text}
                for index, (value, (text, color)) in enumerate(texts.items())
            },
        }
    ]


UP_DOWN = value_mapping({"1": ("UP", "green"), "0": ("DOWN", "red")})


def override(field_name: str, **properties: Any) -> Json:
    """A field override by display name; ``custom__x`` stands for the property ``custom.x``."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [
            {"id": key.replace("__", "."), "value": value} for key, value in properties.items()
        ],
    }


def fixed_colors(colors: dict[str, str]) -> list[Json]:
    return [
        override(name, color={"fixedColor": color, "mode": "fixed"})
        for name, color in colors.items()
    ]


def target(
    expr: str,
    legend: str = "",
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> Json:
    return {
        "datasource": datasource(),
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref_id,
    }


def _panel(
    panel_type: str,
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    defaults: Json,
    options: Json,
    overrides: list[Json] | None = None,
) -> Json:
    return {
        "datasource": datasource(),
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "id": panel_id,
        "options": options,
        "targets": targets,
        "title": title,
        "type": panel_type,
    }


def _field_defaults(
    unit: str,
    *,
    color: Json,
    steps: Json | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    mappings: list[Json] | None = None,
    custom: Json | None = None,
    decimals: int | None = None,
) -> Json:
    defaults: Json = {
        "color": color,
        "mappings": mappings or [],
        "thresholds": steps or thresholds("green"),
        "unit": unit,
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom is not None:
        defaults["custom"] = custom
    if decimals is not None:
        defaults["decimals"] = decimals
    return defaults


def _reduce_last() -> Json:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    steps: Json | None = None,
    overrides: list[Json] | None = None,
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    decimals: int | None = None,
) -> Json:
    """A single number (or one per series), coloured by thresholds."""
    return _panel(
        "stat",
        panel_id,
        title,
        description,
        targets,
        _field_defaults(
            unit,
            color={"mode": "thresholds"},
            steps=steps,
            mappings=mappings,
            decimals=decimals,
        ),
        {
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": _reduce_last(),
            "showPercentChange": False,
            "textMode": text_mode,
            "wideLayout": True,
        },
        overrides,
    )


def timeseries(
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    minimum: float | None = 0,
    maximum: float | None = None,
    stacked: bool = False,
    steps: Json | None = None,
    overrides: list[Json] | None = None,
) -> Json:
    """A graph over the dashboard's time range; ``steps`` draws thresholds as dashed lines."""
    custom = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "barAlignment": 0,
        "drawStyle": "line",
        "fillOpacity": 30 if stacked else 10,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "auto",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "dashed" if steps else "off"},
    }
    return _panel(
        "timeseries",
        panel_id,
        title,
        description,
        targets,
        _field_defaults(
            unit,
            color={"mode": "palette-classic"},
            steps=steps,
            minimum=minimum,
            maximum=maximum,
            custom=custom,
        ),
        {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        overrides,
    )


def bargauge(
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str,
    steps: Json,
    minimum: float | None = 0,
    maximum: float | None = None,
) -> Json:
    """One horizontal bar per series, coloured by thresholds: a ranking at a glance."""
    return _panel(
        "bargauge",
        panel_id,
        title,
        description,
        targets,
        _field_defaults(
            unit, color={"mode": "thresholds"}, steps=steps, minimum=minimum, maximum=maximum
        ),
        {
            "displayMode": "gradient",
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": _reduce_last(),
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        },
    )


def state_timeline(
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    *,
    mappings: list[Json],
) -> Json:
    """One lane per series; value mappings turn 0/1 into coloured words."""
    return _panel(
        "state-timeline",
        panel_id,
        title,
        description,
        targets,
        _field_defaults(
            "none",
            color={"mode": "thresholds"},
            mappings=mappings,
            custom={
                "fillOpacity": 80,
                "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                "insertNulls": False,
                "lineWidth": 0,
                "spanNulls": False,
            },
        ),
        {
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "auto",
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def table(
    panel_id: int,
    title: str,
    description: str,
    targets: list[Json],
    *,
    columns: dict[str, str],
    unit: str | None = None,
    overrides: list[Json] | None = None,
    sort_by: tuple[str, bool] | None = None,
) -> Json:
    """An instant table; ``columns`` maps the fields to show, in order, to their headers.

    Each query's value field is ``Value`` when there is one query and ``Value #<refId>`` when
    there are several (joined on their labels by a ``merge``); a value field not in ``columns``
    is hidden, and so is every other field (time, scrape labels). ``unit`` is required whenever a
    value field is shown.
    """
    value_fields = (
        ["Value"] if len(targets) == 1 else [f"Value #{item['refId']}" for item in targets]
    )
    hidden = {"Time": True, "__name__": True, "job": True, "instance": True}
    hidden.update({name: True for name in value_fields if name not in columns})
    transformations: list[Json] = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": hidden,
                "includeByName": {},
                "indexByName": {name: index for index, name in enumerate(columns)},
                "renameByName": columns,
            },
        }
    )
    panel = _panel(
        "table",
        panel_id,
        title,
        description,
        targets,
        _field_defaults(
            unit or "none",
            color={"mode": "thresholds"},
            custom={
                "align": "auto",
                "cellOptions": {"type": "auto"},
                "filterable": True,
                "inspect": True,
            },
        ),
        {
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
            "sortBy": (
                [{"desc": sort_by[1], "displayName": sort_by[0]}] if sort_by is not None else []
            ),
        },
        overrides,
    )
    panel["transformations"] = transformations
    return panel


def row(panel_id: int, title: str) -> Json:
    return {
        "collapsed": False,
        "datasource": datasource(),
        "id": panel_id,
        "panels": [],
        "title": title,
        "type": "row",
    }


class Grid:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new line."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def add(self, panel: Json, width: int, height: int) -> None:
        if self._x + width > GRID_WIDTH:
            self.new_line()
        panel["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._line_height = max(self._line_height, height)
        self.panels.append(panel)

    def new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def row(self, panel_id: int, title: str) -> None:
        self.new_line()
        self.add(row(panel_id, title), GRID_WIDTH, 1)
        self.new_line()


def datasource_variable() -> Json:
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def query_variable(name: str, label: str, query: str, *, all_value: str | None) -> Json:
    """A multi-value ``label_values`` variable whose default is All.

    ``all_value=".*"`` makes All match every value, including ones that appear after the
    variable was refreshed; ``None`` makes All the list of values found, which keeps queries on
    generic series (``up``, ``process_*``) from matching unrelated scrape jobs.
    """
    return {
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": datasource(),
        "definition": query,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def dashboard(
    uid: str, title: str, description: str, grid: Grid, variables: list[Json], link: Json
) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [link],
        "liveNow": False,
        "panels": grid.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def dashboard_link(title: str, uid: str) -> Json:
    return {
        "asDropdown": False,
        "icon": "dashboard",
        "includeVars": True,
        "keepTime": True,
        "tags": [],
        "targetBlank": False,
        "title": title,
        "tooltip": "",
        "type": "link",
        "url": f"/d/{uid}",
    }


POLLED = "Values are as of the exporter's last poll of the Milvus job API, not live."


def overview_dashboard() -> Json:
    """Milvus jobs overview: what refreshes and imports are doing, per cluster and collection."""
    job = (CLUSTER, DATABASE, COLLECTION)
    refresh_running = selector("milvus_refresh_job_state", *job, 'state="RefreshInProgress"')
    import_unfinished = selector("milvus_import_job_state", *job, 'state!~"Completed|Failed"')
    grid = Grid()

    grid.row(100, "Refreshes of external collections")
    grid.add(
        stat(
            1,
            "Refresh jobs by state",
            "Refresh jobs listed by the clusters right now, per state, for the selected "
            f"collections. A failed count above 0 turns red. {POLLED}",
            [
                target(
                    f"sum by (state) ({selector('milvus_refresh_jobs', *job)})",
                    "{{state}}",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("text"),
            overrides=[
                *fixed_colors(REFRESH_STATE_COLORS),
                override("RefreshFailed", thresholds=thresholds("green", (1, "red"))),
            ],
            text_mode="value_and_name",
        ),
        10,
        5,
    )
    grid.add(
        stat(
            2,
            "Refreshes running",
            f"Refresh jobs whose current state is RefreshInProgress. {POLLED}",
            [target(f"count({refresh_running} == 1) or vector(0)", "running", instant=True)],
            unit="short",
            steps=thresholds("blue"),
        ),
        4,
        5,
    )
    grid.add(
        stat(
            3,
            "Failed refreshes listed",
            "Refresh jobs in RefreshFailed among the jobs the clusters still list. Finished "
            f"jobs stay listed for a while, so this falls back to 0 on its own. {POLLED}",
            [
                target(
                    f"sum({selector('milvus_refresh_jobs', *job, REFRESH_FAILED)}) or vector(0)",
                    "failed",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "red")),
        ),
        5,
        5,
    )
    grid.add(
        stat(
            4,
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
        ),
        5,
        5,
    )
    grid.add(
        table(
            5,
            "Refreshes in progress",
            "Each refresh job in RefreshInProgress with its progress and how long it has been "
            f"running (poll time minus start time). {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) "
                    f"({selector('milvus_refresh_job_progress_ratio', *job)})"
                    f" and on ({JOB_KEY}) ({refresh_running} == 1)",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by ({JOB_KEY}) "
                    f"({selector('milvus_refresh_job_duration_seconds', *job)})"
                    f" and on ({JOB_KEY}) ({refresh_running} == 1)",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
            ],
            columns={**JOB_COLUMNS, "Value #A": "Progress", "Value #B": "Running for"},
            unit="percentunit",
            overrides=[
                override(
                    "Progress",
                    unit="percentunit",
                    min=0,
                    max=1,
                    custom__cellOptions={
                        "mode": "basic",
                        "type": "gauge",
                        "valueDisplayMode": "text",
                    },
                ),
                override("Running for", unit="s"),
            ],
            sort_by=("Running for", True),
        ),
        12,
        8,
    )
    grid.add(
        bargauge(
            6,
            "Time since last successful refresh",
            "Per collection, time since the end of its newest completed refresh: green under "
            "6 hours, yellow under 24 hours, red above. A collection with no completed refresh "
            f"among the listed jobs has no bar. {POLLED}",
            [
                target(
                    "time() - max by (milvus_cluster, database, collection) ("
                    f"{selector('milvus_refresh_last_success_timestamp_seconds', *job)})",
                    COLLECTION_LEGEND,
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds("green", (SIX_HOURS, "yellow"), (ONE_DAY, "red")),
        ),
        12,
        8,
    )
    grid.add(
        table(
            7,
            "Failed refreshes",
            "Failed refresh jobs still tracked (every failed job that is the newest finished "
            "job of its collection), with the reason the cluster gave, trimmed to 200 "
            f"characters, and when the job ended. {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}, reason) "
                    f"({selector('milvus_refresh_job_failure_info', *job)})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by ({JOB_KEY}) "
                    f"({selector('milvus_refresh_job_end_timestamp_seconds', *job)}) * 1000"
                    f" and on ({JOB_KEY}) "
                    f"{selector('milvus_refresh_job_failure_info', *job)}",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
            ],
            columns={**JOB_COLUMNS, "Value #B": "Ended", "reason": "Reason"},
            unit="dateTimeAsIso",
            sort_by=("Ended", True),
        ),
        24,
        8,
    )
    grid.add(
        timeseries(
            8,
            "Refresh duration per job",
            "Duration of each tracked refresh job: end minus start once finished, poll time "
            f"minus start while it runs (the line grows). {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) ({selector('milvus_refresh_job_duration_seconds', *job)})",
                    JOB_LEGEND,
                )
            ],
            unit="s",
        ),
        10,
        8,
    )
    histogram = selector("milvus_refresh_duration_seconds_bucket", CLUSTER, DATABASE)
    grid.add(
        timeseries(
            9,
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
        ),
        9,
        8,
    )
    grid.add(
        stat(
            10,
            "Completed refresh duration over the time range",
            "p50 and p95 of the durations of refreshes that completed within the dashboard's "
            "time range (from the histogram; 'none finished' when none did). The collection "
            "filter does not apply.",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (le) (increase("
                    f"{selector('milvus_refresh_duration_seconds_bucket', CLUSTER, DATABASE, REFRESH_COMPLETED)}"
                    "[$__range])))",
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
        ),
        5,
        8,
    )
    grid.add(
        timeseries(
            11,
            "Refresh jobs by state over time",
            f"Listed refresh jobs per state, stacked. {POLLED}",
            [
                target(
                    f"sum by (state) ({selector('milvus_refresh_jobs', *job)})",
                    "{{state}}",
                )
            ],
            unit="short",
            stacked=True,
            overrides=fixed_colors({**REFRESH_STATE_COLORS, "RefreshFailed": "red"}),
        ),
        24,
        7,
    )

    grid.row(101, "Bulk imports")
    grid.add(
        stat(
            12,
            "Import jobs by state",
            "Import jobs listed by the clusters right now, per state (server states other than "
            f"the documented four appear only while a job is in them). {POLLED}",
            [
                target(
                    f"sum by (state) ({selector('milvus_import_jobs', *job)})",
                    "{{state}}",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("text"),
            overrides=[
                *fixed_colors(IMPORT_STATE_COLORS),
                override("Failed", thresholds=thresholds("green", (1, "red"))),
            ],
            text_mode="value_and_name",
        ),
        10,
        5,
    )
    grid.add(
        stat(
            13,
            "Imports not finished",
            "Import jobs whose current state is neither Completed nor Failed (Pending, "
            f"Importing and the other server states). {POLLED}",
            [target(f"count({import_unfinished} == 1) or vector(0)", "running", instant=True)],
            unit="short",
            steps=thresholds("blue"),
        ),
        7,
        5,
    )
    grid.add(
        stat(
            14,
            "Failed imports listed",
            f"Import jobs in Failed among the jobs the clusters still list. {POLLED}",
            [
                target(
                    f"sum({selector('milvus_import_jobs', *job, IMPORT_FAILED)}) or vector(0)",
                    "failed",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "red")),
        ),
        7,
        5,
    )
    grid.add(
        table(
            15,
            "Imports in progress",
            f"Each import job that is not finished, with its current state and progress. {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) "
                    f"({selector('milvus_import_job_progress_ratio', *job)})"
                    f" * on ({JOB_KEY}) group_left (state) "
                    f"max by ({JOB_KEY}, state) ({import_unfinished} == 1)",
                    instant=True,
                    table=True,
                )
            ],
            columns={**JOB_COLUMNS, "state": "State", "Value": "Progress"},
            unit="percentunit",
            overrides=[
                override(
                    "Progress",
                    min=0,
                    max=1,
                    custom__cellOptions={
                        "mode": "basic",
                        "type": "gauge",
                        "valueDisplayMode": "text",
                    },
                )
            ],
            sort_by=("Progress", False),
        ),
        12,
        8,
    )
    grid.add(
        table(
            16,
            "Failed imports",
            "Failed import jobs still tracked (the newest finished import of each collection "
            f"when it failed), with the reason the cluster gave. {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}, reason) "
                    f"({selector('milvus_import_job_failure_info', *job)})",
                    instant=True,
                    table=True,
                )
            ],
            columns={**JOB_COLUMNS, "reason": "Reason"},
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            17,
            "Import progress per job",
            f"Progress of each tracked import job, 0 to 100 %. {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) ({selector('milvus_import_job_progress_ratio', *job)})",
                    JOB_LEGEND,
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            18,
            "Import jobs by state over time",
            f"Listed import jobs per state, stacked. {POLLED}",
            [target(f"sum by (state) ({selector('milvus_import_jobs', *job)})", "{{state}}")],
            unit="short",
            stacked=True,
            overrides=fixed_colors({**IMPORT_STATE_COLORS, "Failed": "red"}),
        ),
        12,
        8,
    )

    grid.add(
        timeseries(
            19,
            "Rows imported per job",
            "Rows imported so far by each tracked import job, from import/describe (only while "
            f"import_details is on). {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) ({selector('milvus_import_job_imported_rows', *job)})",
                    JOB_LEGEND,
                )
            ],
            unit="short",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            20,
            "Import duration per job",
            "Duration of each tracked import job from import/describe: complete minus create "
            f"time once finished, poll time minus create time while it runs. {POLLED}",
            [
                target(
                    f"max by ({JOB_KEY}) ({selector('milvus_import_job_duration_seconds', *job)})",
                    JOB_LEGEND,
                )
            ],
            unit="s",
        ),
        12,
        8,
    )

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


def exporter_dashboard() -> Json:
    """Milvus jobs exporter: is the exporter polling, how the API answers, what it costs."""
    scrape = (SCRAPE_JOB, SCRAPE_INSTANCE)
    target_series = (CLUSTER, *scrape)
    requests = "milvus_jobs_exporter_api_requests_total"
    rate_limited = selector(requests, *target_series, 'outcome="rate_limited"')
    grid = Grid()

    grid.row(100, "Targets")
    grid.add(
        stat(
            1,
            "Targets up",
            "Polled (cluster, database, job kind) targets whose last poll succeeded.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_target_up', *target_series)})"
                    " or vector(0)",
                    "up",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green"),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            2,
            "Targets down",
            "Targets whose last poll failed; the Targets table has the reason.",
            [
                target(
                    f"count({selector('milvus_jobs_exporter_target_up', *target_series)} == 0)"
                    " or vector(0)",
                    "down",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "red")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            3,
            "Untracked jobs",
            "Jobs left without per-job series because max_tracked_jobs was reached (they "
            "still count in the per-state totals). Above 0: raise max_tracked_jobs.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_untracked_jobs', *scrape)}) or vector(0)",
                    "untracked",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            4,
            "Jobs in unknown states",
            "Listed jobs whose state the exporter does not know (kept with the state as sent). "
            "Above 0: the Milvus API has a new state worth a look.",
            [
                target(
                    "sum("
                    f"{selector('milvus_jobs_exporter_unknown_state_jobs', *target_series)}"
                    ") or vector(0)",
                    "unknown",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            5,
            "Last poll cycle",
            "How long the last full poll cycle took. It should stay well under poll_interval "
            "(30 s by default): yellow from 15 s, red from 30 s.",
            [
                target(
                    f"max({selector('milvus_jobs_exporter_poll_cycle_duration_seconds', *scrape)})",
                    "cycle",
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds("green", (15, "yellow"), (30, "red")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            6,
            "Rate-limited requests in range",
            "Requests the Milvus API refused with a rate-limit answer within the time range. "
            "The exporter keeps under the documented limit, so any is worth a look (another "
            "client sharing the token?).",
            [
                target(
                    f"sum(increase({rate_limited}[$__range])) or vector(0)",
                    "rate limited",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
            decimals=0,
        ),
        4,
        4,
    )
    grid.add(
        table(
            7,
            "Targets",
            "Every polled target: UP or DOWN with the reason of its last failure (timeout, "
            "connect, tls, http_<status>, auth, rate_limited, bad_json, bad_response, "
            "too_large, api_<code>, internal), and the time since its last successful poll.",
            [
                target(
                    f"max by ({TARGET_KEY}, reason) ("
                    f"{selector('milvus_jobs_exporter_target_error_info', *target_series)} * 0)"
                    f" or on ({TARGET_KEY}) max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_target_up', *target_series)})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"time() - max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_last_success_timestamp_seconds', *target_series)})",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
            ],
            columns={
                **TARGET_COLUMNS,
                "Value #A": "Status",
                "reason": "Reason",
                "Value #B": "Since last success",
            },
            unit="s",
            overrides=[
                override(
                    "Status",
                    unit="none",
                    mappings=UP_DOWN,
                    custom__cellOptions={"type": "color-background"},
                ),
            ],
            sort_by=("Status", False),
        ),
        14,
        8,
    )
    grid.add(
        bargauge(
            8,
            "Time since last successful poll",
            "Per target, time since its last successful poll: green under 90 s (3 default "
            "poll intervals, after which a failed target's job series disappear), yellow "
            "under 5 minutes, red above.",
            [
                target(
                    f"time() - max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_last_success_timestamp_seconds', *target_series)})",
                    TARGET_LEGEND,
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds("green", (90, "yellow"), (300, "red")),
        ),
        10,
        8,
    )
    grid.add(
        state_timeline(
            9,
            "Target status over time",
            "UP or DOWN of each target at each scrape.",
            [
                target(
                    f"max by ({TARGET_KEY}) "
                    f"({selector('milvus_jobs_exporter_target_up', *target_series)})",
                    TARGET_LEGEND,
                )
            ],
            mappings=UP_DOWN,
        ),
        24,
        6,
    )
    grid.add(
        timeseries(
            10,
            "Poll errors by reason",
            "Failed polls per interval, by bounded reason and target; a flat (none) line at 0 "
            "when there is no failure.",
            [
                target(
                    zero_when_empty(
                        f"sum by ({TARGET_KEY}, reason) (increase("
                        f"{selector('milvus_jobs_exporter_poll_errors_total', *target_series)}"
                        "[$__rate_interval]))",
                        "reason",
                    ),
                    "{{reason}} " + TARGET_LEGEND,
                )
            ],
            unit="short",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            11,
            "Untracked and unknown-state jobs",
            "Jobs left without per-job series by max_tracked_jobs, and listed jobs in a state "
            "the exporter does not know, per target. Both should stay at 0.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_untracked_jobs', *scrape)})",
                    "untracked (max_tracked_jobs)",
                    ref_id="A",
                ),
                target(
                    f"sum by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_unknown_state_jobs', *target_series)})",
                    "unknown state: " + TARGET_LEGEND,
                    ref_id="B",
                ),
            ],
            unit="short",
        ),
        12,
        8,
    )

    grid.row(101, "Milvus job API")
    grid.add(
        timeseries(
            12,
            "API requests by outcome",
            "HTTP requests to the Milvus job API per second, by cluster, API path and outcome "
            "(success or a bounded failure reason).",
            [
                target(
                    "sum by (milvus_cluster, api, outcome) (rate("
                    f"{selector(requests, *target_series)}[$__rate_interval]))",
                    "{{milvus_cluster}} {{api}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        8,
        8,
    )
    latency = selector("milvus_jobs_exporter_api_request_duration_seconds_bucket", *target_series)
    grid.add(
        timeseries(
            13,
            "API request latency",
            "p50, p95 and p99 of the time taken by requests to the Milvus job API, per API "
            "path, from the milvus_jobs_exporter_api_request_duration_seconds histogram.",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (le, api) "
                    f"(rate({latency}[$__rate_interval])))",
                    f"p{round(quantile * 100)} {{{{api}}}}",
                    ref_id=ref_id,
                )
                for ref_id, quantile in (("A", 0.5), ("B", 0.95), ("C", 0.99))
            ],
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            14,
            "Rate-limited requests",
            "Requests per second refused by the Milvus API with a rate-limit answer (HTTP 429, "
            "codes 8/1807), by cluster; a flat (none) line at 0 when there is none. The "
            "exporter pauses the token "
            "and path for Retry-After when it happens.",
            [
                target(
                    zero_when_empty(
                        f"sum by (milvus_cluster) (rate({rate_limited}[$__rate_interval]))",
                        "milvus_cluster",
                    ),
                    "{{milvus_cluster}}",
                )
            ],
            unit="reqps",
        ),
        8,
        8,
    )

    grid.row(102, "Exporter process")
    grid.add(
        timeseries(
            15,
            "Poll cycle duration",
            "Duration of the last full poll cycle, per exporter instance. A cycle longer than "
            "poll_interval means targets are polled less often than configured.",
            [
                target(
                    "max by (job, instance) ("
                    f"{selector('milvus_jobs_exporter_poll_cycle_duration_seconds', *scrape)})",
                    "{{instance}}",
                )
            ],
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            16,
            "Memory",
            "Resident memory of the exporter process.",
            [
                target(
                    selector("process_resident_memory_bytes", *scrape),
                    "{{instance}}",
                )
            ],
            unit="bytes",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            17,
            "CPU",
            "CPU used by the exporter process (100 % is one core).",
            [
                target(
                    f"rate({selector('process_cpu_seconds_total', *scrape)}[$__rate_interval])",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        8,
        8,
    )
    grid.add(
        table(
            18,
            "Exporter instances",
            "Each exporter instance: version, whether Prometheus scrapes it (up), when the "
            "process started and how many poll cycles it completed.",
            [
                target(
                    "max by (job, instance, version) ("
                    f"{selector('milvus_jobs_exporter_build_info', *scrape)})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (job, instance) ({selector('up', *scrape)})",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (job, instance) ("
                    f"{selector('process_start_time_seconds', *scrape)}) * 1000"
                    " and on (job, instance) "
                    f"{selector('milvus_jobs_exporter_build_info', *scrape)}",
                    ref_id="C",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (job, instance) ("
                    f"{selector('milvus_jobs_exporter_poll_cycles_total', *scrape)})",
                    ref_id="D",
                    instant=True,
                    table=True,
                ),
            ],
            columns={
                "job": "Job",
                "instance": "Instance",
                "version": "Version",
                "Value #B": "Scrape",
                "Value #C": "Started",
                "Value #D": "Poll cycles",
            },
            unit="short",
            overrides=[
                override(
                    "Scrape",
                    unit="none",
                    mappings=UP_DOWN,
                    custom__cellOptions={"type": "color-background"},
                ),
                override("Started", unit="dateTimeAsIso"),
            ],
        ),
        24,
        5,
    )

    variables = [
        query_variable(
            "job",
            "Scrape job",
            "label_values(milvus_jobs_exporter_build_info, job)",
            all_value=None,
        ),
        query_variable(
            "instance",
            "Instance",
            f"label_values({selector('milvus_jobs_exporter_build_info', SCRAPE_JOB)}, instance)",
            all_value=None,
        ),
        query_variable(
            "milvus_cluster",
            "Cluster",
            f"label_values({selector('milvus_jobs_exporter_target_up', *scrape)}, milvus_cluster)",
            all_value=".*",
        ),
    ]
    return dashboard(
        EXPORTER_UID,
        "Milvus jobs exporter",
        "Health of milvus-jobs-exporter itself: targets up or down with reasons, requests to "
        "the Milvus job API by outcome and latency, rate limiting, poll cycles, process cost.",
        grid,
        variables,
        dashboard_link("Milvus jobs overview", OVERVIEW_UID),
    )


DASHBOARDS: dict[str, Callable[[], Json]] = {
    "milvus-jobs-overview.json": overview_dashboard,
    "milvus-jobs-exporter.json": exporter_dashboard,
}


def render(dashboard_model: Json) -> str:
    """The committed form: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard_model, indent=2, sort_keys=True) + "\n"


def generated_files() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def iter_panels(dashboard_model: Json) -> Iterator[Json]:
    """Every panel, including those inside collapsed rows, rows themselves included."""
    for panel in dashboard_model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Json) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of every panel, in panel order.

    The expressions still hold the Grafana variables (``$milvus_cluster``, ``$__rate_interval``,
    ...): substitute them before sending a query to Prometheus.
    """
    return [
        (panel["title"], query["expr"])
        for panel in iter_panels(dashboard)
        for query in panel.get("targets", [])
        if query.get("expr")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file in the output directory differs from the output",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DASHBOARDS_DIR,
        metavar="DIR",
        help=f"where the dashboards go (default {DASHBOARDS_DIR})",
    )
    args = parser.parse_args(argv)
    output: Path = args.output
    stale: list[str] = []
    for name, text in generated_files().items():
        path = output / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            output.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        for path_text in stale:
            print(
                f"{path_text}: differs from grafana/generate.py; run python grafana/generate.py",
                file=sys.stderr,
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
