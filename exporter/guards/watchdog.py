"""Deadlines that hold however slowly the bytes come.

A socket timeout bounds each read, not the whole exchange: a peer that sends one byte every two
seconds keeps a three-second read timeout happy for ever (measured on the old client: an answer
trickled that way held a poll cycle, and with it every target, indefinitely). A ``Watchdog``
keeps one deadline per exchange in a heap; a single thread shuts the exchange's sockets down when
its deadline passes, so the blocked read returns at once and the caller, seeing ``watch.fired``,
reports a timeout. Shutting down rather than closing leaves the file descriptor to its owner, so
nothing is closed twice.

    watch = watchdog.watch(deadline=clock() + 3.0)
    try:
        watch.attach(sock)
        ...  # blocking reads and writes on sock
    finally:
        watch.release()

The client (``transport.py``) and the exporter's own HTTP server (``server.py``) both use it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable


def shut_down(sock: socket.socket) -> None:
    """Make every blocked read and write on ``sock`` return now; the owner still closes it.

    The plain-socket method is used even for a TLS socket: it acts on the file descriptor and
    leaves the TLS object alone, which another thread may be using at this very moment.
    """
    # OSError / ValueError: already closed or never connected, so nothing is blocked on it.
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watch:
    """One exchange's deadline and the sockets it covers."""

    __slots__ = ("_callbacks", "_done", "_fired", "_lock", "_on_release", "_sockets", "deadline")

    def __init__(self, deadline: float, on_release: Callable[[], None] | None = None) -> None:
        self.deadline = deadline
        self._sockets: list[socket.socket] = []
        self._callbacks: list[Callable[[], None]] | None = None
        self._fired = False
        self._done = False
        self._lock = threading.Lock()
        self._on_release = on_release

    @property
    def released(self) -> bool:
        return self._done

    @property
    def fired(self) -> bool:
        """True once the deadline passed (or the watchdog was stopped) before ``release``."""
        return self._fired

    def attach(self, sock: socket.socket) -> None:
        """Cover ``sock`` too; if the deadline has already passed, shut it down at once."""
        with self._lock:
            if self._done:
                return
            if self._fired:
                shut_down(sock)
                return
            if not any(known is sock for known in self._sockets):
                self._sockets.append(sock)

    def call_on_fire(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the deadline passes (at once if it already has): for a wait
        that holds no socket, such as a name lookup running on another thread."""
        with self._lock:
            if self._done:
                return
            if not self._fired:
                self._callbacks = [*(self._callbacks or ()), callback]
                return
        callback()

    def release(self) -> None:
        """The exchange is over: the deadline no longer applies to its sockets."""
        with self._lock:
            pending = not self._done and not self._fired
            self._done = True
            self._sockets.clear()
            self._callbacks = None
        if pending and self._on_release is not None:
            self._on_release()

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
            sockets, self._sockets = self._sockets, []
            callbacks, self._callbacks = self._callbacks or [], None
        for sock in sockets:
            shut_down(sock)
        for callback in callbacks:
            callback()


class Watchdog:
    """One thread enforcing every pending ``Watch``'s deadline.

    The thread starts with the first watch and sleeps until the earliest deadline; released
    watches are dropped lazily when they reach the top of the heap, so ``release`` is O(1). Lazily
    is not enough when deadlines are long and exchanges short: the HTTP server gives a kept-alive
    connection 90 s of idle time per request, so a client asking a few thousand times a second
    would leave hundreds of thousands of released watches waiting for their deadline (about
    250 bytes each). The heap is therefore rebuilt without them whenever they outnumber the live
    ones, which keeps it within twice the live watches (plus ``_COMPACT_AFTER``) at an amortised
    O(1) per release.
    """

    _COMPACT_AFTER = 64
    """Released watches tolerated in the heap before a rebuild is considered at all."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, name: str = "watchdog") -> None:
        self._clock = clock
        self._name = name
        self._heap: list[tuple[float, int, Watch]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._released = 0  # released watches still in the heap (may overcount by a few)

    @property
    def clock(self) -> Callable[[], float]:
        """The clock deadlines are measured on."""
        return self._clock

    def watch(self, deadline: float) -> Watch:
        """A new watch that fires at ``deadline`` (on this watchdog's clock) unless released."""
        watch = Watch(deadline, on_release=self._note_release)
        with self._condition:
            if self._stopped:
                watch.fire()
                return watch
            heapq.heappush(self._heap, (deadline, next(self._sequence), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._condition.notify()
        return watch

    @property
    def pending(self) -> int:
        """Watches not yet fired or dropped (released ones linger until their deadline or the
        next rebuild of the heap)."""
        with self._condition:
            return len(self._heap)

    def _note_release(self) -> None:
        with self._condition:
            self._released += 1
            if self._released > self._COMPACT_AFTER and 2 * self._released > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].released]
                heapq.heapify(self._heap)
                self._released = 0

    @property
    def stopping(self) -> bool:
        """``stop`` was called: a watch that fires now was cut by the shutdown, not by time."""
        return self._stopped

    def stop(self) -> None:
        """Fire every pending watch now and refuse new ones: for shutting down fast."""
        with self._condition:
            self._stopped = True
            pending, self._heap = self._heap, []
            self._released = 0
            self._condition.notify()
        for _deadline, _sequence, watch in pending:
            watch.fire()

    def _run(self) -> None:
        with self._condition:
            while not self._stopped:
                while self._heap and self._heap[0][2].released:
                    heapq.heappop(self._heap)
                    self._released = max(0, self._released - 1)
                if not self._heap:
                    self._condition.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                _deadline, _sequence, watch = heapq.heappop(self._heap)
                self._condition.release()
                try:
                    watch.fire()
                finally:
                    self._condition.acquire()
