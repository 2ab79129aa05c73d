"""Breaking things on purpose: reloads, signals, outages, hostile HTTP. /metrics must stay true."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from exporter.config.loader import load_config
from exporter.daemon import Daemon
from exporter.simulator import Fault
from exporter.web.server import ExporterHTTPServer, serve_in_thread

from .conftest import TOKEN_A, RunningExporter, cluster, series, value
from .test_cli import free_port, serve_process, write_config

pytestmark = pytest.mark.slow


def up(name: str, database: str, kind: str = "refresh") -> dict[str, str]:
    return {"milvus_cluster": name, "database": database, "kind": kind}


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def file_exporter(tmp_path):
    """A daemon started from a config file, so it can be reloaded (``POST /-/reload`` enabled)."""
    started: list[RunningExporter] = []

    def start(config_path: Path) -> RunningExporter:
        daemon = Daemon(
            load_config(config_path, {"MILVUS_TOKEN": TOKEN_A}),
            config_loader=lambda p: load_config(p, {"MILVUS_TOKEN": TOKEN_A}),
        )
        server = ExporterHTTPServer(("127.0.0.1", 0), lambda: daemon, enable_lifecycle=True)
        serve_in_thread(server)
        daemon.start()
        exporter = RunningExporter(daemon, server)
        exporter.wait_for_cycles(1)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.daemon.stop(timeout=5)
        exporter.server.shutdown()
        exporter.server.server_close()


def test_reload_adds_and_removes_targets_and_removed_series_vanish(
    simulator, tmp_path, file_exporter
):
    _sim, url = simulator
    path = write_config(tmp_path, url, databases="[default]")
    exporter = file_exporter(path)
    assert value(exporter.scrape(), "milvus_jobs_exporter_target_up", **up("prod", "default")) == 1
    before = value(
        exporter.scrape(), "milvus_jobs_exporter_config_last_reload_success_timestamp_seconds"
    )

    write_config(tmp_path, url, databases="[analytics]")
    response = requests.post(exporter.url + "/-/reload", timeout=5)
    assert response.status_code == 200

    def switched():
        parsed = exporter.scrape()
        return (
            value(parsed, "milvus_jobs_exporter_target_up", **up("prod", "analytics")) == 1
            and parsed
        )

    parsed = wait_for(switched, what="the analytics target")
    assert {s["database"] for s in series(parsed, "milvus_jobs_exporter_target_up")} == {
        "analytics"
    }
    assert {s["database"] for s in series(parsed, "milvus_refresh_jobs")} == {"analytics"}
    assert value(parsed, "milvus_jobs_exporter_config_last_reload_successful") == 1
    assert (
        value(parsed, "milvus_jobs_exporter_config_last_reload_success_timestamp_seconds") > before
    )


def test_an_invalid_reload_is_refused_and_the_old_config_keeps_running(
    simulator, tmp_path, file_exporter
):
    _sim, url = simulator
    path = write_config(tmp_path, url, databases="[default]")
    exporter = file_exporter(path)
    path.write_text(path.read_text().replace("poll_interval: 1s", "poll_interval: soon"))
    response = requests.post(exporter.url + "/-/reload", timeout=5)
    assert response.status_code == 500
    assert "poll_interval" in response.text and "Traceback" not in response.text
    parsed = exporter.scrape()
    assert value(parsed, "milvus_jobs_exporter_config_last_reload_successful") == 0
    cycles = value(parsed, "milvus_jobs_exporter_poll_cycles_total")
    exporter.wait_for_cycles(2)
    parsed = exporter.scrape()
    assert value(parsed, "milvus_jobs_exporter_poll_cycles_total") > cycles
    assert value(parsed, "milvus_jobs_exporter_target_up", **up("prod", "default")) == 1


def _metrics(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return ""


def test_sighup_reloads_the_config_of_a_running_process(simulator, tmp_path):
    _sim, url = simulator
    path = write_config(tmp_path, url, databases="[default]")
    port = free_port()
    process = serve_process(path, port)
    try:
        wait_for(
            lambda: 'database="default",kind="refresh"} 1.0' in _metrics(port), what="first scrape"
        )
        write_config(tmp_path, url, databases="[default, analytics]")
        process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: 'database="analytics",kind="refresh"} 1.0' in _metrics(port),
            what="reloaded target",
        )
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert '"event": "config.reloaded"' in err


def test_sigterm_exits_0_within_the_request_timeout_while_a_request_hangs(simulator, tmp_path):
    sim, url = simulator
    path = write_config(tmp_path, url, databases="[default, analytics]")
    port = free_port()
    process = serve_process(path, port)
    try:
        wait_for(lambda: "milvus_jobs_exporter_target_up" in _metrics(port), what="first scrape")
        sim.set_fault(Fault(kind="timeout", seconds=60))
        time.sleep(1.5)  # the next cycle's requests are now hanging upstream
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert elapsed < 2.0 + 3.0  # request_timeout (2s) plus shutdown slack


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(
            Fault(kind="huge_body", size_bytes=50 * 1024 * 1024), "too_large", id="50-MB-body"
        ),
        pytest.param(Fault(kind="hang_mid_body", seconds=10), "timeout", id="hangs-mid-body"),
        pytest.param(Fault(kind="http_503"), "http_503", id="http-503"),
    ],
)
def test_an_outage_marks_the_target_down_and_it_recovers_by_itself(
    simulator, start_exporter, fault, reason
):
    sim, url = simulator
    sim.set_fault(fault, database="analytics")
    exporter = start_exporter(
        cluster(url), poll_interval=2.0, request_timeout=1.0, max_response_bytes=1024 * 1024
    )
    exporter.wait_for_cycles(1)
    parsed = exporter.scrape()
    assert (
        value(
            parsed,
            "milvus_jobs_exporter_target_error_info",
            **up("prod", "analytics"),
            reason=reason,
        )
        == 1
    )
    assert value(parsed, "milvus_jobs_exporter_target_up", **up("prod", "default")) == 1
    sim.clear_faults()
    wait_for(
        lambda: (
            value(exporter.scrape(), "milvus_jobs_exporter_target_up", **up("prod", "analytics"))
            == 1
        ),
        what="recovery",
    )


def test_a_hanging_cluster_does_not_slow_the_cadence_of_the_others(simulator, start_exporter):
    sim, url = simulator
    sim.set_fault(Fault(kind="timeout", seconds=30), database="analytics")
    exporter = start_exporter(cluster(url), poll_interval=1.0, request_timeout=0.8, max_retries=3)
    first = value(
        exporter.scrape(),
        "milvus_jobs_exporter_last_success_timestamp_seconds",
        **up("prod", "default"),
    )
    exporter.wait_for_cycles(4)
    last = value(
        exporter.scrape(),
        "milvus_jobs_exporter_last_success_timestamp_seconds",
        **up("prod", "default"),
    )
    cycles = 4
    # each cycle still starts one poll_interval after the last: timeouts and retries fit inside it
    assert last - first <= cycles * 1.0 + 1.0


def test_rate_limited_answers_pause_that_token_for_retry_after(simulator, start_exporter):
    sim, url = simulator
    sim.set_fault(Fault(kind="rate_limited", retry_after=3), path="import/list")
    exporter = start_exporter(
        cluster(url, databases=("default",)), poll_interval=0.5, max_retries=2
    )
    exporter.wait_for_cycles(2)
    parsed = exporter.scrape()
    assert (
        value(
            parsed,
            "milvus_jobs_exporter_target_error_info",
            **up("prod", "default", "import"),
            reason="rate_limited",
        )
        == 1
    )

    def import_arrivals() -> list[float]:
        return sorted(r.arrival for r in sim.request_log() if r.path.endswith("/import/list"))

    arrivals = wait_for(lambda: len(import_arrivals()) >= 3 and import_arrivals(), timeout=15)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 2.9
    assert value(parsed, "milvus_jobs_exporter_target_up", **up("prod", "default", "refresh")) == 1


def test_hostile_http_requests_get_clean_answers_and_the_server_keeps_serving(
    simulator, start_exporter
):
    _sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)))
    host, port = exporter.server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        answer = sock.recv(1024)
    assert answer.split(b" ")[1] in (b"400", b"431")
    with socket.create_connection((str(host), int(port)), timeout=5) as sock:
        sock.sendall(
            b"GET /metrics HTTP/1.1\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(200))
            + b"\r\n"
        )
        answer = sock.recv(1024)
    assert answer.split(b" ")[1] in (b"400", b"431")
    with socket.create_connection((str(host), int(port)), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01garbage\r\n\r\n")
        sock.recv(1024)
    assert requests.get(exporter.url + "/-/reload", timeout=5).status_code == 405
    assert requests.delete(exporter.url + "/metrics", timeout=5).status_code == 405
    assert requests.get(exporter.url + "/metrics/../etc/passwd", timeout=5).status_code == 404
    assert requests.get(exporter.url + "/metrics", timeout=5).status_code == 200


def test_a_literal_token_in_a_world_readable_config_is_warned_about(tmp_path, simulator):
    _sim, url = simulator
    path = write_config(tmp_path, url, token="literal-token-value")
    os.chmod(path, 0o644)
    config = load_config(path, {})
    assert any("readable by other users" in warning for warning in config.warnings)
    assert all("literal-token-value" not in warning for warning in config.warnings)
    os.chmod(path, 0o600)
    assert not any("readable" in warning for warning in load_config(path, {}).warnings)
    env_path = write_config(tmp_path, url)
    os.chmod(env_path, 0o644)
    assert not any(
        "readable" in warning for warning in load_config(env_path, {"MILVUS_TOKEN": "x"}).warnings
    )
