"""Which imports are described each round: the never described first, then the longest waiting,
a bounded number per listing; and how many are left waiting (the describe backlog)."""

from __future__ import annotations

from exporter.polling.budget import describe_budget, lists_fit
from exporter.polling.describes import Backlog, DescribeSchedule

from .helpers import IMPORT, REFRESH, import_job

RUNNING = [import_job(str(index), "Importing", f"c{index}") for index in range(5)]


def ids(due):
    return [item.job_id for item in due]


def test_a_round_describes_at_most_its_share_and_the_rest_go_first_next_round():
    schedule = DescribeSchedule(per_round=2)
    first = schedule.pick(IMPORT.key, RUNNING, now=10.0)
    for item in first:
        schedule.tried(IMPORT.key, item.job_id, finished=False, now=11.0)
    assert ids(first) == ["0", "1"]
    assert schedule.carried[IMPORT.key] == 3
    assert ids(schedule.pick(IMPORT.key, RUNNING, now=20.0)) == ["2", "3"]


def test_a_describe_that_never_ran_keeps_its_place_in_the_line():
    schedule = DescribeSchedule(per_round=2)
    schedule.pick(IMPORT.key, RUNNING, now=10.0)
    schedule.tried(IMPORT.key, "0", finished=False, now=11.0)  # "1" did not fit in the round
    assert ids(schedule.pick(IMPORT.key, RUNNING, now=20.0)) == ["1", "2"]


def test_the_job_described_longest_ago_goes_first_and_never_described_ones_before_it():
    schedule = DescribeSchedule(per_round=10)
    schedule.pick(IMPORT.key, RUNNING, now=0.0)
    for job_id, at in (("0", 5.0), ("1", 3.0), ("2", 4.0), ("3", 1.0)):
        schedule.tried(IMPORT.key, job_id, finished=False, now=at)
    due = schedule.pick(IMPORT.key, RUNNING, now=10.0)
    assert ids(due) == ["4", "3", "1", "2", "0"]
    assert [item.waiting_since for item in due] == [0.0, 1.0, 3.0, 4.0, 5.0]


def test_a_finished_import_is_described_once_and_forgotten_when_no_longer_listed():
    done = import_job("9", "Completed", "books")
    schedule = DescribeSchedule(per_round=10)
    assert ids(schedule.pick(IMPORT.key, [done], now=0.0)) == ["9"]
    schedule.tried(IMPORT.key, "9", finished=True, now=1.0)
    assert schedule.pick(IMPORT.key, [done], now=2.0) == []
    schedule.pick(IMPORT.key, [], now=3.0)
    assert schedule.described_finished[IMPORT.key] == set()


def test_the_backlog_counts_the_due_jobs_a_round_left_and_the_age_of_the_oldest():
    schedule = DescribeSchedule(per_round=2)
    schedule.pick(IMPORT.key, RUNNING, now=100.0)
    schedule.tried(IMPORT.key, "0", finished=False, now=101.0)
    schedule.tried(IMPORT.key, "1", finished=False, now=102.0)
    assert schedule.backlog([IMPORT.key], now=110.0) == [Backlog("prod", "import", 3, 10.0)]
    schedule.pick(IMPORT.key, RUNNING, now=120.0)  # "2" and "3" this round, "4" waits on
    schedule.tried(IMPORT.key, "2", finished=False, now=121.0)
    schedule.tried(IMPORT.key, "3", finished=False, now=122.0)
    # "0" and "1" were described last round, not this one: they wait again, "4" longest
    assert schedule.backlog([IMPORT.key], now=130.0) == [Backlog("prod", "import", 3, 30.0)]


def test_no_backlog_reads_zero_and_a_target_without_due_jobs_still_reports():
    schedule = DescribeSchedule(per_round=10)
    assert schedule.backlog([IMPORT.key], now=5.0) == [Backlog("prod", "import", 0, 0.0)]


def test_targets_no_longer_polled_are_forgotten():
    schedule = DescribeSchedule(per_round=10)
    schedule.pick(IMPORT.key, RUNNING, now=0.0)
    schedule.forget({REFRESH.key})
    assert schedule.carried == {} and schedule.described_finished == {}
    assert schedule.first_in_line() == {}


def test_the_budget_is_what_the_rate_limit_leaves_after_the_lists_of_the_same_path():
    assert (
        describe_budget(rate=20.0, round_seconds=15.0, margin_seconds=1.5, lists_on_path=0) == 270
    )
    assert describe_budget(20.0, 15.0, 1.5, lists_on_path=50) == 220
    assert describe_budget(20.0, 1.0, 1.5, lists_on_path=0) == 0
    assert lists_fit(18.2, 11.25, 210) is False and lists_fit(18.2, 11.25, 200) is True
