"""Soak: many targets, random faults for about a minute; nothing lost, nothing leaks, no excess rate.

Bounded by SOAK_SECONDS (default 40) so CI stays quick; run longer by hand with
``SOAK_SECONDS=600 scripts/test -m soak``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from exporter.config.loader import ClusterConfig
from exporter.simulator import Fault

from .conftest import series, value
from .helpers import wait_for_simulator
from .test_cli import free_port

pytestmark = pytest.mark.soak

TOKENS = ("soak-token-a", "soak-token-b", "soak-token-c")
DATABASES = tuple(f"db{index:02d}" for index in range(24))
FAULTS = (
    Fault(kind="http_500"),
    Fault(kind="html_200"),
    Fault(kind="truncated_json"),
    Fault(kind="wrong_types"),
    Fault(kind="unknown_state"),
    Fault(kind="timeout", seconds=2),
    Fault(kind="hang_mid_body", seconds=2),
    Fault(kind="rate_limited", retry_after=1),
    Fault(kind="connection_close"),
    Fault(kind="db_not_found"),
    Fault(kind="auth"),
    Fault(kind="huge_body", size_bytes=1536 * 1024),  # over the 1 MiB cap, cheap to make
)


POOL_THREAD = "poll_"  # the poller's ThreadPoolExecutor names its workers poll_0, poll_1, ...


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def busiest_second(arrivals: list[float]) -> int:
    arrivals = sorted(arrivals)
    busiest, start = 0, 0
    for end, moment in enumerate(arrivals):
        while moment - arrivals[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


class RemoteSimulator:
    """The simulator in its own process (its own GIL), driven over its HTTP control API.

    In one process with the exporter, a loaded interpreter stamps arrivals late by tens of
    milliseconds and the arrival clock stops meaning what a real server's would.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def set_fault(self, fault: Fault, database: str, path: str | None) -> None:
        body = {
            "kind": fault.kind,
            "database": database,
            "seconds": fault.seconds,
            "sizeBytes": fault.size_bytes,
            "retryAfter": fault.retry_after,
        }
        if path:
            body["path"] = path
        requests.post(f"{self.url}/_simulator/faults", json=body, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_simulator/faults", timeout=5).raise_for_status()

    def request_log(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.url}/_simulator/requests", timeout=30).json()["requests"])


@pytest.fixture
def soak_simulator() -> Iterator[RemoteSimulator]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "exporter",
        "simulate",
        "--listen",
        f"127.0.0.1:{port}",
        "--seed",
        "99",
        "--tokens",
        ",".join(TOKENS),
        "--databases",
        ",".join(DATABASES),
        "--collections",
        "2",
        "--time-scale",
        "60",
        "--latency",
        "0.01",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_simulator(url)
        yield RemoteSimulator(url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_random_faults_lose_no_target_leak_nothing_and_never_exceed_the_rate_limit(
    soak_simulator, start_exporter
):
    sim = soak_simulator
    url = sim.url
    clusters = (
        ClusterConfig(name="a-east", endpoint=url, token=TOKENS[0], databases=DATABASES[:12]),
        ClusterConfig(name="a-west", endpoint=url, token=TOKENS[0], databases=DATABASES[12:]),
        ClusterConfig(name="b", endpoint=url, token=TOKENS[1], databases=DATABASES),
        ClusterConfig(name="c", endpoint=url, token=TOKENS[2], databases=DATABASES[:12]),
    )
    expected_targets = sum(len(c.databases) * 2 for c in clusters)
    exporter = start_exporter(
        *clusters,
        poll_interval=1.0,
        request_timeout=0.5,
        max_retries=1,
        max_response_bytes=1024 * 1024,
    )
    exporter.wait_for_cycles(2)
    threads_before = threading.active_count()
    rss_before = rss_bytes()
    thread_counts: list[int] = []
    other_thread_counts: list[int] = []  # threads outside the poller's worker pool
    rng = random.Random(4)
    duration = float(os.environ.get("SOAK_SECONDS", "40"))
    deadline = time.monotonic() + duration
    scrapes = 0
    while time.monotonic() < deadline:
        if rng.random() < 0.2:
            sim.clear_faults()
        for _ in range(rng.randint(1, 4)):
            path = rng.choice((None, "external_collection/list", "import/list"))
            sim.set_fault(rng.choice(FAULTS), database=rng.choice(DATABASES), path=path)
        # a cheap line count, not a full parse: the test shares the exporter's interpreter, and
        # a parse of every scrape would hold the GIL the exporter's senders need
        body = requests.get(exporter.url + "/metrics", timeout=10).text
        scrapes += 1
        names = [thread.name for thread in threading.enumerate()]
        thread_counts.append(len(names))
        other_thread_counts.append(sum(not name.startswith(POOL_THREAD) for name in names))
        assert body.count("\nmilvus_jobs_exporter_target_up{") == expected_targets
        time.sleep(0.5)

    sim.clear_faults()
    exporter.wait_for_cycles(3, timeout=30)
    parsed = exporter.scrape()
    down = [
        s
        for s in series(parsed, "milvus_jobs_exporter_target_up")
        if value(parsed, "milvus_jobs_exporter_target_up", **s) != 1
    ]
    assert not down, f"targets still down after the faults cleared: {down}"
    assert scrapes >= duration  # the scrape loop itself kept going

    arrivals: dict[tuple[str, str], list[float]] = {}
    for record in sim.request_log():
        if record["path"].startswith("/v2/"):
            arrivals.setdefault((record["token"], record["path"]), []).append(record["arrival"])
    # refresh list, import list, import describe, collections list
    assert len(arrivals) == 4 * len(TOKENS)
    worst = max(busiest_second(times) for times in arrivals.values())
    if os.environ.get("SOAK_DEBUG"):
        for key, times in arrivals.items():
            times.sort()
            tight = [(round(times[i + 20] - times[i], 4), i) for i in range(len(times) - 20)]
            print("DEBUG", key[1][-25:], sorted(tight)[:3])
    assert worst <= 20, f"{worst} requests in one second for one (token, path)"

    rss_growth = rss_bytes() - rss_before
    half = len(thread_counts) // 2
    print(
        f"soak: {duration:.0f}s, threads {threads_before} -> max {max(thread_counts)}, "
        f"rss +{rss_growth / 2**20:.1f} MiB, busiest second {worst}"
    )
    # The worker pool grows on demand up to max_concurrent_requests (32), as fast as slow answers
    # ask for it: on a loaded machine it may still grow in the second half. Nothing else grows.
    assert max(thread_counts) <= threads_before + 32
    assert max(other_thread_counts[half:]) <= max(other_thread_counts[:half]) + 4
    assert rss_growth < 80 * 2**20
