"""Name resolution and connecting held to the request's deadline (issue 20), against the real
daemon in a private mount namespace.

The daemon runs under ``unshare --mount`` with its own ``/etc/resolv.conf`` (a nameserver on
127.0.0.0/8 that reads every query and never answers) and its own ``/etc/hosts`` (a name with
eight addresses, each a listener whose backlog is full, so every SYN is dropped). Both need
root; the tests are skipped otherwise. Every wait is bounded.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from . import hostile
from .conftest import TOKEN_A, TOKEN_B
from .test_cli import REPO, free_port

pytestmark = pytest.mark.slow

STUCK_NAME = "stuck.milvus.test"
MANY_NAME = "many.milvus.test"


def _namespaces_usable() -> str | None:
    """Why the namespace tests cannot run here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (a private mount namespace with its own /etc/resolv.conf)"
    if shutil.which("unshare") is None:
        return "needs unshare(1)"
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        return f"unshare --mount with a bind mount failed: {probe.stderr.decode()[:200]}"
    return None


_WHY_NOT = _namespaces_usable()
requires_namespaces = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")


class SilentNameserver:
    """A UDP 'nameserver' on 127.x.y.z:53 that reads every query and answers none."""

    def __init__(self) -> None:
        self.queries = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.address = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
            try:
                self._sock.bind((self.address, 53))
                break
            except OSError:
                continue
        else:
            self._sock.close()
            pytest.skip("no free 127.53.x.y:53 to put a silent nameserver on")
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._drop, daemon=True)
        self._thread.start()

    def _drop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sock.recvfrom(4096)
            except OSError:
                continue
            self.queries += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def blackholed_addresses(count: int) -> hostile.BlackholedAddresses:
    try:
        return hostile.BlackholedAddresses(count)
    except OSError as error:
        pytest.skip(f"cannot make loopback addresses that drop connects here: {error}")


