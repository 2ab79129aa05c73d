"""Name lookups and connects inside the request's deadline: the resolver with a lookup that never
returns, and the connect loop against loopback addresses that drop every SYN (no root needed)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from exporter.guards.watchdog import Watchdog
from exporter.upstream.resolver import ResolutionError, ResolutionTimeout, Resolver, ResolverBusy
from exporter.upstream.transport import open_connection, watched

from . import hostile


class StuckLookups:
    """A ``getaddrinfo`` that blocks until released, counting its calls per name."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int, family: int, kind: int) -> list[tuple]:
        with self._lock:
            self.calls[host] = self.calls.get(host, 0) + 1
        self.release.wait(timeout=30)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


@pytest.fixture
def stuck() -> Iterator[StuckLookups]:
    lookups = StuckLookups()
    yield lookups
    lookups.release.set()


def timed(call) -> tuple[object, float]:
    started = time.monotonic()
    try:
        result: object = call()
    except ResolutionError as error:
        result = error
    return result, time.monotonic() - started


def test_a_lookup_that_never_returns_is_given_up_at_the_callers_deadline(stuck):
    resolver = Resolver(lookup=stuck)

    result, elapsed = timed(lambda: resolver.resolve("stuck.test", 443, 0, timeout=1.2))

    assert isinstance(result, ResolutionTimeout)
    assert "no answer from the resolver for 'stuck.test' within 1.2s" in str(result)
    assert 1.1 <= elapsed < 2.0


def test_once_a_caller_gave_up_on_a_name_the_next_ones_fail_at_once(stuck):
    resolver = Resolver(lookup=stuck)
    timed(lambda: resolver.resolve("stuck.test", 443, 0, timeout=1.1))

    result, elapsed = timed(lambda: resolver.resolve("stuck.test", 443, 0, timeout=5.0))

    assert isinstance(result, ResolutionTimeout)
    assert "still pending" in str(result)
    assert elapsed < 0.5
    assert stuck.calls == {"stuck.test": 1}, "a stuck name must keep one thread, not one per call"


def test_callers_of_one_name_share_one_lookup_and_all_get_its_answer(stuck):
    resolver = Resolver(lookup=stuck)
    answers: list[object] = []

    def ask() -> None:
        answers.append(resolver.resolve("slow.test", 80, 0, timeout=5.0))

    askers = [threading.Thread(target=ask) for _ in range(5)]
    for asker in askers:
        asker.start()
    time.sleep(0.2)
    stuck.release.set()
    for asker in askers:
        asker.join(timeout=5)

    assert stuck.calls == {"slow.test": 1}
    assert len(answers) == 5
    assert all(answer == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))]
               for answer in answers)  # fmt: skip


def test_a_stuck_name_is_looked_up_again_once_its_lookup_ends(stuck):
    resolver = Resolver(lookup=stuck)
    timed(lambda: resolver.resolve("stuck.test", 443, 0, timeout=1.1))
    stuck.release.set()
    deadline = time.monotonic() + 5
    while resolver.pending and time.monotonic() < deadline:
        time.sleep(0.01)

    assert resolver.resolve("stuck.test", 443, 0, timeout=5.0)
    assert stuck.calls == {"stuck.test": 2}


def test_beyond_max_pending_lookups_a_caller_fails_at_once_with_a_reason(stuck):
    resolver = Resolver(max_pending=2, lookup=stuck)
    for name in ("a.test", "b.test"):
        threading.Thread(
            target=timed, args=(lambda n=name: resolver.resolve(n, 443, 0, 3.0),), daemon=True
        ).start()
    deadline = time.monotonic() + 5
    while resolver.pending < 2 and time.monotonic() < deadline:
        time.sleep(0.01)

    result, elapsed = timed(lambda: resolver.resolve("c.test", 443, 0, timeout=5.0))

    assert isinstance(result, ResolverBusy)
    assert "2 lookups are already pending" in str(result)
    assert elapsed < 0.5


def test_a_name_that_does_not_exist_is_a_resolution_error_in_one_line():
    def nxdomain(host: str, port: int, family: int, kind: int) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result, _elapsed = timed(lambda: Resolver(lookup=nxdomain).resolve("no.test", 1, 0, 2.0))

    assert isinstance(result, ResolutionError)
    assert str(result) == "cannot resolve 'no.test': Name or service not known"


def test_a_fired_watch_ends_a_lookup_wait_at_once(stuck):
    """At shutdown the watchdog fires every watch: a worker waiting for a lookup is freed."""
    resolver = Resolver(lookup=stuck)
    watchdog = Watchdog()
    watch = watchdog.watch(time.monotonic() + 30)
    threading.Timer(0.3, watchdog.stop).start()

    result, elapsed = timed(
        lambda: resolver.resolve("stuck.test", 443, 0, 30.0, wake=watch.call_on_fire)
    )

    assert isinstance(result, ResolutionTimeout)
    assert elapsed < 2.0


class ListedAddresses:
    """A resolver that answers at once with these addresses."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    def resolve(self, host, port, family, timeout, wake=None) -> list[tuple]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in self.addresses
        ]


def test_eight_addresses_that_drop_every_connect_share_one_deadline():
    """Before: each address got the whole connect timeout (8 x 2 s for a 2 s request)."""
    try:
        dead = hostile.BlackholedAddresses(8)
    except OSError as error:
        pytest.skip(f"cannot make loopback addresses that drop connects here: {error}")
    watchdog = Watchdog()
    try:
        started = time.monotonic()
        with watched(watchdog, time.monotonic() + 2.0), pytest.raises(TimeoutError) as raised:
            open_connection("many.test", dead.port, 2.0, ListedAddresses(dead.addresses))
        elapsed = time.monotonic() - started
    finally:
        watchdog.stop()
        dead.close()
    assert 1.8 <= elapsed < 3.0, f"took {elapsed:.1f}s"
    assert "no connection to many.test in time (4 of 8 addresses tried)" in str(raised.value)


def test_a_refused_address_passes_its_time_to_the_next_one():
    with socket.create_server(("127.0.0.1", 0)) as live:
        port = live.getsockname()[1]
        with socket.socket() as refusing:  # bound, never listening: a connect is refused
            refusing.bind(("127.0.0.3", port))
            addresses = ListedAddresses(["127.0.0.3", "127.0.0.1"])
            watchdog = Watchdog()
            started = time.monotonic()
            try:
                with watched(watchdog, time.monotonic() + 2.0):
                    sock = open_connection("two.test", port, 2.0, addresses)
                    peer = sock.getpeername()
                    sock.close()
            finally:
                watchdog.stop()
    assert peer == ("127.0.0.1", port)
    assert time.monotonic() - started < 1.0


def test_an_address_is_used_as_it_is_without_a_lookup_thread():
    """An endpoint such as http://10.0.0.7:19530 needs no resolver thread; a name does."""
    threads: list[str] = []

    def lookup(host: str, port: int, family: int, kind: int) -> list[tuple]:
        threads.append(threading.current_thread().name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]

    resolver = Resolver(lookup=lookup)
    for host in ("127.0.0.1", "::1", "fe80::1%lo", "localhost"):
        resolver.resolve(host, 80, 0, timeout=5.0)

    caller = threading.current_thread().name
    assert threads == [caller, caller, caller, "resolve"]
