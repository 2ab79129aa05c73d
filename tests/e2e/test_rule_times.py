"""The test copy of the rules: every time cut as asked, consistently, and still valid rules."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from monitoring.rule_times import (
    SHIPPED,
    duration,
    seconds,
    shipped_lookback,
    shortened,
    shortened_rules,
)
from monitoring.stack import binary, rules_with_for

RANGES = re.compile(r"\[((?:\d+(?:ms|[smhdwy]))+)(?::((?:\d+(?:ms|[smhdwy]))+))?\]")


def ranges_of(text: str) -> list[tuple[str, str | None]]:
    return [(match[1], match[2]) for match in RANGES.finditer(text)]


def test_durations_read_and_write_the_prometheus_grammar() -> None:
    assert seconds("1h30m") == 5400
    assert seconds("250ms") == 0.25
    assert duration(15) == "15s"
    assert duration(1.5) == "1500ms"
    with pytest.raises(ValueError):
        seconds("1.5s")


def test_nothing_asked_leaves_the_shipped_rules_as_they_are(tmp_path: Path) -> None:
    assert shortened_rules(tmp_path).read_text() == SHIPPED.read_text()


def test_hold_and_lookback_cut_every_for_and_every_lookback_window_together() -> None:
    text = SHIPPED.read_text()
    lookback = shipped_lookback(text)
    assert lookback == 600  # the premise: what alerts.lookback ships
    cut = shortened(text, hold=2, lookback=15)

    assert set(re.findall(r"(?m)^\s+for:\s*(\S+)", cut)) == {"2s"}
    assert shipped_lookback(cut) == 15
    before, after = ranges_of(text), ranges_of(cut)
    assert len(before) == len(after)
    for (old, old_step), (new, new_step) in zip(before, after, strict=True):
        if seconds(old) == lookback:
            assert seconds(new) == 15
            if old_step is not None:  # the annotations' subqueries keep their ten points
                assert new_step is not None
                assert seconds(new) / seconds(new_step) == seconds(old) / seconds(old_step)
        else:
            assert (new, new_step) == (old, old_step)


def test_any_other_shipped_range_is_cut_where_it_occurs() -> None:
    text = SHIPPED.read_text()
    cut = shortened(text, ranges={"30m": 20})
    assert "[30m]" in text and "[30m]" not in cut
    assert cut.count("[20s]") == text.count("[30m]")


def test_a_range_the_rules_do_not_have_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValueError, match="no range of"):
        shortened(SHIPPED.read_text(), ranges={"3d": 60})


def test_the_older_rules_with_for_still_sets_every_for(tmp_path: Path) -> None:
    text = rules_with_for(tmp_path, 0).read_text()
    assert set(re.findall(r"(?m)^\s+for:\s*(\S+)", text)) == {"0s"}


def test_promtool_accepts_the_shortened_rules(tmp_path: Path) -> None:
    promtool = binary("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    path = shortened_rules(tmp_path, hold=2, lookback=15, ranges={"30m": 20, "5m": 3})
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
