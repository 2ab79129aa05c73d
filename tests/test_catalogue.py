"""The metric catalogue is the one place a metric is declared: the docs and /metrics follow it."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.exposition.catalogue import CATALOGUE, PROCESS_PREFIXES
from monitoring import metrics_doc

from .conftest import cluster

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"[a-z_][a-z0-9_]*")


def test_docs_metrics_md_is_generated_from_the_catalogue():
    committed = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert committed == metrics_doc.markdown(), (
        "docs/metrics.md is stale: run python -m monitoring generate"
    )


def test_every_metric_follows_the_naming_conventions():
    names = [metric.name for metric in CATALOGUE]
    assert len(names) == len(set(names))
    for metric in CATALOGUE:
        assert NAME.fullmatch(metric.name), metric.name
        assert metric.type in ("gauge", "counter", "histogram"), metric.name
        assert not metric.name.endswith("_total"), f"{metric.name}: the counter suffix is added"
        assert metric.help and metric.doc, metric.name
        if metric.unit:
            assert metric.name.endswith(f"_{metric.unit}"), f"{metric.name}: unit {metric.unit}"
        if metric.name.endswith("_info"):
            assert metric.type == "gauge", metric.name


def test_a_live_scrape_exports_exactly_the_catalogue(simulator, start_exporter):
    _sim, url = simulator
    exporter = start_exporter(cluster(url))
    exporter.wait_for_cycles(2)
    text = requests.get(exporter.url + "/metrics", timeout=5).text
    exported = {
        family.name: family.type
        for family in text_string_to_metric_families(text)
        if not family.name.startswith(PROCESS_PREFIXES)
    }
    declared = {metric.name: metric.type for metric in CATALOGUE}
    assert exported == declared
