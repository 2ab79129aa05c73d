"""The Grafana dashboards of milvus-jobs-exporter as data: one module per dashboard.

- ``settings.py``: the thresholds file (prometheus/thresholds.yml), which the rule generator
  (prometheus/generate.py) reads too;
- ``expressions.py``: PromQL an alert and a panel share, so a panel shows what its alert decides;
- ``panels.py``: PromQL helpers and the panel builders (stat, graph, bar gauge, timeline, table);
- ``layout.py``: the grid that places panels and numbers them, variables, the dashboard shell;
- ``job_section.py``: one section of the overview per job kind, drawn by one function;
- ``overview.py``: the "Milvus jobs overview" dashboard and its two job kinds;
- ``exporter_dashboard.py``: the "Milvus jobs exporter" dashboard.
- ``command.py``: the flags and the write-or-check step of both generator commands.

``grafana/generate.py`` is the command that writes them.
"""

from __future__ import annotations

from .exporter_dashboard import exporter_dashboard
from .overview import overview_dashboard
from .panels import Json
from .settings import Settings

OVERVIEW_FILE = "milvus-jobs-overview.json"
EXPORTER_FILE = "milvus-jobs-exporter.json"


def build_dashboards(settings: Settings) -> dict[str, Json]:
    """File name -> dashboard, for every dashboard."""
    exporter = exporter_dashboard(settings)
    return {OVERVIEW_FILE: overview_dashboard(settings, exporter), EXPORTER_FILE: exporter}
