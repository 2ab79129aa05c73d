"""The schedule of the ``collections/list`` requests: once per discovery interval per database,
longest overdue first, a list given back keeps its place, and a reload loses none."""

from __future__ import annotations

from exporter.config.loader import ClusterConfig, Config
from exporter.polling.collection_lists import (
    CollectionListSchedule,
    collections_listed,
    list_failed,
)
from exporter.polling.targets import Target
from exporter.upstream.client import ApiError

PROD = ClusterConfig("prod", "http://127.0.0.1:1", "t", databases=("a", "b", "c"))
CONFIG = Config(clusters=(PROD,), discovery_interval=60.0, poll_interval=10.0)
TARGETS = tuple(
    Target(PROD, database, kind) for database in "abc" for kind in ("refresh", "import")
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(targets: list[Target]) -> list[str]:
    return [target.database for target in targets]


def test_each_database_is_asked_once_then_again_after_the_discovery_interval():
    clock = Clock()
    schedule = CollectionListSchedule(CONFIG, clock)
    assert names(schedule.due(clock.now, TARGETS)) == ["a", "b", "c"]
    assert schedule.due(clock.now, TARGETS) == []  # held until their outcome
    for target in TARGETS[::2]:
        schedule.done(PROD, collections_listed(target, clock.now, ("x",)), "")
    clock.now += 59
    assert schedule.due(clock.now, TARGETS) == []
    clock.now += 1
    assert names(schedule.due(clock.now, TARGETS)) == ["a", "b", "c"]


def test_a_failed_list_is_asked_again_sooner_and_a_missing_endpoint_not():
    clock = Clock()
    schedule = CollectionListSchedule(CONFIG, clock)
    a, b, _c = (target for target in schedule.due(clock.now, TARGETS))
    schedule.done(PROD, list_failed(a, clock.now, ApiError("timeout", "slow"), ())[0], "slow")
    schedule.done(PROD, list_failed(b, clock.now, ApiError("http_404", "HTTP 404"), ())[0], "")
    clock.now += 30  # the retry floor (30 s) is shorter than the interval (60 s)
    assert names(schedule.due(clock.now, TARGETS)) == ["a"]


def test_a_list_given_back_keeps_its_place_ahead_of_newer_ones():
    clock = Clock()
    schedule = CollectionListSchedule(CONFIG, clock)
    a, b, _c = schedule.due(clock.now, TARGETS)
    schedule.done(PROD, collections_listed(a, clock.now, ()), "")
    schedule.done(PROD, collections_listed(b, clock.now, ()), "")
    schedule.retry(("prod", "c"))  # dropped from the round: never asked
    clock.now += 60
    assert names(schedule.due(clock.now, TARGETS)) == ["c", "a", "b"]


def test_a_reload_hands_over_the_schedule_and_what_is_still_running():
    clock = Clock()
    old = CollectionListSchedule(CONFIG, clock)
    a, _b, _c = old.due(clock.now, TARGETS)
    old.done(PROD, collections_listed(a, clock.now, ()), "")
    new = CollectionListSchedule(CONFIG, clock, old)  # b and c were still running in the old
    assert names(new.due(clock.now, TARGETS)) == ["b", "c"]


def test_code_800_is_evidence_that_the_database_is_gone_and_other_failures_are_none():
    target = TARGETS[0]
    gone, _ = list_failed(target, 5.0, ApiError("api_800", "database not found"), ())
    refused = ApiError("auth", "token sk-secret-123 refused")
    other, message = list_failed(target, 5.0, refused, ("sk-secret-123",))
    assert (gone.ok, gone.database_gone, gone.listed_at) == (False, True, 5.0)
    assert (other.ok, other.database_gone, other.reason) == (False, False, "auth")
    assert "sk-secret-123" not in message and "refused" in message
