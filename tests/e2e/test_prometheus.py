"""End to end: simulator -> exporter process -> a real Prometheus with the shipped rules.

Run alone with ``scripts/test -m e2e``. Needs Debian's ``prometheus`` package (prometheus and
promtool); skipped without it, except in CI where it is required.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from exporter.simulator import Fault, Simulator, SimulatorOptions
from monitoring.dashboards import panel_queries
from monitoring.stack import (
    REPO,
    Prometheus,
    answers,
    binary,
    exporter_process,
    free_port,
    prometheus_process,
    shortened_rules,
    wait_until,
)

pytestmark = pytest.mark.e2e

TOKEN = "e2e-token-3c9f1a"
REASON = "iceberg snapshot 42 not found"


def _binary(name: str) -> str:
    path = binary(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (Debian package prometheus)")
        pytest.skip(f"{name} not installed (Debian package prometheus)")
    return path


@dataclass
class Stack:
    busy: Simulator
    scripted: Simulator
    discovering: Simulator
    exporter_url: str
    prometheus: Prometheus

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.prometheus.query(expr)

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return self.prometheus.alerts(name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _binary("prometheus")
    workdir = tmp_path_factory.mktemp("e2e")
    busy = Simulator(
        SimulatorOptions(
            seed=11,
            tokens=(TOKEN,),
            databases=("default", "analytics"),
            collections_per_database=4,
            time_scale=120.0,
            failure_probability=0.35,
            knobs={"restore_jobs_per_database": 2, "restore_hang_probability": 0.3},
        )
    )
    scripted = Simulator(
        SimulatorOptions(
            seed=12,
            tokens=(TOKEN,),
            databases=("default",),
            collections_per_database=1,
            auto_refresh=False,
            time_scale=1.0,
        )
    )
    with ExitStack() as running:
        busy_server = running.enter_context(busy.serve("127.0.0.1", 0))
        # Something for the panels that list only trouble: a target down for good, and a job
        # in a state the exporter does not know.
        busy.set_fault(Fault(kind="http_503"), database="analytics", path="import/list")
        busy.set_fault(
            Fault(kind="unknown_state"), database="analytics", path="external_collection/list"
        )
        # And from the start, rather than by chance: a failed import, and a refresh that hangs
        # (stuck once it runs for 30 simulated minutes: 15 s at this time scale).
        busy.start_import("default", outcome="failed", duration_seconds=1.0)
        stuck = busy.databases()["default"]["externalCollections"][0]
        busy.start_refresh("default", stuck, outcome="hang", duration_seconds=0.0)
        # The same for restores (the third kind, opted in below).
        busy.start_job("restore", "default", outcome="failed", duration_seconds=1.0)
        busy.start_job("restore", "default", outcome="hang", duration_seconds=0.0)
        scripted_server = running.enter_context(scripted.serve("127.0.0.1", 0))
        # A cluster whose databases are found by a pattern (the Database discovery panels).
        discovering = Simulator(
            SimulatorOptions(
                seed=13,
                tokens=(TOKEN,),
                databases=("default", "sales"),
                collections_per_database=1,
                time_scale=60.0,
            )
        )
        discovering_server = running.enter_context(discovering.serve("127.0.0.1", 0))
        config = f"""poll_interval: 1s
request_timeout: 2s
clusters:
  - name: busy
    endpoint: {busy_server.url}
    token: ${{E2E_TOKEN}}
    databases: [default, analytics]
    jobs: [refresh, import, restore]
  - name: scripted
    endpoint: {scripted_server.url}
    token: ${{E2E_TOKEN}}
    databases: [default]
    jobs: [refresh]
  - name: discovered
    endpoint: {discovering_server.url}
    token: ${{E2E_TOKEN}}
    databases: ["*"]
    discovery_interval: 1s
    jobs: [import]
