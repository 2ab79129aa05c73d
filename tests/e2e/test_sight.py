"""Losing sight never looks like good news, end to end: simulator -> real exporters -> a real
Prometheus with the shipped rules -> a real Alertmanager with the shipped route tree and
inhibitions -> a webhook receiver of ours.

Each test loses sight of a failed collection one way (an exporter deleted from service
discovery, a dead shard, a re-shard half done) and checks that nothing resolves and that the
loss pages, or gives evidence one way (a collection dropped, a database dropped, a cluster
removed by a reload) and checks that the failure resolves and nothing pages a loss. The rules
are generated from the shipped thresholds with the waits cut to seconds (``shipped_rules``):
a lookback of 5 s, so "beyond the lookback" is 15 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from exporter.polling.targets import shard_of
from exporter.simulator import Simulator, SimulatorOptions
from monitoring.stack import (
    Prometheus,
    WebhookReceiver,
    alertmanager_process,
    answers,
    binary,
    exporter_process,
    free_port,
    prometheus_process,
    shipped_rules,
    wait_until,
    webhook_receiver,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TOKEN = "sight-token-7c1f"
LOOKBACK = 5.0
BEYOND_LOOKBACK = 3 * LOOKBACK
THRESHOLDS = {
    "lookback": f"{LOOKBACK:g}s",
    "refresh_failed_for": "1s",
    "import_failed_for": "1s",
    "target_down_for": "2s",
    "exporter_down_for": "2s",
    "shard_missing_for": "3s",
    "target_lost_for": "3s",
    "sight_horizon": "10m",
    "failure_changed_window": "10s",
}


@dataclass
class Sight:
    """One test's stack: the simulator, Prometheus, the pages the webhook got."""

    simulator: Simulator
    upstream: str
    workdir: Path
    prometheus: Prometheus
    pages: WebhookReceiver
    exporters: dict[str, ExitStack]
    ports: dict[str, int]

    def start_exporter(self, name: str, config: str, *args: str) -> str:
        """Start (or restart, on the same port) exporter ``name``."""
        self.ports.setdefault(name, free_port())
        stack = self.exporters.setdefault(name, ExitStack())
        url = stack.enter_context(
            exporter_process(self.workdir, name, config, port=self.ports[name], args=args)
        )
        wait_until(lambda: answers(url + "/readyz"), 30, f"exporter {name} to be ready", 0.1)
        return url

    def stop_exporter(self, name: str) -> None:
        self.exporters[name].close()

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def config(self, name: str, clusters: dict[str, list[str]]) -> str:
        """Exporter ``name``'s config (its own state file): each cluster, all on the simulator,
        with its databases."""
        text = (
            "poll_interval: 500ms\nrequest_timeout: 1s\ndiscovery_interval: 1s\n"
            f"state_file: {self.workdir}/{name}.state.json\nclusters:\n"
        )
        for name, databases in clusters.items():
            text += (
                f"  - name: {name}\n    endpoint: {self.upstream}\n    token: {TOKEN}\n"
                f"    databases: {databases!r}\n    jobs: [refresh]\n"
            )
        return text

    def fail_refresh(self, database: str, reason: str = "snapshot expired") -> str:
        collection = self.simulator.databases()[database]["externalCollections"][0]
        self.simulator.start_refresh(
            database, collection, outcome="failed", duration_seconds=0.2, reason=reason
        )
        return collection

    def statuses(self, name: str, **labels: str) -> list[str]:
        return [note.status for note in self.pages.of(name, **labels)]

    def wait_paged(self, name: str, **labels: str) -> None:
        wait_until(
            lambda: "firing" in self.statuses(name, **labels), 60, f"{name} {labels} to page"
        )


