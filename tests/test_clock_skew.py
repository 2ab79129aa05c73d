"""A host clock two days behind (issue 20): every record was skipped as ``bad_time`` while the
target showed up=1, and the cycle timestamp followed the wall clock, so the stall alert fired on
an exporter that polled fine. The real daemon, with its wall clock set back, against a hostile
server whose answers carry the server's ``Date``. Every wait is bounded."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from structlog.testing import capture_logs

from exporter.config.loader import Config
from exporter.daemon import Daemon
from exporter.web.server import ExporterHTTPServer

from . import hostile
from .conftest import RunningExporter, series, serve_quickly, value
from .test_no_silent_stall import BAD, GOOD, clusters_on, labels

TWO_DAYS = 2 * 86_400.0


@pytest.fixture
def skewed_exporter() -> Iterator[Callable[..., RunningExporter]]:
    """The real daemon and HTTP server, with the daemon's wall clock ``behind`` seconds late."""
    running: list[RunningExporter] = []

    def start(*clusters, behind: float, **settings: object) -> RunningExporter:
        values: dict[str, object] = {"poll_interval": 0.5, "request_timeout": 2.0, "max_retries": 0}
        values.update(settings)
        config = Config(clusters=clusters, listen_address="127.0.0.1:0", **values)  # type: ignore[arg-type]
        daemon = Daemon(config, wall_clock=lambda: time.time() - behind)
        server = ExporterHTTPServer(("127.0.0.1", 0), lambda: daemon)
        serve_quickly(server)
        exporter = RunningExporter(daemon, server)
        running.append(exporter)
        daemon.start()
        exporter.wait_for_cycles(1)
        return exporter

    yield start
    for exporter in running:
        exporter.daemon.stop(timeout=5)
        exporter.server.shutdown()
        exporter.server.server_close()


def test_a_host_clock_two_days_behind_reads_every_record_and_reports_the_skew(skewed_exporter):
    with hostile.hostile_server({}) as server, capture_logs() as logs:
        exporter = skewed_exporter(clusters_on(server.url), behind=TWO_DAYS)
        exporter.wait_for_cycles(2)
        parsed = exporter.scrape()
    said = [entry for entry in logs if entry["event"] == "poll.clock_skew"]
    assert len(said) == 1, said
    assert said[0]["cluster"] == "prod" and abs(said[0]["skew_s"] - TWO_DAYS) < 5
    for database in (GOOD, BAD):
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(database)) == 1
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_skipped_records_total",
                **labels(database),
                reason="bad_time",
            )
            or 0
        ) == 0
    assert {found["collection"] for found in series(parsed, "milvus_refresh_jobs")} == {"ext_ok"}
    skew = value(parsed, "milvus_jobs_exporter_upstream_clock_skew_seconds", milvus_cluster="prod")
    assert skew is not None and abs(skew - TWO_DAYS) < 5, skew


def test_a_record_more_than_a_day_ahead_of_both_clocks_is_still_bad_time(skewed_exporter):
    """Times sent in the wrong unit still fail: the server's clock vouches only for its own now."""
    ahead = hostile.records(
        hostile.refresh_record(1, "ext_ok"),
        hostile.refresh_record(2, "ext_future", startTime=int((time.time() + TWO_DAYS) * 1000)),
    )
    with hostile.hostile_server({BAD: ahead}) as server:
        exporter = skewed_exporter(clusters_on(server.url), behind=0.0)
        parsed = exporter.scrape()
    assert value(parsed, "milvus_jobs_exporter_target_up", **labels(BAD)) == 1
    assert (
        value(
            parsed, "milvus_jobs_exporter_skipped_records_total", **labels(BAD), reason="bad_time"
        )
        == 1
    )
    skew = value(parsed, "milvus_jobs_exporter_upstream_clock_skew_seconds", milvus_cluster="prod")
    assert skew is not None and abs(skew) < 5, skew


def test_the_cycle_age_is_measured_inside_the_exporter_whatever_its_wall_clock(skewed_exporter):
    with hostile.hostile_server({}) as server:
        exporter = skewed_exporter(clusters_on(server.url), behind=TWO_DAYS)
        exporter.wait_for_cycles(1)
        parsed = exporter.scrape()
    stamp = value(parsed, "milvus_jobs_exporter_last_poll_cycle_timestamp_seconds")
    age = value(parsed, "milvus_jobs_exporter_last_poll_cycle_age_seconds")
    assert stamp is not None and time.time() - stamp > TWO_DAYS - 60  # the wall clock, as before
    assert age is not None and 0 <= age < 2.0, age


def test_the_cycle_age_grows_at_every_scrape_while_the_poll_loop_is_stuck(
    skewed_exporter, monkeypatch
):
    with hostile.hostile_server({}) as server:
        exporter = skewed_exporter(clusters_on(server.url), behind=0.0, poll_interval=0.2)
        release = threading.Event()
        original = exporter.daemon.model.update

        def frozen(*args, **kwargs):
            release.wait(timeout=20)
            return original(*args, **kwargs)

        monkeypatch.setattr(exporter.daemon.model, "update", frozen)
        try:
            first = value(exporter.scrape(), "milvus_jobs_exporter_last_poll_cycle_age_seconds")
            time.sleep(1.5)
            later = value(exporter.scrape(), "milvus_jobs_exporter_last_poll_cycle_age_seconds")
        finally:
            release.set()
    assert first is not None and later is not None
    assert later - first >= 1.2, (first, later)


def test_a_hostile_answer_carries_the_server_date():
    """The tests above rely on it: real servers always send Date."""
    with hostile.hostile_server({}) as server:
        answer = requests.post(server.url + "/v2/vectordb/jobs/import/list", json={}, timeout=5)
    sent = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(sent - time.time()) < 5
    assert json.loads(answer.content)["code"] == 0
