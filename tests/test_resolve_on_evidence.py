"""The real daemon lets go of a collection or a target only on evidence, and says so.

Against the simulator on 127.0.0.1: a collection dropped upstream loses its failure series within
a discovery interval while its target stays in sight; a collection whose failed import the server
merely forgot, but which is still listed, keeps the failure past ``collection_retention``; a
reload or a restart that removes a cluster exports the removal marker (``cause="config"``) and
logs ``targets.removed``, a restart on another shard does not; a database that discovery no
longer lists is marked ``cause="dropped"``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from exporter.config.loader import ClusterConfig
from exporter.simulator import FLAVORS, Simulator, SimulatorOptions

from . import hostile
from .conftest import TOKEN_A, RunningExporter, Series, series, value
from .test_cli import free_port, serve_process
from .test_soak import busiest_second

MARKER = "milvus_jobs_exporter_target_removed_timestamp_seconds"
BOOKS = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books"}


@pytest.fixture
def make_world() -> Iterator[Callable[..., tuple[Simulator, str]]]:
    """Quiet simulators (no automatic jobs) with a minute per second; stopped afterwards."""
    servers = []

    def make(**overrides: object) -> tuple[Simulator, str]:
        options: dict[str, object] = {
            "seed": 3, "tokens": (TOKEN_A,), "databases": ("default", "analytics"),
            "collections_per_database": 2, "time_scale": 60.0, "auto_refresh": False,
        }  # fmt: skip
        options.update(overrides)
        sim = Simulator(SimulatorOptions(**options))  # type: ignore[arg-type]
        server = sim.serve("127.0.0.1", 0)
        servers.append(server)
        return sim, server.url

    yield make
    for server in servers:
        server.shutdown()


def prod(url: str, **settings: object) -> ClusterConfig:
    values: dict[str, object] = {"databases": ("default",), "discovery_interval": 0.5}
    values.update(settings)
    return ClusterConfig("prod", url, TOKEN_A, **values)  # type: ignore[arg-type]


def wait_until(
    exporter: RunningExporter, check: Callable[[Series], bool], what: str, timeout: float = 10.0
) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        parsed = exporter.scrape()
        if check(parsed):
            return parsed
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def of_books(parsed: Series) -> list[tuple[str, dict[str, str]]]:
    return [
        (name, dict(labels))
        for (name, labels) in parsed
        if ("collection", "ext_books") in labels and ("database", "default") in labels
    ]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_collection_dropped_upstream_loses_its_failure_within_a_discovery_interval(
    make_world, start_exporter, flavor
):
    sim, url = make_world(flavor=flavor)
    exporter = start_exporter(prod(url), poll_interval=0.3)
    job_id = sim.start_refresh("default", "ext_books", outcome="failed", duration_seconds=1,
                               reason="snapshot 9 not found")  # fmt: skip
    failure = {**BOOKS, "job_id": str(job_id), "reason": "snapshot 9 not found"}
    wait_until(
        exporter,
        lambda p: value(p, "milvus_refresh_last_failure_info", **failure) == 1,
        "the failure",
    )

    dropped = requests.delete(f"{url}/_simulator/collections/default/ext_books", timeout=5)
    assert dropped.json() == {"ok": True}
    started = time.monotonic()
    parsed = wait_until(exporter, lambda p: not of_books(p), "the dropped collection to go")
    assert time.monotonic() - started < 0.5 + 2 * 0.3 + 2  # one discovery interval, slack
    up = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **up) == 1
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="dropped") == 1
    listed = {"milvus_cluster": "prod", "database": "default"}
    assert value(parsed, "milvus_jobs_exporter_collections_list_up", **listed) == 1
    requests_made = value(parsed, "milvus_jobs_exporter_api_requests_total",
                          milvus_cluster="prod", api="collections/list", outcome="success")  # fmt: skip
    assert requests_made and requests_made >= 2
    # the server still lists the job: only collections/list told the exporter
    still = requests.post(
        url + "/v2/vectordb/jobs/external_collection/list",
        json={"dbName": "default"},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
        timeout=5,
    ).json()
    assert job_id in {record["jobId"] for record in still["data"]["records"]}
    exporter.wait_for_cycles(3)
    assert not of_books(exporter.scrape())


def test_a_failed_import_the_server_forgot_stays_while_its_collection_is_listed(
    make_world, start_exporter
):
    sim, url = make_world(import_retention_seconds=30.0)  # half a second at 60x
    exporter = start_exporter(prod(url, jobs=("import",)), poll_interval=0.3,
                              collection_retention=1.5)  # fmt: skip
    job_id = sim.start_import("default", "books", outcome="failed", duration_seconds=1,
                              reason="row count mismatch")  # fmt: skip
    failure = {**BOOKS, "collection": "books", "job_id": job_id, "reason": "row count mismatch"}
    wait_until(exporter, lambda p: value(p, "milvus_import_job_failure_info", **failure) == 1,
               "the failure")  # fmt: skip
    wait_until(
        exporter,
        lambda p: not [s for s in series(p, "milvus_import_jobs") if s["collection"] == "books"
                       and value(p, "milvus_import_jobs", **s)],
        "the server to forget the import",
    )  # fmt: skip
    time.sleep(1.5 + 1.0)  # past collection_retention: only collections/list keeps it now
    parsed = exporter.scrape()
    assert value(parsed, "milvus_import_job_failure_info", **failure) == 1
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total",
                 reason="retention") == 0  # fmt: skip


def test_a_database_discovery_no_longer_lists_is_marked_dropped(make_world, start_exporter):
    sim, url = make_world()
    exporter = start_exporter(prod(url, databases=("*",), jobs=("refresh",)), poll_interval=0.3)
    wait_until(exporter, lambda p: len(series(p, "milvus_jobs_exporter_target_up")) == 2,
               "both databases")  # fmt: skip
    before = time.time()
    sim.remove_database("analytics")
    parsed = wait_until(exporter, lambda p: bool(series(p, MARKER)), "the marker")
    marker = {"milvus_cluster": "prod", "database": "analytics", "kind": "refresh",
              "cause": "dropped"}  # fmt: skip
    assert series(parsed, MARKER) == [marker]
    assert before <= (value(parsed, MARKER, **marker) or 0) <= time.time()
    assert [s["database"] for s in series(parsed, "milvus_jobs_exporter_target_up")] == ["default"]
    assert not [s for s in series(parsed, "milvus_refresh_jobs") if s["database"] == "analytics"]


# -- the collections lists themselves -----------------------------------------------------------

COLLECTIONS = "/v2/vectordb/collections/list"


def test_job_lists_go_first_and_each_database_is_listed_once_per_discovery_interval(
    make_world, start_exporter
):
    sim, url = make_world(requests_per_second=None)
    exporter = start_exporter(
        prod(url, databases=("default", "analytics"), discovery_interval=1.0),
        poll_interval=0.2,
        max_concurrent_requests=1,  # one request at a time: the order is the scheduler's
        requests_per_second=1000,  # and the limiter never makes a list wait its turn
    )
    first_round = [record.path for record in sim.request_log()][:5]
    assert sorted(path.rsplit("/", 2)[-2] for path in first_round[:4]) == [
        "external_collection", "external_collection", "import", "import"
    ]  # fmt: skip
    assert first_round[4] == COLLECTIONS
    time.sleep(3.0)
    asked: dict[str | None, int] = {}
    for record in sim.request_log():
        if record.path == COLLECTIONS:
            asked[record.database] = asked.get(record.database, 0) + 1
    assert set(asked) == {"default", "analytics"}
    assert all(2 <= count <= 5 for count in asked.values()), asked  # 3-4 s at one per second
    parsed = exporter.scrape()
    assert value(parsed, "milvus_jobs_exporter_collections_list_up", milvus_cluster="prod",
                 database="analytics") == 1  # fmt: skip


def test_collections_lists_stay_within_the_rate_limit(make_world, start_exporter):
    databases = tuple(f"db{index:02d}" for index in range(30))
    sim, url = make_world(databases=databases, collections_per_database=1)
    start_exporter(
        prod(url, databases=databases, jobs=("refresh",), discovery_interval=0.05),
        poll_interval=1.0,
        request_timeout=1.0,
    )
    time.sleep(3)
    listed = [r for r in sim.request_log() if r.path == COLLECTIONS]
    assert len({r.database for r in listed}) == 30
    assert busiest_second([r.arrival for r in listed]) <= 20
    assert all(r.status == 200 for r in listed)


def test_a_server_without_collections_list_is_said_once_per_cluster_and_costs_nothing_else(
    start_exporter,
):
    behaviour = hostile.without_collections_list(
        hostile.records(hostile.refresh_record(1, "ext_books", "RefreshFailed", reason="boom"))
    )
    with hostile.hostile_server({}, default=behaviour) as server, capture_logs() as logs:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, databases=("default", "analytics"),
                                jobs=("refresh",), discovery_interval=0.3)  # fmt: skip
        exporter = start_exporter(cluster, poll_interval=0.2)
        time.sleep(1.5)
        parsed = exporter.scrape()
    said = [line for line in logs if line["event"] == "collections.list_unsupported"]
    assert [line["cluster"] for line in said] == ["prod"]
    asked = value(parsed, "milvus_jobs_exporter_api_requests_total", milvus_cluster="prod",
                  api="collections/list", outcome="http_404")  # fmt: skip
    assert asked is not None and asked >= 2
    for database in ("default", "analytics"):
        up = {"milvus_cluster": "prod", "database": database, "kind": "refresh"}
        assert value(parsed, "milvus_jobs_exporter_target_up", **up) == 1
        labels = {"milvus_cluster": "prod", "database": database}
        assert value(parsed, "milvus_jobs_exporter_collections_list_up", **labels) == 0
        assert value(parsed, "milvus_refresh_last_failure_info", **labels,
                     collection="ext_books", job_id="1", reason="boom") == 1  # fmt: skip


# -- removal by config, through the real process ----------------------------------------------


def write_config(path: Path, url: str, *clusters: str, state_file: Path | None = None) -> Path:
    lines = ["poll_interval: 500ms", "request_timeout: 2s", "max_retries: 0"]
    if state_file is not None:
        lines.append(f"state_file: {state_file}")
    lines.append("clusters:")
    for name in clusters:
        lines += [
            f"  - name: {name}",
            f"    endpoint: {url}",
            "    token: ${MILVUS_TOKEN}",
            "    databases: [default, analytics]",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def scrape(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return ""


def wait_for_text(port: int, needle: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (text := scrape(port)):
        assert time.monotonic() < deadline, f"never saw {needle!r}"
        time.sleep(0.1)
    return text


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err[-2000:]
    return err


def removals_logged(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "targets.removed"]


STAGING_UP = (
    'milvus_jobs_exporter_target_up{milvus_cluster="staging",database="default",kind="refresh"}'
)
STAGING_REMOVED = (
    'milvus_jobs_exporter_target_removed_timestamp_seconds{milvus_cluster="staging",'
    'database="default",kind="refresh",cause="config"}'
)


def parse(text: str) -> Series:
    parsed: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def test_a_reload_that_removes_a_cluster_says_so_in_a_marker_and_a_log_line(make_world, tmp_path):
    _sim, url = make_world()
    config = write_config(tmp_path / "config.yaml", url, "prod", "staging")
    port = free_port()
    process = serve_process(config, port)
    try:
        wait_for_text(port, STAGING_UP)
        write_config(config, url, "prod")
        process.send_signal(signal.SIGHUP)
        parsed = parse(wait_for_text(port, STAGING_REMOVED))
        err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert {(s["milvus_cluster"], s["cause"]) for s in series(parsed, MARKER)} == {
        ("staging", "config")
    }
    assert len(series(parsed, MARKER)) == 4  # two databases, two kinds
    assert {s["milvus_cluster"] for s in series(parsed, "milvus_jobs_exporter_target_up")} == {
        "prod"
    }
    logged = [
        (line["cluster"], line["database"], line["kinds"], line["cause"])
        for line in removals_logged(err)
    ]
    assert logged == [
        ("staging", "analytics", ["import", "refresh"], "config"),
        ("staging", "default", ["import", "refresh"], "config"),
    ]


def test_a_restart_without_a_cluster_marks_it_removed_and_one_on_another_shard_does_not(
    make_world, tmp_path
):
    _sim, url = make_world()
    state = tmp_path / "state.json"
    copy = tmp_path / "copy.json"
    config = tmp_path / "config.yaml"

    def run_once(*extra: str, wait_for: str) -> tuple[Series, str]:
        port = free_port()
        process = serve_process(config, port, *extra)
        try:
            text = wait_for_text(port, wait_for)
            return parse(text), stop(process)
        finally:
            if process.poll() is None:
                process.kill()

    write_config(config, url, "prod", "staging", state_file=state)
    run_once(wait_for=STAGING_UP)
    copy.write_bytes(state.read_bytes())
    assert len(json.loads(state.read_text())["watched"]) == 8

    parsed, err = run_once("--shard", "1/2", wait_for="milvus_jobs_exporter_target_up{")
    assert series(parsed, MARKER) == []
    assert removals_logged(err) == []

    write_config(config, url, "prod", state_file=copy)
    parsed, err = run_once(wait_for=STAGING_REMOVED)
    assert {(s["milvus_cluster"], s["cause"]) for s in series(parsed, MARKER)} == {
        ("staging", "config")
    }
    assert {line["cluster"] for line in removals_logged(err)} == {"staging"}
