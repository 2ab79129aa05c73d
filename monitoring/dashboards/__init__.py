"""The Grafana dashboards as data, one module per dashboard, written to ``grafana/dashboards/``.

- ``panels.py``: the panel builders (stat, graph, bar gauge, timeline, table) and their helpers;
- ``layout.py``: the grid that places panels and numbers them, variables, the dashboard shell;
- ``job_section.py``: one section of the overview per job kind, drawn by one function;
- ``overview.py``: the "Milvus jobs overview" dashboard and its two job kinds;
- ``exporter/``: the "Milvus jobs exporter" dashboard.

The committed form is deterministic (sorted keys, 2-space indent, trailing newline), so a stale
file shows up as a diff. ``panel_queries`` lists every PromQL expression of a dashboard, for the
tests that run them against a real Prometheus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..settings import Settings
from .exporter import exporter_dashboard
from .overview import overview_dashboard
from .panels import Json

OVERVIEW_FILE = "milvus-jobs-overview.json"
EXPORTER_FILE = "milvus-jobs-exporter.json"


def build_dashboards(settings: Settings) -> dict[str, Json]:
    """File name -> dashboard, for every dashboard."""
    exporter = exporter_dashboard(settings)
    return {OVERVIEW_FILE: overview_dashboard(settings, exporter), EXPORTER_FILE: exporter}


def render(dashboard_model: Json) -> str:
    """The committed form: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard_model, indent=2, sort_keys=True) + "\n"


def iter_panels(dashboard_model: Json) -> Iterator[Json]:
    """Every panel, including those inside collapsed rows, rows themselves included."""
    for panel in dashboard_model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard_model: Json) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of every panel, in panel order.

    The expressions still hold the Grafana variables (``$milvus_cluster``, ``$__rate_interval``,
    ...): substitute them before sending a query to Prometheus.
    """
    return [
        (panel["title"], query["expr"])
        for panel in iter_panels(dashboard_model)
        for query in panel.get("targets", [])
        if query.get("expr")
    ]
