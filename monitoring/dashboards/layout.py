"""Where panels go and what they are called: the grid, panel ids, variables, the dashboard.

Panel ids are never typed by hand: ``Grid.add`` numbers panels 1, 2, 3... in the order they are
placed, and ``Grid.row`` numbers rows 100, 101, ... (a dashboard has fewer than 100 panels), so
an id is stable as long as the panels before it stay, and ``panel_id(dashboard, title)`` finds the id
of a panel for links (``viewPanel``).
"""

from __future__ import annotations

from .panels import Json, datasource

OVERVIEW_UID = "milvus-jobs-overview"
EXPORTER_UID = "milvus-jobs-exporter"
SCHEMA_VERSION = 39
GRID_WIDTH = 24
TAGS = ["milvus", "milvus-jobs-exporter"]
FIRST_ROW_ID = 100


def row(title: str) -> Json:
    return {
        "collapsed": False,
        "datasource": datasource(),
        "panels": [],
        "title": title,
        "type": "row",
    }


class Grid:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new line, and
    gives each its id."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_height = 0
        self._next_panel_id = 1
        self._next_row_id = FIRST_ROW_ID

    def add(self, panel: Json, width: int, height: int) -> Json:
        """Place ``panel`` (its id included) and return it."""
        if panel.get("type") == "row":
            panel["id"] = self._next_row_id
            self._next_row_id += 1
        else:
            panel["id"] = self._next_panel_id
            self._next_panel_id += 1
        if self._x + width > GRID_WIDTH:
            self.new_line()
        panel["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self._x += width
        self._line_height = max(self._line_height, height)
        self.panels.append(panel)
        return panel

    def new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def row(self, title: str) -> None:
        self.new_line()
        self.add(row(title), GRID_WIDTH, 1)
        self.new_line()


def panel_id(dashboard_model: Json, title: str) -> int:
    """The id of the panel titled ``title`` (for ``viewPanel`` links); KeyError if none."""
    for panel in dashboard_model["panels"]:
        if panel["title"] == title and panel["type"] != "row":
            return int(panel["id"])
    raise KeyError(f"{dashboard_model['title']}: no panel {title!r}")


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


CLUSTER = 'milvus_cluster=~"$milvus_cluster"'
DATABASE = 'database=~"$database"'
COLLECTION = 'collection=~"$collection"'
SCRAPE_JOB = 'job=~"$job"'
SCRAPE_INSTANCE = 'instance=~"$instance"'
SCRAPE = (SCRAPE_JOB, SCRAPE_INSTANCE)
"""The matchers of the Job and Instance variables, which every selector of both dashboards
carries (the Grafana dashboard linter's target-job and target-instance rules)."""


def query_variable(name: str, label: str, query: str, *, all_value: str) -> Json:
    """A multi-value ``label_values`` variable whose default is All, reloaded when the time
    range changes.

    ``all_value`` (``.+`` or ``.*``) makes All match every value, including ones that appear
    after the variable was loaded, and keeps the query short whatever the number of values.
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


def scrape_variables(exporter_selector: str) -> list[Json]:
    """``job`` and ``instance``, the dashboard linter's way: multi-value, All is ``.+``.

    They list the scrape jobs and instances of exporters (``exporter_selector``: the thresholds
    file's scrape job selector). Series any target exports (``up``, ``process_*``) are joined with
    ``milvus_jobs_exporter_build_info`` wherever they are queried, so All (``.+``, every job)
    still shows exporters only.
    """
    build_info = "milvus_jobs_exporter_build_info"
    return [
        query_variable(
            "job", "Job", f"label_values({build_info}{{{exporter_selector}}}, job)", all_value=".+"
        ),
        query_variable(
            "instance",
            "Instance",
            f"label_values({build_info}{{{exporter_selector}, {SCRAPE_JOB}}}, instance)",
            all_value=".+",
        ),
    ]


def textbox_variable(name: str, label: str, description: str, default: str = ".*") -> Json:
    """A free-text variable (a regular expression), for a label with too many values to list."""
    return {
        "current": {"selected": False, "text": default, "value": default},
        "description": description,
        "hide": 0,
        "label": label,
        "name": name,
        "options": [{"selected": True, "text": default, "value": default}],
        "query": default,
        "skipUrlSync": False,
        "type": "textbox",
    }


def dashboard(
    uid: str, title: str, description: str, grid: Grid, variables: list[Json], link: Json
) -> Json:
    """The dashboard around ``grid``; not editable: it is provisioned from generated JSON, and
    Grafana refuses to save edits to it anyway (``allowUiUpdates: false``)."""
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
        "editable": False,
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
