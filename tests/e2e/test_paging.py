"""Pages you can trust, end to end: simulator -> an HA pair of exporters -> a real Prometheus with
the shipped rules -> a real Alertmanager -> a webhook receiver of ours.

A failed refresh must page once, with its reason, and keep paging through everything that
happens to the monitoring rather than to the data: a second failure of the same collection, a
restart of both exporters, an upstream outage longer than the lookback (E2E_OUTAGE_SECONDS).
Only a later successful refresh resolves it. The rules are the shipped ones with their times cut
together (``rule_times.py``): every ``for:`` to 2s and the lookback, how long missing data
resolves nothing, from 10m to 20s. So the restart (a gap in the data) must be bridged by the
lookback, and the outage, longer than the lookback, must not need it: the exporter keeps
exporting what it knew. The tests run in order and share one stack (one xdist worker).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from exporter.simulator import Fault, Simulator, SimulatorOptions
from monitoring.stack import (
    Prometheus,
    WebhookReceiver,
    alertmanager_process,
    answers,
    binary,
    exporter_process,
    free_port,
    prometheus_process,
    shortened_rules,
    wait_until,
    webhook_receiver,
)

pytestmark = pytest.mark.e2e

TOKEN = "paging-token-5d2e"
FAILED = "RefreshFailed"
HOLD = 2.0
"""Every ``for:`` of the test copy of the rules."""
LOOKBACK = 20.0
"""``alerts.lookback`` of the test copy (shipped: 10m): longer than a restart of both exporters
takes on a loaded machine, shorter than the outage."""
OUTAGE_SECONDS = float(os.environ.get("E2E_OUTAGE_SECONDS", LOOKBACK + 10))


@dataclass
class PagingStack:
    simulator: Simulator
    prometheus: Prometheus
    pages: WebhookReceiver
    collection: str
    exporters: ExitStack
    start_exporters: Callable[[], list[str]]

    def refresh_pages(self) -> list[str]:
        """Statuses of the MilvusRefreshJobFailed notifications for the collection, in order."""
        return [
            note.status
            for note in self.pages.of(
                "MilvusRefreshJobFailed", milvus_cluster="scripted", collection=self.collection
            )
        ]

    def fail_refresh(self, reason: str) -> int:
        return self.simulator.start_refresh(
            "default", self.collection, outcome="failed", duration_seconds=0.5, reason=reason
        )


@pytest.fixture(scope="module")
def paging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PagingStack]:
    for name in ("prometheus", "alertmanager"):
        if binary(name) is None:
            if os.environ.get("CI"):
                pytest.fail(
                    f"{name} is required in CI (Debian packages prometheus, prometheus-alertmanager)"
                )
            pytest.skip(f"{name} not installed")
    workdir = tmp_path_factory.mktemp("paging")
    simulator = Simulator(
        SimulatorOptions(
            seed=21, tokens=(TOKEN,), databases=("default",), collections_per_database=1,
            auto_refresh=False, time_scale=1.0,
        )
    )  # fmt: skip
    ports = {"exporter-a": free_port(), "exporter-b": free_port()}
    with ExitStack() as stack:
        upstream = stack.enter_context(simulator.serve("127.0.0.1", 0))
        exporters = stack.enter_context(ExitStack())

        def start_exporters() -> list[str]:
            """Both exporters of the HA pair, on their own ports every time (a restart)."""
            urls = []
            for name, port in ports.items():
                config_text = (
                    f"poll_interval: 1s\nrequest_timeout: 1s\nstate_file: {workdir}/{name}.json\n"
                    f"clusters:\n  - name: scripted\n    endpoint: {upstream.url}\n"
                    f"    token: {TOKEN}\n    databases: [default]\n    jobs: [refresh]\n"
                )
                url = exporters.enter_context(
                    exporter_process(workdir, name, config_text, port=port)
                )
                urls.append(url)
            wait_until(
                lambda: all(answers(url + "/readyz") for url in urls), 30, "both to be ready"
            )
            return urls

        urls = start_exporters()
        pages, webhook = stack.enter_context(webhook_receiver())
        alertmanager = stack.enter_context(alertmanager_process(workdir, webhook))
        prometheus = stack.enter_context(
            prometheus_process(
                workdir,
                [url.removeprefix("http://") for url in urls],
                shortened_rules(workdir, hold=HOLD, lookback=LOOKBACK),
                alertmanager=alertmanager,
            )
        )
        collection = simulator.databases()["default"]["externalCollections"][0]
        yield PagingStack(simulator, prometheus, pages, collection, exporters, start_exporters)


def test_a_failed_refresh_pages_once_with_its_reason_even_from_an_ha_pair(paging):
    job_id = paging.fail_refresh("iceberg snapshot 42 not found")
    note = wait_until(
        lambda: paging.pages.of("MilvusRefreshJobFailed", collection=paging.collection),
        60,
        "the first page",
    )[0]
    assert note.status == "firing"
    assert "iceberg snapshot 42 not found" in note.annotations["description"]
    assert str(job_id) in note.annotations["description"]
    assert "instance" not in note.labels and "job_id" not in note.labels
    time.sleep(8)  # time for a duplicate, were there one
    assert paging.refresh_pages() == ["firing"]


def test_a_second_failure_of_the_same_collection_is_not_a_new_page(paging):
    job_id = paging.fail_refresh("permission denied on volume")

    def description_names_the_new_job() -> bool:
        return any(
            str(job_id) in alert["annotations"]["description"]
            for alert in paging.prometheus.alerts("MilvusRefreshJobFailed")
        )

    wait_until(description_names_the_new_job, 60, "the alert to name the second failure")
    time.sleep(5)
    assert paging.refresh_pages() == ["firing"]


def test_restarting_both_exporters_resolves_nothing(paging):
    stopped = time.monotonic()
    paging.exporters.close()  # both stop; their state files stay
    wait_until(  # a failed scrape marks every series of its target stale
        lambda: len(paging.prometheus.query("up == 0")) == 2, 30, "both scrapes to fail"
    )
    time.sleep(2)  # a few more failed scrapes and rule evaluations on the gap
    paging.start_exporters()
    wait_until(
        lambda: len(paging.prometheus.query("milvus_jobs_exporter_target_up == 1")) == 2,
        30,
        "Prometheus to scrape both restarted exporters",
    )
    gap = time.monotonic() - stopped
    assert gap < LOOKBACK, f"the restart took {gap:.0f}s, over the lookback: a machine too slow"
    time.sleep(5)
    assert paging.refresh_pages() == ["firing"]


def test_an_upstream_outage_longer_than_the_lookback_pages_as_an_outage_and_resolves_nothing(
    paging,
):
    assert OUTAGE_SECONDS > LOOKBACK + HOLD, "an outage the lookback bridges proves nothing"
    started = time.monotonic()
    paging.simulator.set_fault(Fault(kind="http_503"))
    try:
        wait_until(
            lambda: any(
                note.status == "firing" for note in paging.pages.of("MilvusJobsExporterTargetDown")
            ),
            60,
            "the outage to page",
        )
        time.sleep(max(0.0, started + OUTAGE_SECONDS - time.monotonic()))
    finally:
        paging.simulator.clear_faults()
    assert paging.refresh_pages() == ["firing"]
    wait_until(
        lambda: any(
            note.status == "resolved" for note in paging.pages.of("MilvusJobsExporterTargetDown")
        ),
        60,
        "the outage page to resolve",
    )
    assert paging.refresh_pages() == ["firing"]


def test_a_later_successful_refresh_resolves_the_page(paging):
    paging.simulator.start_refresh(
        "default", paging.collection, outcome="completed", duration_seconds=0.5
    )
    wait_until(lambda: paging.refresh_pages() == ["firing", "resolved"], 60, "the resolve")
