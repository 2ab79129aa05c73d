"""Durations as a user writes them in the config, and as the exporter prints them back."""

from __future__ import annotations

import pytest

from exporter.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("30s", 30.0, id="seconds"),
        pytest.param("5m", 300.0, id="minutes"),
        pytest.param("1h", 3600.0, id="hours"),
        pytest.param("2d", 172_800.0, id="days"),
        pytest.param("1m30s", 90.0, id="compound"),
        pytest.param("1h1m1s500ms", 3661.5, id="every-unit-but-days"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("0.25h", 900.0, id="fraction-of-an-hour"),
        pytest.param("  30s\n", 30.0, id="surrounding-whitespace"),
    ],
)
def test_duration_with_a_unit_is_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("30", id="bare-number"),
        pytest.param("30x", id="unknown-unit"),
        pytest.param("-1s", id="negative"),
        pytest.param("", id="empty"),
        pytest.param("s", id="unit-without-number"),
        pytest.param("1m 30s", id="space-inside"),
        pytest.param("1.s", id="dangling-point"),
        pytest.param("30 seconds", id="spelled-out-unit"),
        pytest.param("30S", id="upper-case-unit"),
    ],
)
def test_text_that_is_not_a_duration_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)

    message = str(caught.value)
    assert repr(text) in message
    assert "30s" in message and "5m" in message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.5, "500ms", id="below-a-second"),
        pytest.param(0.0015, "1.5ms", id="sub-millisecond-kept"),
        pytest.param(30.0, "30s", id="seconds"),
        pytest.param(1.5, "1.5s", id="fractional-seconds"),
        pytest.param(90.0, "90s", id="not-a-whole-minute"),
        pytest.param(300.0, "5m", id="whole-minutes"),
        pytest.param(5400.0, "90m", id="not-a-whole-hour"),
        pytest.param(3600.0, "1h", id="whole-hours"),
        pytest.param(86_400.0, "24h", id="a-day-in-hours"),
        pytest.param(1_234_567.0, "1234567s", id="large-without-exponent"),
    ],
)
def test_duration_is_printed_in_the_shortest_exact_unit(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds",
    [0.05, 0.1 + 0.2, 1.0, 59.5, 61.25, 120.0, 5400.0, 7200.0, 1_234_567.0, 10_000_001.0],
)
def test_printed_duration_parses_back_to_the_same_value(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-9)
