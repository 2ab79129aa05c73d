"""Durations as a user writes them (config, CLI flags, thresholds), in Prometheus's own grammar,
and as the exporter prints them back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.config.durations import format_duration, parse_duration

ACCEPTED = [
    pytest.param("500ms", 0.5, id="milliseconds"),
    pytest.param("30s", 30.0, id="seconds"),
    pytest.param("5m", 300.0, id="minutes"),
    pytest.param("1h", 3600.0, id="hours"),
    pytest.param("2d", 172_800.0, id="days"),
    pytest.param("1w", 604_800.0, id="weeks"),
    pytest.param("1y", 31_536_000.0, id="years-of-365-days"),
    pytest.param("1m30s", 90.0, id="compound"),
    pytest.param("1h30m", 5400.0, id="hours-and-minutes"),
    pytest.param("1d12h", 129_600.0, id="days-and-hours"),
    pytest.param("1h1m1s500ms", 3661.5, id="every-unit-from-hours"),
    pytest.param("1y1w1d1h1m1s1ms", 31_536_000 + 604_800 + 86_400 + 3661.001, id="every-unit"),
    pytest.param("1h0m", 3600.0, id="a-zero-part"),
    pytest.param("01s", 1.0, id="leading-zero"),
    pytest.param("0", 0.0, id="zero-alone"),
    pytest.param("0s", 0.0, id="zero-seconds"),
    pytest.param("106751d", 106_751 * 86_400.0, id="longest-whole-days"),
]

REFUSED = [
    pytest.param("30", id="bare-number"),
    pytest.param("30x", id="unknown-unit"),
    pytest.param("-1s", id="negative"),
    pytest.param("", id="empty"),
    pytest.param("s", id="unit-without-number"),
    pytest.param("1m 30s", id="space-inside"),
    pytest.param("  30s\n", id="surrounding-whitespace"),
    pytest.param("1.s", id="dangling-point"),
    pytest.param("1.5s", id="fraction"),
    pytest.param("0.25h", id="fraction-of-an-hour"),
    pytest.param("30 seconds", id="spelled-out-unit"),
    pytest.param("30S", id="upper-case-unit"),
    pytest.param("1M", id="upper-case-minutes"),
    pytest.param("30m1h", id="units-not-decreasing"),
    pytest.param("1m1m", id="unit-twice"),
    pytest.param("1ms5s", id="milliseconds-before-seconds"),
    pytest.param("106752d", id="past-int64-nanoseconds"),
    pytest.param("293y", id="past-292-years"),
]


@pytest.mark.parametrize(("text", "seconds"), ACCEPTED)
def test_duration_with_a_unit_is_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", REFUSED)
def test_text_that_is_not_a_duration_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)

    message = str(caught.value)
    assert repr(text) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        pytest.param("1.5s", "1500ms", id="seconds"),
        pytest.param("0.25h", "15m", id="quarter-hour"),
        pytest.param("1.5h", "90m", id="hour-and-a-half"),
        pytest.param("2.5d", "60h", id="days"),
        pytest.param("1m0.5s", "60500ms", id="in-a-compound"),
    ],
)
def test_a_fraction_is_refused_with_the_whole_number_to_write_instead(
    text: str, suggestion: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)

    message = str(caught.value)
    assert message.startswith(f"{text!r} is not a duration")
    assert "whole number" in message
    assert message.endswith(f"write {suggestion}")
    assert parse_duration(suggestion) == pytest.approx(float(_decimal_seconds(text)))


def _decimal_seconds(text: str) -> float:
    return {"1.5s": 1.5, "0.25h": 900.0, "1.5h": 5400.0, "2.5d": 216_000.0, "1m0.5s": 60.5}[text]


def test_a_fraction_of_a_millisecond_is_refused_without_a_suggestion() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("1.5ms")

    assert "whole milliseconds" in str(caught.value)


def test_units_out_of_order_are_refused_with_the_order_named() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("30m1h")

    assert "largest" in str(caught.value)


def test_the_grammar_is_the_one_promtool_applies(tmp_path: Path) -> None:
    """Each accepted text is a valid ``for:`` of a Prometheus rule, each refused one is not."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    cases = [(str(param.values[0]), True) for param in ACCEPTED]
    cases += [(str(param.values[0]), False) for param in REFUSED if param.values[0]]
    disagreements = []
    for text, accepted in cases:
        rules = tmp_path / "rules.yml"
        rules.write_text(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n"
            f"    for: {text!r}\n".replace("'", '"')
        )
        result = subprocess.run(
            [promtool, "check", "rules", str(rules)], capture_output=True, timeout=30
        )
        if (result.returncode == 0) != accepted:
            disagreements.append(text)
    assert disagreements == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.0, "0s", id="zero"),
        pytest.param(0.5, "500ms", id="below-a-second"),
        pytest.param(0.0015, "2ms", id="sub-millisecond-rounded"),
        pytest.param(30.0, "30s", id="seconds"),
        pytest.param(1.5, "1500ms", id="fractional-seconds"),
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
