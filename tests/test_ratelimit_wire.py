"""The limiter counts a request from when it leaves, not from when its slot was taken.

The upstream counts by arrival. A slot taken at ``t`` whose request is written at ``t + 0.3``
(a worker waiting for the GIL, a slow lookup) used to be counted at ``t``: it aged out of the
window early and a later one-second window of arrivals held more than the capacity. Here a slot
is "just now" until its request is written (or its task ends without sending it), then counts
from that moment; while still connecting it holds its place for one window at most.
"""

from __future__ import annotations

import math
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
            assert slot.sending(until=math.inf)
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


def test_a_slot_about_to_be_sent_never_ages_out_until_it_is() -> None:
    """Once ``sending`` is called (connected, bytes about to go), the slot counts as "just now"
    however long the write waits (a thread waiting for the GIL)."""
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    slots = [take_when_free(limiter, clock) for _ in range(20)]
    assert slots[0].sending(until=math.inf)
    for slot in slots[1:]:
        slot.sending(until=math.inf)
        slot.sent()
    before = clock.now
    for _ in range(3):  # long past every window: the 19 sent age out each time, the unsent never
        clock.advance(5.0)
        for _ in range(19):
            take_when_free(limiter, clock).sent()
        clock.advance(limiter.spacing)
        assert limiter.try_take(KEY) is None, "a slot about to be sent aged out of the window"
        assert limiter.wait_time(KEY) > 0
    assert clock.now - before > 15.0
    slots[0].sent()
    clock.advance(limiter.window)
    assert len([take_when_free(limiter, clock) for _ in range(20)]) == 20


def test_a_slot_still_connecting_holds_its_place_one_window_then_takes_one_again() -> None:
    """A request that never reaches the wire (an address that drops every SYN) holds its place
    for one window only, so a dead cluster cannot hold a token it shares; if it does connect
    later, it waits for a free place before its bytes go out."""
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    slots = [take_when_free(limiter, clock) for _ in range(20)]
    first = slots[0].taken_at
    clock.now = first + limiter.window - 0.01
    assert limiter.try_take(KEY) is None, "a slot connecting for less than a window must count"
    clock.now = first + limiter.window
    others = [take_when_free(limiter, clock) for _ in range(20)]  # the 20 lapsed one by one
    for other in others:
        other.sending(until=math.inf)
    connected = clock.now
    assert slots[0].sending(until=connected + 0.5) is False, "a place was free: none should be"
    for other in others:
        other.sent()
    assert slots[0].sending(until=math.inf)
    assert clock.now >= connected + limiter.window, "sent before the window had room"
    assert limiter.try_take(KEY) is None  # it counts again


def test_a_released_slot_counts_from_its_release_unless_it_had_lapsed() -> None:
    """A request that never went out (lookup or connect failed, deadline, shutdown) counts from
    the moment its task ended if it still held its place, then ages out like any other."""
    clock = FakeClock()
    limiter = limiter_with(clock, 20)
    slots = [take_when_free(limiter, clock) for _ in range(20)]
    clock.advance(0.1)
    assert limiter.try_take(KEY) is None
    for slot in slots:
        slot.release()
    released = clock.now
    clock.now = released + limiter.window - 0.01
    assert limiter.try_take(KEY) is None, "released slots must count from their release"
    clock.now = released + limiter.window
    lapsed = [take_when_free(limiter, clock) for _ in range(20)]
    clock.advance(5.0)
    for slot in lapsed:
        slot.release()  # they no longer counted: releasing them must not count them again
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
    assert slot.sending(until=math.inf)
    clock.advance(30.0)
    assert limiter.wait_time(KEY) > 0
    slot.sent()
    clock.advance(limiter.window)
    assert limiter.wait_time(KEY) == 0.0


def test_throughput_is_unchanged() -> None:
    assert round(SlidingWindowLimiter(20).throughput, 1) == 18.2
