"""The limiter counts a request from when it leaves, not from when its slot was taken.

The upstream counts by arrival. A slot taken at ``t`` whose request is written at ``t + 0.3``
(a worker waiting for the GIL, a slow lookup) used to be counted at ``t``: it aged out of the
window early and a later one-second window of arrivals held more than the capacity. Here a slot
is "just now" until its request is written (or its task ends without sending it), then counts
from that moment.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from exporter.upstream.ratelimit import SlidingWindowLimiter, Slot

from .test_ratelimit import KEY, FakeClock, limiter_with


def busiest_second(times: Sequence[float]) -> int:
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered if start <= t < start + 1.0) for start in ordered), default=0
    )


def take_when_free(limiter: SlidingWindowLimiter, clock: FakeClock) -> Slot:
    while (slot := limiter.try_take(KEY)) is None:
        clock.advance(max(limiter.wait_time(KEY), 0.001))
    return slot


def test_slots_sent_late_never_put_more_than_capacity_in_a_second_of_sends() -> None:
    """Slots taken as soon as the limiter allows, a third of them sent 150-300 ms late (as on a
    loaded host): every one-second window of *send* times holds at most 20."""
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    rng = random.Random(20)
    unsent: list[tuple[float, Slot]] = []
    sent_at: list[float] = []
    for _ in range(20_000):  # 20 s in steps of 1 ms
        for _when, slot in [pair for pair in unsent if pair[0] <= clock.now]:
            slot.sent()
            sent_at.append(clock.now)
        unsent = [pair for pair in unsent if pair[0] > clock.now]
        taken = limiter.try_take(KEY)
        if taken is not None:
            late = rng.random() < 0.35
            unsent.append((clock.now + (rng.uniform(0.15, 0.3) if late else 0.0), taken))
            continue  # sent in the next step at the earliest
        clock.advance(0.001)
    assert len(sent_at) > 300
    assert busiest_second(sent_at) <= 20


def test_a_slot_taken_but_not_sent_never_ages_out() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    slots = [take_when_free(limiter, clock) for _ in range(20)]
    for slot in slots[1:]:
        slot.sent()
    before = clock.now
    for _ in range(3):  # long past every window: the 19 sent age out each time, the unsent never
        clock.advance(5.0)
        for _ in range(19):
            take_when_free(limiter, clock).sent()
        assert limiter.try_take(KEY) is None, "an unsent slot aged out of the window"
        assert limiter.wait_time(KEY) > 0
    assert clock.now - before > 15.0
    slots[0].sent()
    clock.advance(limiter.window)
    assert len([take_when_free(limiter, clock) for _ in range(20)]) == 20


def test_a_released_slot_frees_its_place_one_window_after_its_release() -> None:
    """A request that never went out (lookup or connect failed, deadline, shutdown) is counted
    at the moment its task ended, then ages out like any other."""
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    slots = [take_when_free(limiter, clock) for _ in range(20)]
    clock.advance(10.0)
    assert limiter.try_take(KEY) is None, "twenty unsent slots must hold the key"
    for slot in slots:
        slot.release()
    clock.advance(limiter.window)
    assert limiter.try_take(KEY) is not None


def test_the_first_of_sent_and_release_counts() -> None:
    """The task's end releases every slot; one already sent keeps its send time."""
    clock = FakeClock()
    limiter = limiter_with(clock, 1)
    slot = limiter.try_take(KEY)
    assert slot is not None
    slot.sent()
    clock.advance(limiter.window - 0.5)
    slot.release()  # the task ends later: no effect
    clock.advance(0.5)
    assert limiter.try_take(KEY) is not None


def test_try_acquire_still_counts_its_slot_at_once() -> None:
    """Callers that send at once and report nothing keep the old meaning."""
    clock = FakeClock()
    limiter = limiter_with(clock, 1)
    assert limiter.try_acquire(KEY) == 0.0
    assert limiter.try_acquire(KEY) > 0
    clock.advance(limiter.window)
    assert limiter.try_acquire(KEY) == 0.0


def test_take_waits_for_a_slot_that_counts_until_sent() -> None:
    clock = FakeClock()
    limiter = limiter_with(clock, 1)
    limiter.acquire(KEY)  # counted at once
    slot = limiter.take(KEY)
    assert clock.now >= 1000.0 + limiter.window
    clock.advance(30.0)
    assert limiter.wait_time(KEY) > 0
    slot.sent()
    clock.advance(limiter.window)
    assert limiter.wait_time(KEY) == 0.0


def test_throughput_is_unchanged() -> None:
    assert round(SlidingWindowLimiter(20).throughput, 1) == 18.2
