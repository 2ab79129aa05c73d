"""The exporter process against a busy host: stderr that blocks, breaks or is closed, a poll loop
that stalls, SIGTERM while upstreams trickle. Each test runs the real process, bounded in time.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from exporter import daemon as daemon_module
from exporter.log import QueuedStream, dropped_log_lines

from . import hostile
from .conftest import TOKEN_A, cluster, value
from .test_cli import REPO, free_port

pytestmark = pytest.mark.slow

DATABASES = ", ".join(f"db{index:02d}" for index in range(6))


def write_busy_config(tmp_path: Path, url: str, clusters: int = 8) -> Path:
    """Many targets polled fast, so debug logging writes tens of KB per second."""
    lines = ["poll_interval: 200ms", "request_timeout: 1s", "max_retries: 0", "clusters:"]
    for index in range(clusters):
        lines += [
            f"  - name: c{index}",
            f"    endpoint: {url}",
            f"    token: {TOKEN_A}",
            f"    databases: [{DATABASES}]",
        ]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@contextmanager
def exporter_process(
    config: Path, port: int, *logging: str, **popen: object
) -> Iterator[subprocess.Popen[bytes]]:
    """The exporter serving ``config``; ``logging`` replaces the default JSON debug flags."""
    command = [
        sys.executable, "-m", "exporter", "serve", "--config", str(config),
        "--listen", f"127.0.0.1:{port}",
        *(logging or ("--log-format", "json", "--log-level", "debug")),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, **popen)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def metric(port: int, name: str) -> float | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def cycles_after(port: int, seconds: float) -> tuple[float, float]:
    """Poll cycles counted now and ``seconds`` later (waiting for the first scrape first)."""
    deadline = time.monotonic() + 20
    while (first := metric(port, "milvus_jobs_exporter_poll_cycles_total")) is None:
        assert time.monotonic() < deadline, "the exporter never answered /metrics"
        time.sleep(0.1)
    time.sleep(seconds)
    second = metric(port, "milvus_jobs_exporter_poll_cycles_total")
    assert second is not None
    return first, second


def test_a_stderr_pipe_nobody_reads_never_stops_polling(simulator, tmp_path):
    _sim, url = simulator
    port = free_port()
    with exporter_process(
        write_busy_config(tmp_path, url), port, stderr=subprocess.PIPE
    ) as process:
        time.sleep(4)  # far more than the 64 KiB a pipe holds is logged by now
        first, second = cycles_after(port, 3)
        assert process.poll() is None
        assert second >= first + 2, f"polling stalled: {first} -> {second} cycles"


def test_a_broken_stderr_pipe_is_survived(simulator, tmp_path):
    _sim, url = simulator
    port = free_port()
    with exporter_process(
        write_busy_config(tmp_path, url), port, stderr=subprocess.PIPE
    ) as process:
        cycles_after(port, 0)
        assert process.stderr is not None
        process.stderr.close()  # every write from now on is EPIPE
        first, second = cycles_after(port, 3)
        assert process.poll() is None
        assert second >= first + 2
        assert (metric(port, "milvus_jobs_exporter_log_lines_dropped_total") or 0) > 0


def test_a_process_started_with_stderr_closed_polls_and_serves(simulator, tmp_path):
    _sim, url = simulator
    port = free_port()
    config = write_busy_config(tmp_path, url, clusters=1)
    with exporter_process(
        config,
        port,
        "--log-level=info",  # the format is left to the default, which asks stderr if it is a tty
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(2),
    ) as process:
        first, second = cycles_after(port, 2)
        assert process.poll() is None
        assert second >= first + 3
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200


def test_sigterm_ends_the_process_within_seconds_while_upstreams_trickle(tmp_path):
    with hostile.hostile_server({}, default=hostile.trickle_body(every=0.5)) as server:
        path = tmp_path / "config.yaml"
        path.write_text(
            f"poll_interval: 1s\nrequest_timeout: 30s\nclusters:\n"
            f"  - name: slow\n    endpoint: {server.url}\n    token: {TOKEN_A}\n"
            f"    databases: [a, b, c, d]\n"
        )
        path.chmod(0o600)
        port = free_port()
        with exporter_process(path, port, stderr=subprocess.DEVNULL) as process:
            deadline = time.monotonic() + 15
            while len(server.seen) < 4:  # every request is now trickling
                assert time.monotonic() < deadline, "the exporter sent no requests"
                time.sleep(0.1)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
            elapsed = time.monotonic() - started
        assert process.returncode == 0
        assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"


def test_a_stalled_poll_loop_makes_readyz_fail_and_stops_the_cycle_clock(
    simulator, start_exporter, monkeypatch
):
    _sim, url = simulator
    monkeypatch.setattr(daemon_module, "stall_after", lambda config: 1.0)
    exporter = start_exporter(cluster(url), poll_interval=0.2, request_timeout=0.2)
    deadline = time.monotonic() + 10
    while requests.get(exporter.url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "/readyz never became ready"
        time.sleep(0.05)
    release = threading.Event()
    original = exporter.daemon.model.update

    def frozen(*args, **kwargs):
        release.wait(timeout=20)  # the loop is stuck here, as it was behind a full stderr pipe
        return original(*args, **kwargs)

    monkeypatch.setattr(exporter.daemon.model, "update", frozen)
    frozen_at = value(exporter.scrape(), "milvus_jobs_exporter_last_poll_cycle_timestamp_seconds")
    deadline = time.monotonic() + 10
    while (answer := requests.get(exporter.url + "/readyz", timeout=5)).status_code == 200:
        assert time.monotonic() < deadline, "/readyz never noticed the stall"
        time.sleep(0.1)
    assert answer.status_code == 503
    assert "stalled" in answer.text
    assert (
        value(exporter.scrape(), "milvus_jobs_exporter_last_poll_cycle_timestamp_seconds")
        == frozen_at
    )
    assert "stalled" in requests.get(exporter.url + "/", timeout=5).text
    release.set()
    deadline = time.monotonic() + 10
    while requests.get(exporter.url + "/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "/readyz did not recover"
        time.sleep(0.1)


class BlockedStream(io.StringIO):
    """A stream whose writes hang, like a pipe that nobody reads."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(timeout=30)
        return len(text)


def test_a_full_log_queue_drops_and_counts_lines_without_waiting():
    stream = BlockedStream()
    queued = QueuedStream(stream, capacity=10)
    before = dropped_log_lines()
    started = time.monotonic()
    for index in range(100):
        queued.write(f"line {index}\n")
    elapsed = time.monotonic() - started
    stream.release.set()
    assert elapsed < 0.5
    assert dropped_log_lines() - before >= 100 - 10 - 1


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ValueError("closed file")])
def test_a_broken_log_stream_is_counted_not_fatal(error):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise error

    queued = QueuedStream(Broken())
    before = dropped_log_lines()
    for _ in range(5):
        queued.write("line\n")
    queued.drain(timeout=5)
    assert dropped_log_lines() - before == 5
