"""Smoke test of ``python -m benchmarks``: every part runs at tiny sizes and reports its figures.

It checks that the benchmark code works, not the figures: those come from a full run on the CI
machine (``python -m benchmarks``) and go into the README.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.harness import RawHttpClient, floor_server
from benchmarks.profiling import summary

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parent.parent


def test_quick_run_prints_every_table_and_writes_results(tmp_path):
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for title in ("1. Scrape", "2. Polling", "3. Scale", "4. Startup"):
        assert title in completed.stdout
    results = json.loads(output.read_text())
    assert results["scrape"]["exporter"]["targets_up"] == results["scrape"]["exporter"]["targets"]
    assert results["scrape"]["exporter"]["plain_bytes"] > 0
    assert results["scrape"]["stock"]["plain_ms"] > 0
    assert [method["rejected"] for method in results["polling"]["methods"]] == [0, 0, 0]
    assert {point["curve"] for point in results["scale"]["points"]} == {"jobs", "targets"}
    assert all(point["targets_up"] == point["targets"] for point in results["scale"]["points"])
    assert results["startup"]["ready_median_s"] > results["startup"]["listening_median_s"] > 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "scale.png").stat().st_size > 0


@pytest.mark.e2e
def test_quick_time_to_page_run_pages_every_sample_within_its_bounds(tmp_path):
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.paging", "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    if "skipped" in completed.stdout:
        pytest.skip("prometheus or prometheus-alertmanager is not installed")
    (fast,) = json.loads(output.read_text())["paging"]["profiles"]
    assert fast["samples"] == 2
    # the bounds plus the fixed few seconds of publish, notifier and pipeline
    assert fast["best_s"] <= fast["min_s"] <= fast["max_s"] <= fast["worst_s"] + 10


def test_raw_client_reads_exactly_the_floor_servers_bytes():
    client = RawHttpClient(capacity=1024)
    with floor_server(300_000) as port:
        answer = client.get(port, "/metrics")
    assert answer.status == 200
    assert len(answer.body) == 300_000
    assert answer.seconds > 0


@pytest.mark.parametrize(
    ("measured", "operator", "target", "expected"),
    [
        pytest.param(19.9, "<", 20.0, True, id="below"),
        pytest.param(20.0, "<", 20.0, False, id="equal-is-not-below"),
        pytest.param(3.3, "<=", 3.3, True, id="at-most"),
        pytest.param(49.0, ">=", 50.0, False, id="not-enough"),
    ],
)
def test_targets_are_judged_by_their_operator(measured, operator, target, expected):
    assert report.met(measured, operator, target) is expected


def test_profile_summary_ranks_functions_by_self_and_total_samples(tmp_path):
    collapsed = tmp_path / "phase.txt"
    collapsed.write_text(
        "run (/x/exporter/daemon.py:10);render (/x/exporter/exposition/families.py:42) 3\n"
        "run (/x/exporter/daemon.py:10);parse (/x/exporter/upstream/records.py:7) 1\n"
    )
    text = summary(collapsed, "phase", seconds=1.0, gil_only=True)
    assert "75.0%  render (exporter/exposition/families.py)" in text
    assert "100.0%  run (exporter/daemon.py)" in text


def test_quick_listing_run_measures_every_shape_with_the_target_up(tmp_path):
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.listing", "--quick", "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    points = json.loads(output.read_text())["listing"]["points"]
    assert len(points) == 3
    assert all(point["target_up"] and point["samples"] > 0 for point in points)
    assert all(point["peak_rss_mb"] > 0 for point in points)
