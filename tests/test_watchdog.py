"""The watchdog against real sockets: a deadline holds however slowly bytes come."""

from __future__ import annotations

import socket
import threading
import time

from exporter.guards.watchdog import Watchdog


def _blocked_reader(sock: socket.socket, result: list[bytes]) -> threading.Thread:
    def read() -> None:
        result.append(sock.recv(1024))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_watch_shuts_a_blocked_read_down_at_its_deadline():
    left, right = socket.socketpair()
    watchdog = Watchdog()
    try:
        started = time.monotonic()
        watch = watchdog.watch(time.monotonic() + 0.3)
        watch.attach(left)
        result: list[bytes] = []
        reader = _blocked_reader(left, result)
        reader.join(timeout=5)
        elapsed = time.monotonic() - started
        assert not reader.is_alive()
        assert result == [b""]
        assert watch.fired
        assert 0.25 <= elapsed < 2.0
    finally:
        watchdog.stop()
        left.close()
        right.close()


def test_a_trickle_that_keeps_each_read_short_still_meets_the_deadline():
    left, right = socket.socketpair()
    left.settimeout(1.0)  # each read is short: a per-read timeout alone would never fire
    watchdog = Watchdog()
    stop_trickle = threading.Event()

    def trickle() -> None:
        while not stop_trickle.wait(0.1):
            try:
                right.send(b"x")
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    received = 0
    started = time.monotonic()
    try:
        watch = watchdog.watch(time.monotonic() + 0.5)
        watch.attach(left)
        while time.monotonic() - started < 5:
            chunk = left.recv(1)
            if not chunk:
                break
            received += 1
        elapsed = time.monotonic() - started
        assert watch.fired
        assert received >= 2
        assert elapsed < 2.0
    finally:
        stop_trickle.set()
        watchdog.stop()
        left.close()
        right.close()


def test_a_released_watch_never_fires():
    left, right = socket.socketpair()
    watchdog = Watchdog()
    try:
        watch = watchdog.watch(time.monotonic() + 0.1)
        watch.attach(left)
        watch.release()
        time.sleep(0.3)
        assert not watch.fired
        right.send(b"still open")
        assert left.recv(100) == b"still open"
    finally:
        watchdog.stop()
        left.close()
        right.close()


def test_a_socket_attached_after_the_deadline_is_shut_at_once():
    left, right = socket.socketpair()
    watchdog = Watchdog()
    try:
        watch = watchdog.watch(time.monotonic() - 1)
        deadline = time.monotonic() + 5
        while not watch.fired and time.monotonic() < deadline:
            time.sleep(0.01)
        watch.attach(left)
        left.settimeout(2)
        assert left.recv(10) == b""
    finally:
        watchdog.stop()
        left.close()
        right.close()


def test_stop_fires_every_pending_watch_and_refuses_new_ones():
    watchdog = Watchdog()
    first = watchdog.watch(time.monotonic() + 3600)
    watchdog.stop()
    assert first.fired
    assert watchdog.watch(time.monotonic() + 3600).fired


def test_many_released_watches_do_not_pile_up():
    watchdog = Watchdog()
    try:
        for _ in range(1000):
            watchdog.watch(time.monotonic() + 0.05).release()
        deadline = time.monotonic() + 5
        while watchdog.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watchdog.pending == 0
    finally:
        watchdog.stop()