def write_config(
    path: Path, healthy_url: str, stuck_endpoint: str, databases: int, names: int = 1
) -> Path:
    """A healthy cluster, and ``names`` clusters (one name each) of ``databases`` databases
    behind ``stuck_endpoint`` (``{index}`` in it is the cluster's number)."""
    listed = ", ".join(f"db{index:02d}" for index in range(databases))
    lines = [
        "poll_interval: 3s",
        "request_timeout: 2s",
        "max_retries: 0",
        "clusters:",
        f"  - name: healthy\n    endpoint: {healthy_url}\n    token: {TOKEN_B}",
        "    databases: [good]",
    ]
    for index in range(names):
        endpoint = stuck_endpoint.format(index=index)
        lines += [
            f"  - name: stuck{index:02d}\n    endpoint: {endpoint}\n    token: {TOKEN_A}",
            f"    databases: [{listed}]",
        ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@contextmanager
def namespaced_exporter(
    config: Path, port: int, resolv_conf: Path, hosts: Path, stderr: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m exporter serve`` with its own resolv.conf and hosts file (nothing else of the
    host changes: the namespace is private and dies with the process)."""
    script = (
        'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
    )
    command = [
        "unshare", "--mount", "sh", "-c", script, "sh", str(resolv_conf), str(hosts),
        sys.executable, "-m", "exporter", "serve", "--config", str(config),
        "--listen", f"127.0.0.1:{port}", "--log-format", "json", "--log-level", "info",
    ]  # fmt: skip
    with stderr.open("wb") as errors:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    parsed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def healthy_last_success(parsed: dict) -> float | None:
    found = [
        value
        for (name, labels), value in parsed.items()
        if name == "milvus_jobs_exporter_last_success_timestamp_seconds"
        and ("milvus_cluster", "healthy") in labels
    ]
    return min(found) if found else None


def stuck_reasons(parsed: dict) -> set[str]:
    return {
        dict(labels)["reason"]
        for (name, labels), _value in parsed.items()
        if name == "milvus_jobs_exporter_target_error_info"
        and dict(labels)["milvus_cluster"].startswith("stuck")
    }


def stuck_request_latencies(parsed: dict) -> tuple[float, float]:
    """(requests of the stuck cluster, how many of them took at most 2.5 s)."""
    count = within = 0.0
    for (name, labels), value in parsed.items():
        if not dict(labels).get("milvus_cluster", "").startswith("stuck"):
            continue
        if name == "milvus_jobs_exporter_api_request_duration_seconds_count":
            count += value
        elif (
            name == "milvus_jobs_exporter_api_request_duration_seconds_bucket"
            and (
                "le",
                "2.5",
            )
            in labels
        ):
            within += value
    return count, within


def hosts_file(tmp_path: Path, extra: list[str]) -> Path:
    path = tmp_path / "hosts"
    path.write_text(Path("/etc/hosts").read_text() + "\n" + "\n".join(extra) + "\n")
    return path


def resolv_conf_file(tmp_path: Path, nameserver: str) -> Path:
    path = tmp_path / "resolv.conf"
    # Long timeouts and no search list: one lookup hangs for minutes, as a dead resolver does.
    path.write_text(f"nameserver {nameserver}\noptions timeout:30 attempts:5\n")
    return path


def watch_staleness(port: int, seconds: float) -> tuple[float, dict]:
    """The oldest the healthy cluster's last success got over ``seconds`` of scrapes."""
    worst = 0.0
    parsed: dict = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        parsed = scrape(port) or parsed
        last = healthy_last_success(parsed) if parsed else None
        if last is not None:
            worst = max(worst, time.time() - last)
        time.sleep(0.25)
    return worst, parsed


def wait_for_first_cycle(port: int, process: subprocess.Popen[bytes], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "the exporter exited"
        parsed = scrape(port)
        if parsed and healthy_last_success(parsed) is not None:
            return parsed
        assert time.monotonic() < deadline, f"no poll cycle published within {timeout:g}s"
        time.sleep(0.2)


def sigterm_seconds(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        return time.monotonic() - started
    return time.monotonic() - started


@requires_namespaces
@pytest.mark.parametrize(
    ("names", "databases"),
    [
        pytest.param(1, 20, id="one-name-20-databases"),
        pytest.param(40, 1, id="40-names-more-than-the-resolver-keeps-pending"),
    ],
)
def test_a_resolver_that_never_answers_delays_only_its_own_clusters(tmp_path, names, databases):
    """Databases behind names whose resolver never answers, next to a healthy cluster on
    another token: the healthy one stays fresh, the stuck ones are down (dns) within their
    request_timeout, and SIGTERM ends the process in seconds, however many lookups hang."""
    with ExitStack() as stack:
        nameserver = SilentNameserver()
        stack.callback(nameserver.close)
        healthy = stack.enter_context(hostile.hostile_server({}))
        config = write_config(
            tmp_path / "config.yaml",
            healthy.url,
            f"http://stuck{{index}}.{STUCK_NAME}:9",
            databases=databases,
            names=names,
        )
        port = free_port()
        process = stack.enter_context(
            namespaced_exporter(
                config,
                port,
                resolv_conf_file(tmp_path, nameserver.address),
                hosts_file(tmp_path, []),
                tmp_path / "stderr.log",
            )
        )
        wait_for_first_cycle(port, process, timeout=15)
        worst, parsed = watch_staleness(port, seconds=12)
        elapsed = sigterm_seconds(process)
        stderr = (tmp_path / "stderr.log").read_text()
        print(f"healthy staleness {worst:.1f}s; SIGTERM {elapsed:.1f}s")
        assert nameserver.queries > 0, "the exporter never asked the silent nameserver"
        assert worst <= 2 * 3 + 1, f"the healthy cluster got {worst:.1f}s stale"
        assert stuck_reasons(parsed) == {"dns"}, stuck_reasons(parsed)
        assert re.search(
            r"no answer from the resolver for 'stuck\d+\.stuck\.milvus\.test' within", stderr
        )
        assert "answer not complete within" not in stderr, "a stuck lookup was called a timeout"
        if names > 32:
            assert "lookups are already pending (the resolver is not answering)" in stderr
        assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
        assert process.returncode == 0
        assert "Traceback" not in stderr


@requires_namespaces
def test_a_name_with_eight_dead_addresses_fails_within_the_request_timeout(tmp_path):
    with ExitStack() as stack:
        dead = blackholed_addresses(8)
        stack.callback(dead.close)
        healthy = stack.enter_context(hostile.hostile_server({}))
        config = write_config(
            tmp_path / "config.yaml", healthy.url, f"http://{MANY_NAME}:{dead.port}", databases=2
        )
        port = free_port()
        (tmp_path / "resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
        started = time.monotonic()
        process = stack.enter_context(
            namespaced_exporter(
                config,
                port,
                tmp_path / "resolv.conf",
                hosts_file(tmp_path, [f"{address} {MANY_NAME}" for address in dead.addresses]),
                tmp_path / "stderr.log",
            )
        )
        wait_for_first_cycle(port, process, timeout=15)
        deadline = time.monotonic() + 20
        while True:
            parsed = scrape(port) or {}
            count, within = stuck_request_latencies(parsed)
            if count >= 4:
                break
            assert time.monotonic() < deadline, "the dead addresses' requests never ended"
            time.sleep(0.25)
        first_failure = time.monotonic() - started
        elapsed = sigterm_seconds(process)
        print(
            f"{count:g} requests, {within:g} within 2.5s; first failures after {first_failure:.1f}s"
        )
        assert within == count, f"only {within:g} of {count:g} requests ended within 2.5 s"
        assert stuck_reasons(parsed) <= {"timeout", "connect"}, stuck_reasons(parsed)
        assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
