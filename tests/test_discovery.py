"""Database discovery: patterns in ``databases`` follow the cluster's own database list.

Against the simulator (its ``databases/list``, and its control API to add and drop databases
while it runs): a new database is polled within one discovery interval, a dropped one goes, an
outage keeps the last list, patterns and exclusions match as documented, and the discovery
requests stay within the rate limit.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
import structlog

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.polling.targets import databases_of
from exporter.simulator import Fault, Simulator, SimulatorOptions

from . import hostile
from .conftest import TOKEN_A, RunningExporter, Series, series, value
from .test_cli import run
from .test_soak import busiest_second
from .test_state import samples_of

DISCOVERY = "databases/list"


def pattern_cluster(url: str, *databases: str, exclude: tuple[str, ...] = ()) -> ClusterConfig:
    return ClusterConfig(
        name="prod",
        endpoint=url,
        token=TOKEN_A,
        databases=databases or ("*",),
        exclude_databases=exclude,
        jobs=("refresh",),
        discovery_interval=0.5,
    )


def polled_databases(parsed: Series) -> set[str]:
    return {found["database"] for found in series(parsed, "milvus_jobs_exporter_target_up")}


def wait_for_databases(
    exporter: RunningExporter, expected: set[str], timeout: float = 10
) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        parsed = exporter.scrape()
        if polled_databases(parsed) == expected:
            return parsed
        assert time.monotonic() < deadline, f"polled {polled_databases(parsed)}, not {expected}"
        time.sleep(0.1)


@pytest.fixture
def world():
    sim = Simulator(
        SimulatorOptions(
            seed=5, tokens=(TOKEN_A,), databases=("default", "analytics", "prod_eu"),
            collections_per_database=1, time_scale=60.0,
        )
    )  # fmt: skip
    with sim.serve("127.0.0.1", 0) as server:
        yield sim, server.url


@pytest.mark.parametrize(
    ("patterns", "exclude", "expected"),
    [
        pytest.param(("*",), (), ("default", "analytics", "prod_eu", "prod_us"), id="everything"),
        pytest.param(("prod_*",), (), ("prod_eu", "prod_us"), id="prefix"),
        pytest.param(("*",), ("prod_*",), ("default", "analytics"), id="excluded"),
        pytest.param(("default", "prod_?s"), (), ("default", "prod_us"), id="named-and-pattern"),
        pytest.param(("[ad]*",), ("a*",), ("default",), id="character-class"),
    ],
)
def test_patterns_and_exclusions_pick_databases_as_documented(patterns, exclude, expected):
    cluster = ClusterConfig(
        name="c", endpoint="http://x", token="t", databases=patterns, exclude_databases=exclude
    )
    listed = ("default", "analytics", "prod_eu", "prod_us")
    assert sorted(databases_of(cluster, listed)) == sorted(expected)


def test_a_named_database_is_polled_without_asking_for_the_list(world, start_exporter):
    sim, url = world
    start_exporter(pattern_cluster(url, "default"), poll_interval=0.3)
    assert not [r for r in sim.request_log() if r.path.endswith(DISCOVERY)]


def test_a_database_created_at_run_time_is_polled_and_a_dropped_one_goes(world, start_exporter):
    sim, url = world
    exporter = start_exporter(pattern_cluster(url, "*"), poll_interval=0.3)
    parsed = wait_for_databases(exporter, {"default", "analytics", "prod_eu"})
    assert value(parsed, "milvus_jobs_exporter_discovered_databases", milvus_cluster="prod") == 3
    assert value(parsed, "milvus_jobs_exporter_discovery_up", milvus_cluster="prod") == 1

    sim.add_database("created_later", collections=1)
    started = time.monotonic()
    wait_for_databases(exporter, {"default", "analytics", "prod_eu", "created_later"})
    assert time.monotonic() - started < 0.5 + 0.3 + 2  # one discovery interval, one poll, slack

    sim.remove_database("analytics")
    parsed = wait_for_databases(exporter, {"default", "prod_eu", "created_later"})
    assert not [s for s in series(parsed, "milvus_refresh_jobs") if s["database"] == "analytics"]


def test_a_discovery_outage_keeps_polling_the_last_list(world, start_exporter):
    sim, url = world
    exporter = start_exporter(pattern_cluster(url, "*"), poll_interval=0.3)
    wait_for_databases(exporter, {"default", "analytics", "prod_eu"})
    sim.set_fault(Fault(kind="http_500"), path=DISCOVERY)
    deadline = time.monotonic() + 10
    while True:
        parsed = exporter.scrape()
        errors = value(
            parsed,
            "milvus_jobs_exporter_discovery_errors_total",
            milvus_cluster="prod",
            reason="http_500",
        )
        if errors:
            break
        assert time.monotonic() < deadline, "the failed discovery was never counted"
        time.sleep(0.1)
    assert value(parsed, "milvus_jobs_exporter_discovery_up", milvus_cluster="prod") == 0
    assert polled_databases(parsed) == {"default", "analytics", "prod_eu"}
    for database in ("default", "analytics", "prod_eu"):
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_target_up",
                milvus_cluster="prod",
                database=database,
                kind="refresh",
            )
            == 1
        )


def test_a_first_discovery_that_fails_leaves_the_pattern_absent_and_says_so(world, start_exporter):
    sim, url = world
    sim.set_fault(Fault(kind="auth"), path=DISCOVERY)
    exporter = start_exporter(pattern_cluster(url, "default", "prod_*"), poll_interval=0.3)
    exporter.wait_for_cycles(2)
    parsed = exporter.scrape()
    assert polled_databases(parsed) == {"default"}
    assert value(parsed, "milvus_jobs_exporter_discovery_up", milvus_cluster="prod") == 0
    page = requests.get(exporter.url + "/", timeout=5).text
    assert "prod_*" in page and "auth" in page


def test_check_shows_what_each_pattern_matched(world, tmp_path):
    _sim, url = world
    path = tmp_path / "config.yaml"
    path.write_text(
        f"clusters:\n  - name: prod\n    endpoint: {url}\n    token: {TOKEN_A}\n"
        "    databases: [default, 'prod_*']\n    exclude_databases: ['*_us']\n    jobs: [refresh]\n"
    )
    result = run("check", "--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prod: pattern 'prod_*' matched prod_eu" in result.stdout
    assert result.stdout.count(" ok ") >= 2  # default and prod_eu were polled


def test_discovery_requests_stay_within_the_rate_limit(world, start_exporter):
    sim, url = world
    clusters = [
        ClusterConfig(
            name=f"c{index}", endpoint=url, token=TOKEN_A, databases=("*",), jobs=("refresh",),
            discovery_interval=0.05,
        )
        for index in range(30)
    ]  # fmt: skip
    start_exporter(*clusters, poll_interval=1.0, request_timeout=1.0)
    time.sleep(3)
    arrivals = [r.arrival for r in sim.request_log() if r.path.endswith(DISCOVERY)]
    assert len(arrivals) >= 30
    assert busiest_second(arrivals) <= 20


def test_jobs_list_lists_the_databases_a_pattern_matches(world, tmp_path):
    sim, url = world
    path = tmp_path / "config.yaml"
    path.write_text(
        f"clusters:\n  - name: prod\n    endpoint: {url}\n    token: {TOKEN_A}\n"
        "    databases: ['prod_*']\n    jobs: [refresh]\n"
    )
    result = run("jobs", "list", "--config", str(path), "--output", "json")
    assert result.returncode == 0, result.stderr
    assert {row["database"] for row in json.loads(result.stdout)} == {"prod_eu"}
    sim.set_fault(Fault(kind="http_503"), path=DISCOVERY)
    failed = run("jobs", "list", "--config", str(path))
    assert failed.returncode == 1
    assert "prod: databases 'prod_*': " in failed.stderr and "Traceback" not in failed.stderr


def database_list(*names: str) -> hostile.Behaviour:
    """A cluster whose ``databases/list`` answers ``names``, and whose job lists are empty."""

    def behave(exchange: hostile.Exchange) -> None:
        if exchange.path.endswith("/databases/list"):
            exchange.answer({"code": 0, "data": list(names)})
        else:
            exchange.answer({"code": 0, "data": {"records": []}})

    return behave


def test_a_cluster_listing_too_many_databases_or_absurd_names_gets_only_what_the_limits_allow():
    """1,500 databases, a name of 1 MB and one of 300 characters: every one became a target
    (and a label). Now at most max_discovered_databases (1,000) are polled, in name order;
    names longer than Milvus allows are never polled; both are counted and logged once."""
    huge, long = "h" * 1_000_000, "l" * 300
    names = [f"db{index:05d}" for index in range(1_500)]
    behaviour = database_list(*names, huge, long)
    with hostile.hostile_server({}, default=behaviour) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, databases=("*",), jobs=("refresh",))
        config = Config(clusters=(cluster,), poll_interval=2.0, request_timeout=2.0, max_retries=0)
        with structlog.testing.capture_logs() as logs:
            daemon = Daemon(config)
            daemon.run_cycle()  # the discovery
            targets = daemon.poller.targets
            daemon.run_cycle()
            parsed = samples_of(daemon)
            body = daemon.cache.scrape().body
            daemon.stop()
    assert [target.database for target in targets] == names[:1_000]
    skipped = "milvus_jobs_exporter_discovery_skipped_databases"
    assert value(parsed, skipped, milvus_cluster="prod", reason="limit") == 500
    assert value(parsed, skipped, milvus_cluster="prod", reason="name_too_long") == 2
    assert value(parsed, "milvus_jobs_exporter_discovered_databases", milvus_cluster="prod") == 1000
    assert huge.encode() not in body and long.encode() not in body
    said = [line for line in logs if line["event"] == "discovery.databases_skipped"]
    assert len(said) == 1
    assert said[0]["over_limit"] == 500 and said[0]["name_too_long"] == 2
    assert all(len(str(line)) < 5_000 for line in logs)  # no megabyte log line


def test_a_target_failing_the_same_way_every_cycle_is_logged_once_until_it_changes():
    """Every failed poll logged poll.failed: 20,000 broken databases made 210,000 lines a
    minute. Now the first failure is logged at once, repeats only every ten minutes with
    their count, and a recovery or another reason is logged at once."""
    broken = {"answer": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"}

    def behave(exchange: hostile.Exchange) -> None:
        exchange.send(broken["answer"])

    with hostile.hostile_server({"default": behave}) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        config = Config(clusters=(cluster,), poll_interval=2.0, request_timeout=2.0, max_retries=0)
        daemon = Daemon(config)
        with structlog.testing.capture_logs() as logs:
            for _ in range(4):
                daemon.run_cycle()
            broken["answer"] = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
            daemon.run_cycle()
        daemon.stop()
    failures = [line for line in logs if line["event"] == "poll.failed"]
    assert [line["reason"] for line in failures] == ["http_503", "auth"]
