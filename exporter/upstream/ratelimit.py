"""A strict sliding-window rate limiter, one window per (credential, API path).

The upstream allows 20 requests per second per user per endpoint and counts by arrival time, so a
token bucket (which allows a burst on top of the rate) is the wrong tool. Here a new request for
a key may take a slot only while fewer than ``capacity`` of the key's requests count within the
last ``window`` (one second plus a ``margin``): no one-second window of arrivals ever holds more
than ``capacity``, even with some network jitter between our send and the server's arrival
clock.

What counts is when a request *leaves*, not when its slot was taken. Between the two a worker
thread picks the task up, the HTTP client builds the request (pure Python: it needs the GIL) and
the name may be looked up; on a loaded host that took 150-300 ms for a few requests, which then
arrived in the next window next to punctual ones (23 in one second at 20/s). So ``try_take``
hands out a ``Slot`` that counts as "just now" until its request's bytes are written, and from
that moment on once ``sent`` is called (``transport.py`` calls it after the write); just before
the write (connected, nothing sent) ``sending`` is called, and from then on the slot can never
age out while unsent, however long the thread waits to write. Before that, while the request
resolves its name and connects, the slot holds its place for one window at most: a request that
never connects (an address that drops every SYN holds it for its whole timeout) would otherwise
hold a token it shares with a healthy cluster round after round; one that connects later takes
a place again in ``sending``, waiting for one if need be. A slot whose request never goes out
(lookup or connect failed, deadline, shutdown) is released when its task ends and counts from
then if it still held its place, conservatively.

Why this bounds arrivals: each request counts without a gap from its (last) take until one
``window`` after its write. Of the requests arriving in any one second, the last to take its
place saw every other one counted (unsent, or sent less than ``window`` before), and would have
been refused had they been ``capacity`` or more.

Requests are also spaced (``1 / rate`` apart, 50 ms at 20/s). A burst of 20 requests sent at
once does not arrive at once: the server queues them, stamps the last ones late, and those late
stamps share a window with the next burst. Spacing keeps the arrival clock close to the send
clock. The margin is 100 ms: the soak test, with a loaded server, saw arrival stamps up to ~60 ms
late. Throughput stays at 20 per 1.1 s (18.2 requests/s).

``try_acquire`` and ``acquire`` (a slot counted as sent when taken) remain for callers that
cannot report the write.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

DEFAULT_MARGIN_SECONDS = 0.1


class Slot:
    """One request's place in its key's window: "just now" from its take until settled by
    ``sent`` or ``release`` (whichever comes first), then counted from that moment.

    While its request is still connecting the place is held for one ``window`` at most: a
    request whose connect takes longer (an address that drops every SYN) stops counting, and
    ``sending`` takes a place again before its bytes go out.
    """

    __slots__ = ("_limiter", "committed", "key", "settled_at", "taken_at")

    def __init__(self, limiter: SlidingWindowLimiter, key: Hashable, taken_at: float) -> None:
        self._limiter = limiter
        self.key = key
        self.taken_at = taken_at
        self.committed = False
        """``sending`` was called: it counts as "just now" until settled, however long."""
        self.settled_at: float | None = None

    def sending(self, until: float) -> bool:
        """The request is about to be written (connected, nothing sent): hold the place until
        ``sent``; one that lapsed while connecting is taken again, waiting until ``until`` (on
        the limiter's clock) at most. False: no place free before ``until``."""
        while (wait := self._limiter._commit(self)) > 0:
            if self._limiter._clock() + wait > until:
                return False
            self._limiter._sleep(wait)
        return True

    def sent(self) -> None:
        """The request's bytes were written: it counts from now (call after the write)."""
        self._limiter._settle(self, sent=True)

    def release(self) -> None:
        """The task is over. A slot never sent counts from now (if it still held its place);
        no effect on a sent one."""
        self._limiter._settle(self, sent=False)


class SlidingWindowLimiter:
    """``try_take`` for schedulers that must not block, ``take`` for everyone else; the
    ``try_acquire`` and ``acquire`` of callers that send at once count a slot as sent when taken."""

    def __init__(
        self,
        requests_per_second: float,
        *,
        margin: float = DEFAULT_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        if requests_per_second >= 1:
            self.capacity = math.floor(requests_per_second)
            self.window = 1.0 + margin
        else:
            self.capacity = 1
            self.window = 1.0 / requests_per_second + margin
        self.spacing = (self.window - margin) / self.capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[Hashable, list[Slot]] = {}
        self._paused_until: dict[Hashable, float] = {}
        self._last_start: dict[Hashable, float] = {}

    @property
    def throughput(self) -> float:
        """Requests per second it lets through at most on one key (18.2 at 20/s: the margin)."""
        return self.capacity / self.window

    def try_take(self, key: Hashable) -> Slot | None:
        """A slot for ``key`` now, unsent (see ``Slot``), or None when none is free."""
        slot, _wait = self._take(key, sent=False)
        return slot

    def take_or_wait(self, key: Hashable) -> tuple[Slot | None, float]:
        """``try_take``, and when no slot is free the seconds until one is (``wait_time``),
        found in the same look at the window: a scheduler asks both on every wake."""
        return self._take(key, sent=False)

    def try_acquire(self, key: Hashable) -> float:
        """Take a slot counted as sent now and return 0.0, or return how many seconds until one
        frees up (for a caller whose request leaves at once)."""
        slot, wait = self._take(key, sent=True)
        return 0.0 if slot is not None else wait

    def _take(self, key: Hashable, *, sent: bool) -> tuple[Slot | None, float]:
        """A slot for ``key`` now (settled as sent now if ``sent``), or None and the wait."""
        with self._lock:
            now = self._clock()
            wait = self._wait_locked(key, now)
            if wait > 0:
                return None, wait
            slot = Slot(self, key, now)
            if sent:
                slot.settled_at = now
            self._slots.setdefault(key, []).append(slot)
            self._last_start[key] = now
            return slot, 0.0

    def acquire(self, key: Hashable) -> None:
        """Block until a slot for ``key`` is free, then take it, counted as sent now."""
        while (wait := self.try_acquire(key)) > 0:
            self._sleep(wait)

    def take(self, key: Hashable) -> Slot:
        """Block until a slot for ``key`` is free, then take it (unsent: see ``Slot``)."""
        while True:
            slot, wait = self.take_or_wait(key)
            if slot is not None:
                return slot
            self._sleep(max(wait, 0.001))

    def wait_time(self, key: Hashable) -> float:
        """Seconds until ``key`` has a free slot (0.0 if it has one now); takes nothing. While
        every counted slot is unsent, a guess: ``spacing``, to look again."""
        with self._lock:
            return self._wait_locked(key, self._clock())

    def paused_for(self, key: Hashable) -> float:
        """Seconds ``key`` is still held back by ``pause`` (0.0 if it is not)."""
        with self._lock:
            return max(0.0, self._paused_until.get(key, 0.0) - self._clock())

    def pause(self, key: Hashable, seconds: float) -> None:
        """Hold ``key`` back, e.g. for a server's ``Retry-After``."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._paused_until[key] = max(until, self._paused_until.get(key, 0.0))

    def _settle(self, slot: Slot, *, sent: bool) -> None:
        with self._lock:
            if slot.settled_at is not None:
                return
            now = slot.settled_at = self._clock()
            if not sent and self._lapsed(slot, now):
                self._forget_locked(slot)  # it never went out and no longer counts

    def _commit(self, slot: Slot) -> float:
        """Hold ``slot``'s place until it is sent, taking one again if it lapsed; or return the
        seconds until one is free."""
        with self._lock:
            now = self._clock()
            if slot.committed or slot.settled_at is not None:
                return 0.0
            if not self._lapsed(slot, now):
                slot.committed = True  # counted since its take, without a gap
                return 0.0
            self._forget_locked(slot)
            wait = self._wait_locked(slot.key, now)
            if wait > 0:
                return wait
            slot.taken_at = now
            slot.committed = True
            self._slots.setdefault(slot.key, []).append(slot)
            self._last_start[slot.key] = now
            return 0.0

    def _lapsed(self, slot: Slot, now: float) -> bool:
        return not slot.committed and slot.taken_at + self.window <= now

    def _forget_locked(self, slot: Slot) -> None:
        slots = self._slots.get(slot.key, [])
        if slot in slots:
            slots.remove(slot)

    def _counts(self, slot: Slot, now: float) -> bool:
        if slot.settled_at is not None:
            return slot.settled_at + self.window > now
        return not self._lapsed(slot, now)

    def _ends(self, slot: Slot) -> float:
        """When ``slot`` stops counting, as far as is known now (never: committed, unsent)."""
        if slot.settled_at is not None:
            return slot.settled_at + self.window
        return math.inf if slot.committed else slot.taken_at + self.window

    def _wait_locked(self, key: Hashable, now: float) -> float:
        paused = self._paused_until.get(key, 0.0) - now
        slots = self._slots.get(key)
        if slots is None:
            return max(paused, 0.0)
        # same expression as the wait below; an unsent slot never ages out
        slots[:] = [slot for slot in slots if self._counts(slot, now)]
        if not slots:
            del self._slots[key]
            self._last_start.pop(key, None)
            return max(paused, 0.0)
        window_wait = 0.0
        over = len(slots) - self.capacity + 1  # slots that must age out before one more fits
        if over > 0:
            ends = sorted(self._ends(slot) for slot in slots)
            window_wait = ends[over - 1] - now if ends[over - 1] < math.inf else self.spacing
        spacing_wait = self._last_start[key] + self.spacing - now
        return max(paused, window_wait, spacing_wait, 0.0)
