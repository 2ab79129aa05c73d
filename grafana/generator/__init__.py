"""The Grafana dashboards of milvus-jobs-exporter as data: one module per dashboard.

- ``panels.py``: PromQL helpers and the panel builders (stat, graph, bar gauge, timeline, table);
- ``layout.py``: the grid that places panels and numbers them, variables, the dashboard shell;
- ``overview.py``: the "Milvus jobs overview" dashboard, one job-kind section per kind;
- ``exporter_dashboard.py``: the "Milvus jobs exporter" dashboard.

``grafana/generate.py`` is the command that writes them.
"""
