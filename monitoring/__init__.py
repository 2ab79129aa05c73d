"""The monitoring-as-code of milvus-jobs-exporter: alert rules, Grafana dashboards, the PromQL
and thresholds they share, and every file generated from them, written or checked by one command::

    python -m monitoring generate            # (re)write every generated file
    python -m monitoring generate --check    # exit 1 naming every stale file; write nothing

- ``settings.py``: the thresholds file (prometheus/thresholds.yml) -> ``Settings``;
- ``expressions.py``: PromQL an alert and a panel share, so a panel shows what its alert decides;
- ``rules/``: the alert rules, and prometheus/alerts.yml;
- ``dashboards/``: the Grafana dashboards;
- ``kubernetes.py``: the PrometheusRule and the dashboards ConfigMap of deploy/kubernetes/base;
- ``mixin.py``: the templates of the jsonnet mixin (mixin/);
- ``metrics_doc.py``: docs/metrics.md, from the exporter's metric catalogue;
- ``outputs.py``: every generated file, and writing or checking them;
- ``stack.py``: the real thing on 127.0.0.1 (the exporter, Prometheus, Alertmanager, a webhook
  receiver), for the end-to-end tests and the time-to-page benchmark.

It may import the exporter's metric catalogue (``exporter.exposition``) and its duration grammar
(``exporter.config.durations``); the exporter never imports it (it is not installed with it).
"""

COMMAND = "python -m monitoring generate"
"""The one command that writes every generated file; each file's header names it."""
