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
from benchmarks.profiling import layer_shares, summary

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parent.parent


def quick_run(module: str, output: Path, timeout: float, *arguments: str) -> str:
    """``python -m module --quick [arguments] --output output`` from the repository, which
    must exit 0; what it printed."""
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", *arguments, "--output", str(output)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    return completed.stdout


def test_quick_run_prints_every_table_and_writes_results(tmp_path):
    output = tmp_path / "results.json"
    printed = quick_run("benchmarks", output, 60)
    for title in ("1. Scrape", "2. Polling", "3. Scale", "4. Startup", "8. Model cycle"):
        assert title in printed
    results = json.loads(output.read_text())
    assert results["scrape"]["exporter"]["targets_up"] == results["scrape"]["exporter"]["targets"]
    assert results["scrape"]["exporter"]["plain_bytes"] > 0
    assert results["scrape"]["stock"]["plain_ms"] > 0
    assert [method["rejected"] for method in results["polling"]["methods"]] == [0, 0, 0]
    assert {point["curve"] for point in results["scale"]["points"]} == {"jobs", "targets"}
    assert all(point["targets_up"] == point["targets"] for point in results["scale"]["points"])
    assert results["startup"]["ready_median_s"] > results["startup"]["listening_median_s"] > 0
    assert results["model_cycle"]["databases"] == 5 and results["model_cycle"]["median_ms"] > 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "scale.png").stat().st_size > 0


@pytest.mark.e2e
def test_quick_time_to_page_run_pages_every_sample_within_its_bounds(tmp_path):
    output = tmp_path / "results.json"
    if "skipped" in quick_run("benchmarks.paging", output, 180):
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
    quick_run("benchmarks.listing", output, 120)
    points = json.loads(output.read_text())["listing"]["points"]
    assert len(points) == 3
    assert all(point["target_up"] and point["samples"] > 0 for point in points)
    assert all(point["peak_rss_mb"] > 0 for point in points)


def test_quick_request_cost_run_measures_the_exporter_next_to_plain_requests(tmp_path):
    output = tmp_path / "results.json"
    quick_run("benchmarks.request_cost", output, 120)
    result = json.loads(output.read_text())["request_cost"]
    assert result["list_bytes"] > 150_000 > 1_000 > result["describe_bytes"]
    assert [row["way"] for row in result["rows"]][:2] == [
        "exporter MilvusClient",
        "requests.Session.post",
    ]
    assert all(row["describe_ms"] > 0 and row["list_ms"] > 0 for row in result["rows"])


def test_profile_layers_take_each_sample_from_its_innermost_known_frame(tmp_path):
    collapsed = tmp_path / "phase.txt"
    collapsed.write_text(
        "run (/x/exporter/daemon.py:1);update (/x/exporter/metrics/model.py:2) 5\n"
        "run (/x/exporter/daemon.py:1);_poll_once (/x/exporter/polling/poller.py:3);"
        "call (/x/exporter/upstream/client.py:4);loads (/usr/lib/python3.11/json/decoder.py:5) 3\n"
        "_poll_once (/x/exporter/polling/poller.py:3);recv_into (/usr/lib/python3.11/socket.py:6) 2\n"
    )
    assert layer_shares(collapsed) == {"model": 50.0, "parsing": 30.0, "HTTP": 20.0}


def test_quick_fleet_run_reports_every_figure_of_the_exporter_and_the_plain_loop(tmp_path):
    output = tmp_path / "results.json"
    assert "7. Fleet" in quick_run("benchmarks.fleet", output, 150, "--simulator")
    result = json.loads(output.read_text())["fleet"]
    fleet = result["fleets"]["2"]
    points = {(point["subject"], point["upstream"]): point for point in result["points"]}
    assert set(points) == {
        ("exporter", "lean fake"),
        ("plain loop", "lean fake"),
        ("exporter", "simulator"),
    }
    for point in points.values():
        assert point["cycles"] == 2
        assert point["targets_up"] == point["targets"] == 2 * fleet["databases"]
        assert point["cpu_per_cycle_s"] > 0
        assert 0 < point["poll_s_median"] <= point["cycle_s_median"] <= point["cycle_s_max"]
        assert point["interval_s_median"] > 0
        assert point["rss_mb"] > 0 and point["peak_rss_mb"] > 0 and point["cold_peak_rss_mb"] > 0
        assert point["requests_per_round"]["external_collection/list"] == fleet["databases"]
        assert point["rate_limited_per_round"] == 0
        assert set(point["gc_per_cycle"]) == {"0", "1", "2"}
    pages = -(-fleet["imports"] // fleet["page_size"])
    running = fleet["databases"] * fleet["running_imports"]
    for subject in ("exporter", "plain loop"):
        point = points[(subject, "lean fake")]
        assert point["requests_per_round"]["import/list"] == fleet["databases"] * pages
        # every finished import was described in the warm-up: only the running ones are left
        described = point["requests_per_round"]["import/describe"]
        assert described == point["upstream_stats"]["running_described"]
        assert 0 < described <= running
    assert points[("plain loop", "lean fake")]["requests_per_round"]["import/describe"] == running
    exporter = points[("exporter", "lean fake")]
    assert exporter["warm_up_described"] == fleet["databases"] * fleet["imports"] - running
    assert exporter["peak_reset"] is True
