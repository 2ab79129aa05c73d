"""Every file generated from the monitoring-as-code, and writing or checking them.

One list, so one command writes them all and a test cannot miss one: the rule file, the
dashboards, the Kubernetes PrometheusRule and dashboards ConfigMap, the mixin's templates, the
metrics reference and the config keys table of the configuration reference. Paths are relative to the repository (or to ``--output-dir``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from exporter.config.reference import page as config_page

from . import kubernetes, metrics_doc, mixin
from .dashboards import build_dashboards, render
from .rules import rule_file, rule_groups, rules
from .settings import Settings

REPOSITORY = Path(__file__).resolve().parents[1]
RULE_FILE = Path("prometheus/alerts.yml")
DASHBOARDS = Path("grafana/dashboards")
PROMETHEUS_RULE = Path("deploy/kubernetes/base/prometheusrule.yaml")
DASHBOARDS_CONFIGMAP = Path("deploy/kubernetes/base/dashboards-configmap.yaml")
MIXIN_TEMPLATES = Path("mixin/templates.libsonnet")
METRICS_DOC = Path("docs/metrics.md")
CONFIG_DOC = Path("docs/configuration.md")


def generated_files(settings: Settings) -> dict[Path, str]:
    """Relative path -> text, for every generated file."""
    rule_list = rules(settings)
    dashboards = build_dashboards(settings)
    return {
        RULE_FILE: rule_file.render(rule_list, settings),
        **{DASHBOARDS / name: render(model) for name, model in dashboards.items()},
        PROMETHEUS_RULE: kubernetes.prometheus_rule(rule_groups(rule_list)),
        DASHBOARDS_CONFIGMAP: kubernetes.dashboards_configmap(dashboards),
        MIXIN_TEMPLATES: mixin.templates(settings),
        METRICS_DOC: metrics_doc.markdown(),
        CONFIG_DOC: config_page((REPOSITORY / CONFIG_DOC).read_text(encoding="utf-8")),
    }


def stale_files(files: Mapping[Path, str], root: Path) -> list[Path]:
    """The files whose text under ``root`` differs from ``files`` (missing ones included)."""
    stale = []
    for relative, text in files.items():
        path = root / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(relative)
    return stale


def write_or_check(files: Mapping[Path, str], root: Path, check: bool, command: str) -> int:
    """Write each stale file (0), or with ``check`` write nothing and name each one (1 if any)."""
    stale = stale_files(files, root)
    for relative in stale:
        path = root / relative
        if check:
            print(f"{path}: stale; run {command}", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[relative], encoding="utf-8")
            print(f"wrote {path}")
    return 1 if check and stale else 0
