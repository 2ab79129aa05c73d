"""The strict limiter: no one-second window may hold more requests than the upstream allows."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Sequence

import pytest

from exporter.upstream.ratelimit import SlidingWindowLimiter

KEY = ("sha256:0123456789ab", "external_collection/list")
OTHER_KEY = ("sha256:0123456789ab", "import/list")


class FakeClock:
    """Time that moves only when a test (or the limiter's sleep) moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter_with(clock: FakeClock, rate: float) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(rate, clock=clock, sleep=clock.sleep)


def busiest_window(starts: Sequence[float], window: float = 1.0) -> int:
    """The most starts in any closed window of ``window`` seconds, checking every window."""
    ordered = sorted(starts)
    return max(sum(1 for other in ordered if first <= other <= first + window) for first in ordered)


def test_back_to_back_acquisitions_never_put_more_than_capacity_in_a_second() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    starts = []

    for _ in range(100):
        limiter.acquire(KEY)
        starts.append(clock())

    assert busiest_window(starts) == 20
    assert starts[-1] - starts[0] < 5.5, "the limiter should not be much slower than 20/s"


def test_irregular_arrivals_never_put_more_than_capacity_in_a_second() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    arrivals = random.Random(7)
    starts = []

    for _ in range(400):
        clock.advance(arrivals.expovariate(40.0))
        if limiter.try_acquire(KEY) == 0.0:
            starts.append(clock())

    assert busiest_window(starts) <= 20


def test_refused_try_acquire_says_how_long_until_a_slot_frees_up() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 1)
    limiter.try_acquire(KEY)
    clock.advance(0.4)

    wait = limiter.try_acquire(KEY)
    clock.advance(wait - 0.01)
    still_refused = limiter.try_acquire(KEY)
    clock.advance(0.01)

    assert 1.0 < limiter.window <= 1.1  # one second plus a margin of tens of ms
    assert wait == pytest.approx(limiter.window - 0.4)
    assert still_refused > 0
    assert limiter.try_acquire(KEY) == 0.0


def schedule(
    limiter: SlidingWindowLimiter, clock: FakeClock, key: object, count: int
) -> list[float]:
    """When each of ``count`` blocking acquisitions starts, relative to the first call."""
    began = clock()
    starts = []
    for _ in range(count):
        limiter.acquire(key)
        starts.append(clock() - began)
    return starts


def test_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 3)
    schedule(limiter, clock, KEY, 3)
    fresh_clock = FakeClock(clock())
    fresh = limiter_with(fresh_clock, 3)

    assert limiter.wait_time(KEY) > 0
    assert limiter.wait_time(OTHER_KEY) == 0.0
    assert schedule(limiter, clock, OTHER_KEY, 6) == schedule(fresh, fresh_clock, OTHER_KEY, 6)


def test_pause_holds_a_key_back_for_the_given_seconds() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)

    limiter.pause(KEY, 2.5)

    assert limiter.wait_time(KEY) == pytest.approx(2.5)
    assert limiter.try_acquire(KEY) == pytest.approx(2.5)
    assert limiter.wait_time(OTHER_KEY) == 0.0
    clock.advance(2.5)
    assert limiter.try_acquire(KEY) == 0.0


def test_acquire_sleeps_through_a_pause() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    limiter.pause(KEY, 3.0)
    paused_at = clock()

    limiter.acquire(KEY)

    assert clock() - paused_at == pytest.approx(3.0)


def test_shorter_pause_does_not_cut_a_longer_one_short() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)

    limiter.pause(KEY, 10.0)
    limiter.pause(KEY, 1.0)

    assert limiter.wait_time(KEY) == pytest.approx(10.0)


def test_negative_pause_holds_nothing() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)

    limiter.pause(KEY, -5.0)

    assert limiter.try_acquire(KEY) == 0.0


def test_wait_time_takes_no_slot() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    fresh_clock = FakeClock()
    fresh = limiter_with(fresh_clock, 20)

    waits = {limiter.wait_time(KEY) for _ in range(100)}

    assert waits == {0.0}
    assert schedule(limiter, clock, KEY, 30) == schedule(fresh, fresh_clock, KEY, 30)


def test_refused_try_acquire_takes_no_slot() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 2)
    fresh_clock = FakeClock()
    fresh = limiter_with(fresh_clock, 2)
    schedule(limiter, clock, KEY, 2)
    schedule(fresh, fresh_clock, KEY, 2)

    refusals = [limiter.try_acquire(KEY) for _ in range(50)]

    assert all(wait > 0 for wait in refusals)
    assert schedule(limiter, clock, KEY, 4) == schedule(fresh, fresh_clock, KEY, 4)


@pytest.mark.parametrize(
    ("rate", "spacing"),
    [pytest.param(0.5, 2.0, id="one-every-two-seconds"), pytest.param(0.1, 10.0, id="one-per-ten")],
)
def test_rate_below_one_spaces_requests_apart(rate: float, spacing: float) -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, rate)
    starts = []

    for _ in range(5):
        limiter.acquire(KEY)
        starts.append(clock())

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(spacing <= gap < spacing * 1.1 for gap in gaps), gaps


def test_fractional_rate_rounds_down_rather_than_bursting_over() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20.9)
    starts = []

    for _ in range(60):
        limiter.acquire(KEY)
        starts.append(clock())

    assert busiest_window(starts) == 20


@pytest.mark.parametrize("rate", [0, -1, -0.5])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        SlidingWindowLimiter(rate)


@pytest.mark.slow
def test_forty_threads_under_a_real_clock_never_start_more_than_20_in_a_second() -> None:
    seen = threading.local()

    def clock() -> float:
        seen.now = time.monotonic()  # the time the limiter records for this thread's start
        return seen.now

    limiter = SlidingWindowLimiter(20, clock=clock)
    starts: list[float] = []
    starts_lock = threading.Lock()
    ready = threading.Barrier(40)

    def worker() -> None:
        ready.wait()
        limiter.acquire(KEY)
        with starts_lock:
            starts.append(seen.now)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(starts) == 40
    assert busiest_window(starts) <= 20
    assert time.monotonic() - began < 5.0


def test_take_or_wait_takes_a_free_slot_or_says_what_wait_time_says() -> None:
    """The scheduler's one look at a window: a slot while one is free, then no slot and the
    same wait ``wait_time`` gives, which ends when the window lets one more in."""
    clock = FakeClock()
    limiter = limiter_with(clock, 3)
    taken = []
    while True:
        slot, wait = limiter.take_or_wait(KEY)
        if slot is None:
            break
        assert wait == 0.0
        slot.sent()
        taken.append(slot)
        clock.advance(limiter.spacing)
    assert len(taken) == 3
    assert wait > 0 and wait == limiter.wait_time(KEY)
    clock.advance(wait)
    slot, wait = limiter.take_or_wait(KEY)
    assert slot is not None and wait == 0.0
