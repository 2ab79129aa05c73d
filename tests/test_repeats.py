"""A repeated failure is said once, then every ten minutes with how often it repeated."""

from __future__ import annotations

from exporter.polling.repeats import RepeatedLines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_is_said_at_once_then_every_interval_with_its_count():
    clock = Clock()
    lines = RepeatedLines(every=600.0, clock=clock)
    said = []
    for _minute in range(21):
        said.append(lines.due(("prod", "db", "refresh"), "timeout"))
        clock.now += 60.0
    assert said[0] == 0  # the first occurrence, at once
    assert [(minute, repeats) for minute, repeats in enumerate(said) if repeats is not None] == [
        (0, 0),
        (10, 9),
        (20, 9),
    ]


def test_another_reason_or_a_success_in_between_is_said_at_once():
    clock = Clock()
    lines = RepeatedLines(every=600.0, clock=clock)
    assert lines.due("target", "timeout") == 0
    assert lines.due("target", "timeout") is None
    assert lines.due("target", "auth") == 0
    lines.clear("target")
    assert lines.due("target", "auth") == 0
    assert lines.due("other", "auth") == 0  # subjects are apart


def test_past_its_memory_the_oldest_subject_is_forgotten_not_the_new_one():
    lines = RepeatedLines(every=600.0, clock=Clock(), max_subjects=2)
    assert lines.due("a", "x") == 0
    assert lines.due("b", "x") == 0
    assert lines.due("c", "x") == 0  # "a" is forgotten to make room
    assert lines.due("c", "x") is None
    assert lines.due("a", "x") == 0