@contextmanager
def sight(tmp_path: Path, databases: tuple[str, ...]) -> Iterator[Sight]:
    for name in ("prometheus", "alertmanager"):
        if binary(name) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{name} is required in CI (Debian's {name} package)")
            pytest.skip(f"{name} not installed")
    simulator = Simulator(
        SimulatorOptions(
            seed=19, tokens=(TOKEN,), databases=databases, collections_per_database=1,
            auto_refresh=False, time_scale=1.0,
        )
    )  # fmt: skip
    with ExitStack() as stack:
        upstream = stack.enter_context(simulator.serve("127.0.0.1", 0))
        pages, webhook = stack.enter_context(webhook_receiver())
        alertmanager = stack.enter_context(alertmanager_process(tmp_path, webhook, shipped=True))
        exporters: dict[str, ExitStack] = {}

        def stop_exporters() -> None:
            for exporter in exporters.values():
                exporter.close()

        stack.callback(stop_exporters)
        ports: dict[str, int] = {}
        prometheus = stack.enter_context(
            prometheus_process(
                tmp_path,
                [],
                shipped_rules(tmp_path, **THRESHOLDS),
                alertmanager=alertmanager,
                file_sd=True,
            )
        )
        yield Sight(simulator, upstream.url, tmp_path, prometheus, pages, exporters, ports)


def shard_databases(count: int, shards: int) -> dict[int, list[str]]:
    """``count`` database names spread so that every shard of ``shards`` has at least one."""
    found: dict[int, list[str]] = {index: [] for index in range(shards)}
    number = 0
    while min(len(names) for names in found.values()) < count // shards:
        name = f"db{number}"
        found[shard_of("sharded", name, "refresh", shards)].append(name)
        number += 1
    return found


def test_an_exporter_deleted_from_service_discovery_pages_its_loss_and_resolves_nothing(
    tmp_path: Path,
) -> None:
    with sight(tmp_path, ("default",)) as stack:
        stack.start_exporter("a", stack.config("a", {"lost": ["default"]}))
        stack.start_exporter("b", stack.config("b", {"kept": ["default"]}))
        stack.prometheus.set_targets([stack.address("a"), stack.address("b")])
        stack.fail_refresh("default")
        stack.wait_paged("MilvusRefreshJobFailed", milvus_cluster="lost")
        stack.wait_paged("MilvusRefreshJobFailed", milvus_cluster="kept")

        stack.prometheus.set_targets([stack.address("b")])  # the pod is deleted; b remains
        stack.wait_paged("MilvusJobsExporterTargetLost", milvus_cluster="lost")
        time.sleep(BEYOND_LOOKBACK)

        assert stack.statuses("MilvusRefreshJobFailed", milvus_cluster="lost") == ["firing"]
        assert stack.prometheus.firing("MilvusRefreshJobFailed", milvus_cluster="lost")
        assert not stack.pages.of("MilvusJobsExporterTargetLost", milvus_cluster="kept")
        assert stack.statuses("MilvusRefreshJobFailed", milvus_cluster="kept") == ["firing"]


def test_a_dead_shard_beyond_the_lookback_pages_once_and_its_return_is_no_new_page(
    tmp_path: Path,
) -> None:
    databases = shard_databases(2, 2)
    with sight(tmp_path, tuple(databases[0] + databases[1])) as stack:
        for index in (0, 1):
            config = stack.config(f"shard{index}", {"sharded": databases[index]})
            stack.start_exporter(f"shard{index}", config, "--shard", f"{index}/2")
        stack.prometheus.set_targets([stack.address("shard0"), stack.address("shard1")])
        failing = databases[1][0]
        stack.fail_refresh(failing)
        stack.wait_paged("MilvusRefreshJobFailed", database=failing)
        [alert] = stack.prometheus.firing("MilvusRefreshJobFailed", database=failing)

        stack.stop_exporter("shard1")  # still scraped: up == 0
        stack.wait_paged("MilvusJobsExporterDown")
        wait_until(
            lambda: (
                stack.prometheus.firing("MilvusJobsExporterShardMissing", count="2")
                and stack.prometheus.firing("MilvusJobsExporterTargetLost", database=failing)
            ),
            60,
            "ShardMissing and TargetLost to fire",
        )
        time.sleep(BEYOND_LOOKBACK)
        assert stack.statuses("MilvusRefreshJobFailed", database=failing) == ["firing"]
        # one cause, one page: Down names it, ShardMissing and TargetLost are inhibited
        assert not stack.pages.of("MilvusJobsExporterShardMissing")
        assert not stack.pages.of("MilvusJobsExporterTargetLost")

        config = stack.config("shard1", {"sharded": databases[1]})
        stack.start_exporter("shard1", config, "--shard", "1/2")
        wait_until(
            lambda: not stack.prometheus.firing("MilvusJobsExporterTargetLost"),
            60,
            "the shard's targets to be in sight again",
        )
        time.sleep(2 * LOOKBACK)
        assert stack.statuses("MilvusRefreshJobFailed", database=failing) == ["firing"]
        [after] = stack.prometheus.firing("MilvusRefreshJobFailed", database=failing)
        assert after["activeAt"] == alert["activeAt"]  # the same alert all along


def test_a_rolling_re_shard_pages_the_missing_shards_and_the_targets_nobody_polls(
    tmp_path: Path,
) -> None:
    names = [f"db{number}" for number in range(12)]
    with sight(tmp_path, tuple(names)) as stack:
        for index in (0, 1):
            name = f"old{index}"
            stack.start_exporter(name, stack.config(name, {"sharded": names}), "--shard",
                                 f"{index}/2")  # fmt: skip
        stack.prometheus.set_targets([stack.address("old0"), stack.address("old1")])
        wait_until(
            lambda: len(stack.prometheus.query("milvus_jobs_exporter_target_up")) == 12,
            60,
            "every target reported",
        )
        # the rollout replaced old1 by 1/3 and 2/3; old0 (0/2) still runs, 0/3 is not up yet
        stack.stop_exporter("old1")
        for index in (1, 2):
            name = f"new{index}"
            stack.start_exporter(name, stack.config(name, {"sharded": names}), "--shard",
                                 f"{index}/3")  # fmt: skip
        stack.prometheus.set_targets(
            [stack.address("old0"), stack.address("new1"), stack.address("new2")]
        )
        unpolled = {
            name
            for name in names
            if shard_of("sharded", name, "refresh", 2) != 0
            and shard_of("sharded", name, "refresh", 3) == 0
        }
        assert unpolled, "the seed spreads twelve databases so that some fall between"
        stack.wait_paged("MilvusJobsExporterShardMissing", count="2")
        stack.wait_paged("MilvusJobsExporterShardMissing", count="3")
        wait_until(
            lambda: (
                {
                    alert["labels"]["database"]
                    for alert in stack.prometheus.firing("MilvusJobsExporterTargetLost")
                }
                == unpolled
            ),
            60,
            "TargetLost for exactly the databases no exporter polls",
        )
        assert not stack.pages.of("MilvusJobsExporterTargetLost")  # inhibited by ShardMissing


def test_a_collection_dropped_upstream_resolves_its_failure(tmp_path: Path) -> None:
    with sight(tmp_path, ("default", "other")) as stack:
        stack.start_exporter("a", stack.config("a", {"prod": ["default", "other"]}))
        stack.prometheus.set_targets([stack.address("a")])
        collection = stack.fail_refresh("default")
        kept = stack.fail_refresh("other")
        stack.wait_paged("MilvusRefreshJobFailed", collection=collection)

        stack.simulator.drop_collection("default", collection)
        wait_until(
            lambda: "resolved" in stack.statuses("MilvusRefreshJobFailed", collection=collection),
            60,
            "the dropped collection's failure to resolve",
        )
        assert stack.prometheus.firing("MilvusRefreshJobFailed", collection=kept)
        assert not stack.prometheus.alerts("MilvusJobsExporterTargetLost")


def test_a_database_dropped_upstream_resolves_its_failures_and_says_so(tmp_path: Path) -> None:
    with sight(tmp_path, ("team_a", "team_b")) as stack:
        stack.start_exporter("a", stack.config("a", {"prod": ["team_*"]}))
        stack.prometheus.set_targets([stack.address("a")])
        collection = stack.fail_refresh("team_b")
        stack.wait_paged("MilvusRefreshJobFailed", collection=collection)

        stack.simulator.remove_database("team_b")
        wait_until(
            lambda: "resolved" in stack.statuses("MilvusRefreshJobFailed", collection=collection),
            60,
            "the dropped database's failure to resolve",
        )
        assert stack.prometheus.firing(
            "MilvusJobsExporterTargetsRemoved", database="team_b", cause="dropped"
        )
        assert not stack.prometheus.alerts("MilvusJobsExporterTargetLost")
        assert not stack.pages.of("MilvusJobsExporterTargetsRemoved")  # a record, not a page


def test_a_reload_that_removes_a_cluster_resolves_its_failures_and_says_so(
    tmp_path: Path,
) -> None:
    with sight(tmp_path, ("default",)) as stack:
        both = stack.config("a", {"kept": ["default"], "removed": ["default"]})
        url = stack.start_exporter("a", both, "--web.enable-lifecycle")
        stack.prometheus.set_targets([stack.address("a")])
        stack.fail_refresh("default")
        stack.wait_paged("MilvusRefreshJobFailed", milvus_cluster="removed")

        config = stack.workdir / "a.yaml"
        config.write_text(both.split("  - name: removed")[0])
        assert requests.post(url + "/-/reload", timeout=10).status_code == 200
        wait_until(
            lambda: (
                "resolved" in stack.statuses("MilvusRefreshJobFailed", milvus_cluster="removed")
            ),
            60,
            "the removed cluster's failure to resolve",
        )
        assert stack.prometheus.firing(
            "MilvusJobsExporterTargetsRemoved", milvus_cluster="removed", cause="config"
        )
        assert stack.prometheus.firing("MilvusRefreshJobFailed", milvus_cluster="kept")
        assert not stack.prometheus.alerts("MilvusJobsExporterTargetLost")
