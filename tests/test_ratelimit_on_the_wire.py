"""The real daemon holds a shared token to 20 requests/s as the server counts them, by arrival,
however late its requests leave after their rate-limit slot (issue 20).

On a loaded host some requests left 150-300 ms after their slot and the simulator counted 23 in
one second. Load is not reproducible, so the delay is made here where it happened, on the
exporter's side between slot and wire: one cluster's endpoint is a name whose lookup takes
``LOOKUP_SECONDS`` (every new connection looks it up), next to a cluster on an address sharing
its token. The simulator stamps each request with the kernel's receive time (``SO_TIMESTAMP``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import hostile
from .conftest import TOKEN_A, Series, cluster, running_simulator, series

SLOW_NAME = "slow.ratelimit.test"
LOOKUP_SECONDS = (1.0, 1.5)
"""As slow as a struggling resolver: long enough to push requests taken early in one window into
the next, and longer than a window (the slot lapses while connecting and is taken again)."""


@pytest.fixture
def slow_lookups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``SLOW_NAME`` is 127.0.0.1, answered ``request.param`` seconds late (every other name as
    usual); the monotonic times the lookups started are returned."""
    lookup_seconds = request.param
    real = socket.getaddrinfo
    started: list[float] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == SLOW_NAME:
            started.append(time.monotonic())
            time.sleep(lookup_seconds)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return started


def busiest_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered)


@pytest.mark.parametrize("slow_lookups", LOOKUP_SECONDS, indirect=True, ids=lambda s: f"{s}s")
def test_requests_late_to_the_wire_never_put_more_than_20_in_a_second(slow_lookups, start_exporter):
    with running_simulator() as (sim, url):
        names = [f"db{index:02d}" for index in range(40)]
        for name in names:
            sim.add_database(name, collections=1)
        port = url.rsplit(":", 1)[1]
        exporter = start_exporter(
            cluster(f"http://{SLOW_NAME}:{port}", name="slow", databases=tuple(names[:10])),
            cluster(url, name="fast", databases=tuple(names[10:])),
            poll_interval=60.0,
            request_timeout=5.0,
            max_concurrent_requests=48,
        )
        parsed = exporter.scrape()
        assert slow_lookups, "the slow cluster never looked its name up"
        arrivals: dict[str, list[float]] = {}
        for record in sim.request_log():
            if record.path.startswith("/v2/") and record.token == TOKEN_A:
                arrivals.setdefault(record.path, []).append(record.arrival)
        lists = arrivals["/v2/vectordb/jobs/external_collection/list"]
        assert len(lists) == 40
        busiest = {path: busiest_second(times) for path, times in arrivals.items()}
        print(f"busiest second by path: {busiest}; lookups: {len(slow_lookups)}")
        assert max(busiest.values()) <= 20, busiest
        assert not series(parsed, "milvus_jobs_exporter_target_error_info")  # none refused (429)


DEAD_NAME = "dead.ratelimit.test"


@pytest.fixture
def dead_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """``DEAD_NAME``'s lookups never answer (until the test ends); every other name as usual."""
    real = socket.getaddrinfo
    over = threading.Event()
    started: list[float] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == DEAD_NAME:
            started.append(time.monotonic())
            over.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "no answer")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield started
    over.set()


def last_successes(parsed: Series, cluster_name: str) -> list[float]:
    return [
        value
        for (name, labels), value in parsed.items()
        if name == "milvus_jobs_exporter_last_success_timestamp_seconds"
        and ("milvus_cluster", cluster_name) in labels
    ]


def healthy_freshness(exporter: Any) -> tuple[float, float]:
    """(seconds until 10 of the healthy cluster's targets succeeded, the most stale its
    oldest success got over the 12 s after): within 10 s and 12 s."""
    started = time.monotonic()
    while len(last_successes(exporter.scrape(), "healthy")) < 10:
        assert time.monotonic() < started + 10, "a healthy target never succeeded"
        time.sleep(0.1)
    first_success = time.monotonic() - started
    worst = 0.0
    deadline = time.monotonic() + 12.0
    while time.monotonic() < deadline:
        successes = last_successes(exporter.scrape(), "healthy")
        worst = max(worst, time.time() - min(successes))
        time.sleep(0.25)
    print(f"first success after {first_success:.1f}s; healthy staleness {worst:.1f}s")
    return first_success, worst


def test_a_dead_cluster_sharing_the_token_does_not_eat_its_budget(dead_lookups, start_exporter):
    """Slots of requests that never leave (their lookup never answers) hold their place one
    window at most: the healthy cluster on the same token is polled in the first round, without
    waiting for the dead one's lookups to give up, and stays fresh."""
    with running_simulator() as (sim, url):
        names = [f"db{index:02d}" for index in range(30)]
        for name in names:
            sim.add_database(name, collections=1)
        port = url.rsplit(":", 1)[1]
        exporter = start_exporter(
            cluster(f"http://{DEAD_NAME}:{port}", name="dead", databases=tuple(names[:20])),
            cluster(url, name="healthy", databases=tuple(names[20:])),
            poll_interval=3.0,
            request_timeout=2.0,
        )
        first_success, worst = healthy_freshness(exporter)
        assert dead_lookups, "the dead cluster never looked its name up"
        # slots held until the dead lookups gave up (request_timeout) made it 2.8 s; now ~0.1 s
        assert first_success < 2.0, f"first healthy success {first_success:.1f}s after a cycle"
        assert worst <= 2 * 3 + 1, f"the healthy cluster got {worst:.1f}s stale"


def test_a_cluster_that_never_connects_does_not_hold_a_token_it_shares(start_exporter):
    """Requests to an address that drops every SYN never reach the wire, each for its whole
    request_timeout: their slots count for one window at most, as if sent when taken, so the
    healthy cluster on the same token stays as fresh as before (unsent slots counted until
    their attempts ended made it 9.0 s stale at a 3 s poll interval; 5.9 s before issue 20)."""
    try:
        dead = hostile.BlackholedAddresses(1)
    except OSError as error:
        pytest.skip(f"cannot make a loopback address that drops connects here: {error}")
    try:
        with running_simulator() as (sim, url):
            names = [f"db{index:02d}" for index in range(30)]
            for name in names:
                sim.add_database(name, collections=1)
            endpoint = f"http://{dead.addresses[0]}:{dead.port}"
            exporter = start_exporter(
                cluster(endpoint, name="dead", databases=tuple(names[:20])),
                cluster(url, name="healthy", databases=tuple(names[20:])),
                poll_interval=3.0,
                request_timeout=2.0,
                wait=False,
            )
            _first_success, worst = healthy_freshness(exporter)
    finally:
        dead.close()
    assert worst <= 2 * 3 + 1, f"the healthy cluster got {worst:.1f}s stale"
