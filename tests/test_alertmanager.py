"""The shipped Alertmanager configuration (prometheus/alertmanager.yml): valid, routed as
docs/alerts.md says, and one cause pages once through a real Alertmanager.

The inhibitions are checked by posting the alerts the rules raise for one cause (a rate-limited
cluster, a missing shard, a down exporter, no exporter at all) to a real Alertmanager running the
shipped route tree, and reading what reaches the webhook.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from monitoring.stack import alertmanager_process, binary, wait_until, webhook_receiver

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "prometheus" / "alertmanager.yml"
QUICKSTART = ROOT / "deploy" / "compose" / "alertmanager.yml"

needs_amtool = pytest.mark.skipif(
    shutil.which("amtool") is None, reason="amtool not found (Debian's prometheus-alertmanager)"
)


@needs_amtool
@pytest.mark.parametrize("path", [SHIPPED, QUICKSTART], ids=["shipped", "quickstart"])
def test_amtool_accepts_the_config(path: Path) -> None:
    checked = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        pytest.param(
            ["alertname=MilvusRefreshJobFailed", "severity=critical"], "pager", id="failure"
        ),
        pytest.param(
            ["alertname=MilvusRefreshJobFailureChanged", "severity=critical"],
            "pager-news",
            id="changed-refresh-failure",
        ),
        pytest.param(
            ["alertname=MilvusImportJobFailureChanged", "severity=critical"],
            "pager-news",
            id="changed-import-failure",
        ),
        pytest.param(
            ["alertname=MilvusJobsExporterTargetsRemoved", "severity=info"],
            "records",
            id="removal-record",
        ),
        pytest.param(
            ["alertname=MilvusJobsExporterTargetLost", "severity=critical"], "pager", id="lost"
        ),
    ],
)
def test_each_alert_reaches_its_receiver(labels: list[str], receiver: str) -> None:
    routed = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={SHIPPED}", *labels],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr


def test_the_quickstart_routes_and_inhibits_as_the_shipped_example() -> None:
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    quickstart = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    assert quickstart["route"] == shipped["route"]
    assert quickstart["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in quickstart["receivers"]] == [r["name"] for r in shipped["receivers"]]


def _post(address: str, alerts: list[dict[str, object]]) -> None:
    response = requests.post(f"http://{address}/api/v2/alerts", json=alerts, timeout=10)
    assert response.status_code == 200, response.text


def _alert(labels: dict[str, str], ends_in: float = 600.0) -> dict[str, object]:
    now = datetime.now(timezone.utc)
    return {
        "labels": labels,
        "annotations": {"summary": labels["alertname"]},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(seconds=ends_in)).isoformat(),
    }


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_one_cause_pages_once_through_a_real_alertmanager(tmp_path: Path) -> None:
    if binary("alertmanager") is None:
        pytest.skip("Alertmanager not installed (Debian's prometheus-alertmanager)")
    with (
        webhook_receiver() as (receiver, url),
        alertmanager_process(tmp_path, url, shipped=True) as address,
    ):
        critical, warning = {"severity": "critical"}, {"severity": "warning"}
        causes = [
            # a cluster refusing requests: its TargetDown of both kinds follow from it
            {"alertname": "MilvusJobsExporterRateLimited", "milvus_cluster": "prod",
             "api": "import/list", **warning},
            # a shard missing in scrape job "sharded": its lost targets follow from it
            {"alertname": "MilvusJobsExporterShardMissing", "job": "sharded", "count": "2",
             **critical},
            # an exporter down in scrape job "pair": its shard and its targets follow from it
            {"alertname": "MilvusJobsExporterDown", "job": "pair", "instance": "p1:9969",
             **critical},
        ]  # fmt: skip
        followers = [
            {"alertname": "MilvusJobsExporterTargetDown", "milvus_cluster": "prod",
             "database": "default", "kind": kind, **warning}
            for kind in ("refresh", "import")
        ] + [
            {"alertname": "MilvusJobsExporterTargetLost", "job": "sharded",
             "milvus_cluster": "prod", "database": "db1", "kind": "refresh", **critical},
            {"alertname": "MilvusJobsExporterShardMissing", "job": "pair", "count": "3",
             **critical},
            {"alertname": "MilvusJobsExporterTargetLost", "job": "pair",
             "milvus_cluster": "staging", "database": "default", "kind": "import", **critical},
        ]  # fmt: skip
        independent = [
            # another cluster's target is down for its own reason: not muted
            {"alertname": "MilvusJobsExporterTargetDown", "milvus_cluster": "staging",
             "database": "default", "kind": "refresh", **warning},
            # a target lost in a scrape job with no shard missing and no exporter down
            {"alertname": "MilvusJobsExporterTargetLost", "job": "single",
             "milvus_cluster": "eu", "database": "default", "kind": "refresh", **critical},
        ]  # fmt: skip
        _post(address, [_alert(labels) for labels in causes + independent])
        time.sleep(0.5)  # the causes are known before their followers arrive, as in a real outage
        _post(address, [_alert(labels) for labels in followers])
        expected = {tuple(sorted(labels.items())) for labels in causes + independent}

        def notified() -> set[tuple[tuple[str, str], ...]]:
            return {tuple(sorted(note.labels.items())) for note in receiver.notifications}

        wait_until(lambda: expected <= notified(), 30, "the causes to be notified")
        time.sleep(3)  # two group intervals more: nothing muted may follow
        assert notified() == expected
        states = requests.get(f"http://{address}/api/v2/alerts", timeout=10).json()
        muted = {
            tuple(sorted(alert["labels"].items()))
            for alert in states
            if alert["status"]["inhibitedBy"]
        }
        assert muted == {tuple(sorted(labels.items())) for labels in followers}


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_changed_failure_is_paged_at_once_and_its_end_is_not_sent(tmp_path: Path) -> None:
    if binary("alertmanager") is None:
        pytest.skip("Alertmanager not installed (Debian's prometheus-alertmanager)")
    with (
        webhook_receiver() as (receiver, url),
        alertmanager_process(tmp_path, url, shipped=True, group_interval=60.0) as address,
    ):
        failure = {"alertname": "MilvusRefreshJobFailed", "severity": "critical",
                   "milvus_cluster": "prod", "database": "default", "collection": "books"}  # fmt: skip
        _post(address, [_alert(failure)])
        wait_until(lambda: receiver.of("MilvusRefreshJobFailed"), 30, "the first page")
        changed = {**failure, "alertname": "MilvusRefreshJobFailureChanged", "job_id": "2",
                   "reason": "snapshot expired"}  # fmt: skip
        started = time.monotonic()
        _post(address, [_alert(failure), _alert(changed, ends_in=3.0)])
        wait_until(
            lambda: receiver.of("MilvusRefreshJobFailureChanged"), 30, "the change to be paged"
        )
        # within group_wait (1 s here), not the failure group's interval (60 s here)
        assert time.monotonic() - started < 10
        time.sleep(6)  # it has ended by now; a resolved notice would have been sent
        assert [note.status for note in receiver.of("MilvusRefreshJobFailureChanged")] == ["firing"]
