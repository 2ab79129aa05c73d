"""The alert rules, as data: what each alert asks Prometheus, and why it is written that way.

- ``common.py``: the ``Rule`` record, and the ``Context`` of thresholds and dashboard links;
- ``jobs.py``: the alerts about jobs (failed, failure changed, stuck, stale);
- ``exporter.py``: the alerts about the exporters (down, stalled, a target lost, ...);
- ``rule_file.py``: prometheus/alerts.yml, the rules written as a commented rule file.

Thresholds, the scrape job selector and the links come from the thresholds file (``Settings``),
which the dashboards are built from too, so a panel turns red where its alert fires.
"""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .common import Context, Rule
from .exporter import exporter_rules
from .jobs import job_rules

GROUP = "milvus-jobs"


def rules(settings: Settings) -> list[Rule]:
    """Every alert rule, in the order of the rule file."""
    context = Context.of(settings)
    return [*job_rules(context), *exporter_rules(context)]


def rule_groups(rule_list: list[Rule]) -> list[dict[str, Any]]:
    """The rule groups as Prometheus reads them (a rule file's ``groups``, a PrometheusRule's
    ``spec.groups``, a mixin's ``prometheusAlerts.groups``)."""
    return [
        {
            "name": GROUP,
            "rules": [
                {
                    "alert": rule.alert,
                    "expr": rule.expr + "\n",
                    "for": rule.for_,
                    "labels": {"severity": rule.severity},
                    "annotations": dict(rule.annotations),
                }
                for rule in rule_list
            ],
        }
    ]