"""

        # For the Sight panels: a target lost from sight ("lost", dropped by a restart without
        # a state file, so nothing says it was on purpose) and one removed on purpose
        # ("removed", dropped by a reload).
        def staged(name: str) -> str:
            return (
                f"  - name: {name}\n    endpoint: {scripted_server.url}\n"
                "    token: ${E2E_TOKEN}\n    databases: [default]\n    jobs: [import]\n"
            )

        port = free_port()
        env = {"E2E_TOKEN": TOKEN}
        lifecycle = ("--web.enable-lifecycle",)
        with exporter_process(
            workdir,
            "exporter",
            config + staged("lost") + staged("removed"),
            env=env,
            port=port,
            args=lifecycle,
        ) as exporter_url:
            prometheus = running.enter_context(
                prometheus_process(
                    workdir,
                    [exporter_url.removeprefix("http://")],
                    shortened_rules(workdir, hold=0),
                )
            )
            staged_up = 'milvus_jobs_exporter_target_up{milvus_cluster=~"lost|removed"}'
            wait_until(
                lambda: len(prometheus.query(staged_up)) == 2, 60, "the staged targets scraped"
            )
        exporter_url = running.enter_context(  # restarted without "lost" and no state file
            exporter_process(
                workdir, "exporter", config + staged("removed"), env=env, port=port, args=lifecycle
            )
        )
        wait_until(lambda: answers(exporter_url + "/readyz"), 30, "the exporter to be ready")
        (workdir / "exporter.yaml").write_text(config)  # reloaded without "removed"
        assert requests.post(exporter_url + "/-/reload", timeout=10).status_code == 200
        wait_until(
            lambda: (
                prometheus.query("milvus_jobs_exporter_target_removed_timestamp_seconds")
                and prometheus.query("milvus_jobs_exporter_target_up == 1")
            ),
            60,
            "the reloaded exporter scraped",
        )
        yield Stack(busy, scripted, discovering, exporter_url, prometheus)
    for name in ("exporter.log", "prometheus.log"):
        text = (workdir / name).read_text(errors="replace")
        assert TOKEN not in text, f"the token leaked into {name}"


def test_prometheus_reports_the_exporter_target_healthy(stack: Stack) -> None:
    def healthy() -> bool:
        payload = requests.get(f"{stack.prometheus_url}/api/v1/targets", timeout=10).json()
        targets = payload["data"]["activeTargets"]
        return len(targets) == 1 and targets[0]["health"] == "up"

    wait_until(healthy, 30, "the exporter target to be up")
    assert stack.query('up{job="milvus-jobs"} == 1')
    assert stack.query("milvus_jobs_exporter_target_up == 1")


def test_a_failed_refresh_fires_the_alert_with_its_reason_and_a_success_resolves_it(
    stack: Stack,
) -> None:
    collection = stack.scripted.databases()["default"]["externalCollections"][0]
    job_id = stack.scripted.start_refresh(
        "default", collection, outcome="failed", duration_seconds=1.0, reason=REASON
    )

    def firing() -> list[dict[str, Any]]:
        return [
            alert
            for alert in stack.alerts("MilvusRefreshJobFailed")
            if alert["state"] == "firing"
            and alert["labels"]["milvus_cluster"] == "scripted"
            and alert["labels"]["collection"] == collection
            and str(job_id) in alert["annotations"]["description"]
        ]

    alert = wait_until(firing, 45, "MilvusRefreshJobFailed to fire")[0]
    assert REASON in alert["annotations"]["description"]
    assert (
        "job_id" not in alert["labels"] and "reason" not in alert["labels"]
    )  # one alert a collection

    stack.scripted.start_refresh("default", collection, outcome="completed", duration_seconds=1.0)

    def resolved() -> bool:
        return not [
            alert
            for alert in stack.alerts("MilvusRefreshJobFailed")
            if alert["labels"].get("milvus_cluster") == "scripted"
            and alert["labels"]["collection"] == collection
        ]

    wait_until(resolved, 45, "MilvusRefreshJobFailed to resolve")


def test_a_failing_database_discovery_fires_its_alert_with_the_reason_and_recovery_resolves_it(
    stack: Stack,
) -> None:
    wait_until(
        lambda: stack.query(
            'milvus_jobs_exporter_discovered_databases{milvus_cluster="discovered"} == 2'
        ),
        30,
        "the discovery to find both databases",
    )
    stack.discovering.set_fault(Fault(kind="auth"), path="databases/list")
    try:

        def firing() -> list[dict[str, Any]]:
            return [
                alert
                for alert in stack.alerts("MilvusJobsExporterDatabaseDiscoveryFailing")
                if alert["state"] == "firing"
                and alert["labels"]["milvus_cluster"] == "discovered"
                and "reason: auth" in alert["annotations"]["description"]
            ]

        wait_until(firing, 45, "MilvusJobsExporterDatabaseDiscoveryFailing to fire, reason auth")
        # The last list is kept: both databases are still polled while discovery fails.
        assert stack.query(
            'count(milvus_jobs_exporter_target_up{milvus_cluster="discovered"} == 1) == 2'
        )
    finally:
        stack.discovering.clear_faults()

    def resolved() -> bool:
        return not stack.alerts("MilvusJobsExporterDatabaseDiscoveryFailing")

    wait_until(resolved, 45, "MilvusJobsExporterDatabaseDiscoveryFailing to resolve")


def _dashboard_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for title, expr in panel_queries(dashboard):
            queries.append((path.stem, title, expr))
    return queries


def _with_all_variables(expr: str) -> str:
    substitutions = {
        "$__rate_interval": "1m",
        "${__rate_interval}": "1m",
        "$__interval": "15s",
        "${__interval}": "15s",
        "$__range": "1h",
        "${__range}": "1h",
    }
    for variable, replacement in substitutions.items():
        expr = expr.replace(variable, replacement)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?", ".*", expr)


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 10

    def missing() -> list[str]:
        return [
            f"{board} / {title}: {expr}"
            for board, title, expr in queries
            if not stack.query(_with_all_variables(expr))
        ]

    deadline = time.monotonic() + 120
    empty = missing()
    while empty and time.monotonic() < deadline:
        time.sleep(3)
        empty = missing()
    assert not empty, "panel queries without data:\n" + "\n".join(empty)


def test_promtool_accepts_the_rules_their_unit_tests_and_the_live_exposition(stack: Stack) -> None:
    """The rules' unit tests themselves run in tests/test_rules.py (promtool test rules)."""
    promtool = _binary("promtool")
    for command in (
        [promtool, "check", "rules", "prometheus/alerts.yml"],
        [promtool, "check", "config", "prometheus/prometheus.yml"],
    ):
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    body = requests.get(stack.exporter_url + "/metrics", timeout=10).content
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()
