"""Which imports are described each round: a bounded number, the longest waiting first."""

from __future__ import annotations

from exporter.polling.describes import DescribeSchedule

from .helpers import IMPORT, REFRESH, import_job

RUNNING = [import_job(str(index), "Importing", f"c{index}") for index in range(5)]


def test_a_round_describes_at_most_its_share_and_the_rest_go_first_next_round():
    schedule = DescribeSchedule(per_round=2)
    first = schedule.pick(IMPORT.key, RUNNING)
    for job_id in first:
        schedule.tried(IMPORT.key, job_id, finished=False)
    assert first == ["0", "1"]
    assert schedule.carried[IMPORT.key] == 3
    second = schedule.pick(IMPORT.key, RUNNING)
    assert second == ["2", "3"]


def test_a_describe_that_never_ran_keeps_its_place_in_the_line():
    schedule = DescribeSchedule(per_round=2)
    schedule.pick(IMPORT.key, RUNNING)
    schedule.tried(IMPORT.key, "0", finished=False)  # "1" did not fit in the round
    assert schedule.pick(IMPORT.key, RUNNING) == ["1", "2"]


def test_a_finished_import_is_described_once_and_forgotten_when_no_longer_listed():
    done = import_job("9", "Completed", "books")
    schedule = DescribeSchedule(per_round=10)
    assert schedule.pick(IMPORT.key, [done]) == ["9"]
    schedule.tried(IMPORT.key, "9", finished=True)
    assert schedule.pick(IMPORT.key, [done]) == []
    schedule.pick(IMPORT.key, [])
    assert schedule.described_finished[IMPORT.key] == set()


def test_targets_no_longer_polled_are_forgotten():
    schedule = DescribeSchedule(per_round=10)
    schedule.pick(IMPORT.key, RUNNING)
    schedule.forget({REFRESH.key})
    assert schedule.carried == {} and schedule.described_finished == {}
