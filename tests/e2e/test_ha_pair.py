"""Every dashboard query gives the same numbers with one exporter and with an HA pair.

One simulator whose clock stands still (so every poll answers the same jobs), two exporters with
the same config polling it (X and Y), and two real Prometheus servers: one scrapes X alone, the
other X and Y, an HA pair whose every job series is duplicated. Every query of both dashboards
is evaluated at the same instant on both, variables at All, and the results must match: the same
series, the same values.

Two kinds of query, told apart by their result:
- without an ``instance`` label (what the exporters see: jobs, collections, targets), the pair
  must give exactly the numbers of one exporter (or within ``SECONDS`` where a value is a time
  since a poll: X and Y do not poll at the same instant);
- with one (what each exporter does: requests, cycles, memory), the pair really has two
  exporters, so both servers are asked about X alone (``$instance`` set to X) and must agree
  within ``PER_EXPORTER`` (they scrape X at different instants).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
import requests

from exporter.simulator import Simulator, SimulatorOptions
from monitoring.stack import (
    Prometheus,
    answers,
    binary,
    exporter_process,
    prometheus_process,
    shortened_rules,
    wait_until,
)

from .test_prometheus import _dashboard_queries

pytestmark = pytest.mark.e2e

TOKEN = "ha-pair-token-7e1d"
FROZEN = time.time() - 3600
SECONDS = 10.0
"""Tolerance of a value that is a time since a poll (time(), a running job's duration)."""
PER_EXPORTER = 0.5
"""Relative tolerance of an exporter's own rates and sizes, sampled by two servers."""
TIME_DEPENDENT = ("time()", "job_duration_seconds", "last_success_timestamp_seconds")
RANGE = 15
"""Seconds of ``$__range``: enough scrapes (one a second) for every range function to have data."""


@dataclass
class Pair:
    single: Prometheus
    pair: Prometheus
    shared_instance: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if binary("prometheus") is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    workdir = tmp_path_factory.mktemp("ha")
    simulator = Simulator(
        SimulatorOptions(
            seed=41,
            tokens=(TOKEN,),
            databases=("default", "analytics"),
            collections_per_database=4,
            failure_probability=0.35,
            hang_probability=0.2,
            requests_per_second=None,
            clock=lambda: FROZEN,
            knobs={"restore_jobs_per_database": 3, "restore_hang_probability": 0.3},
        )
    )
    # Unfinished restores for their panels, whatever the seed makes of the history.
    simulator.start_job("restore", "default", outcome="hang", duration_seconds=0.0)
    simulator.start_job("restore", "analytics", outcome="hang_pending", duration_seconds=0.0)
    with ExitStack() as running:
        upstream = running.enter_context(simulator.serve("127.0.0.1", 0))
        config = (
            "poll_interval: 1s\nrequest_timeout: 2s\nclusters:\n"
            f"  - name: frozen\n    endpoint: {upstream.url}\n    token: {TOKEN}\n"
            '    databases: ["*"]\n    discovery_interval: 5s\n'  # the discovery panels too
            "    jobs: [refresh, import, restore]\n"
        )
        urls = [running.enter_context(exporter_process(workdir, name, config)) for name in "XY"]
        wait_until(lambda: all(answers(url + "/readyz") for url in urls), 30, "both ready")
        addresses = [url.removeprefix("http://") for url in urls]
        rules = shortened_rules(workdir)
        single_dir, pair_dir = workdir / "single", workdir / "pair"
        single_dir.mkdir()
        pair_dir.mkdir()
        single = running.enter_context(prometheus_process(single_dir, addresses[:1], rules))
        pair = running.enter_context(prometheus_process(pair_dir, addresses, rules))

        def both_scrape_everything() -> bool:
            single_up = single.query("count(up == 1)")
            pair_up = pair.query("count(up == 1)")
            return bool(single_up and pair_up) and pair_up[0]["value"][1] == "2"

        wait_until(both_scrape_everything, 60, "both servers to scrape their exporters")

        def ranges_full() -> bool:  # every target scraped RANGE times within the last RANGE
            fullest = f"min(count_over_time(up[{RANGE}s]))"
            return all(
                (found := server.query(fullest)) and float(found[0]["value"][1]) >= RANGE - 1
                for server in (single, pair)
            )

        wait_until(ranges_full, 60, f"{RANGE}s of samples on both servers")
        yield Pair(single, pair, addresses[0])


def _substituted(expr: str, instance: str) -> str:
    for variable, value in (
        ("$__rate_interval", "10s"),
        ("$__range", f"{RANGE}s"),
        ("$instance", instance),
    ):
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", ".*", expr)


def _at(prometheus: Prometheus, expr: str, at: float) -> dict[tuple[tuple[str, str], ...], float]:
    params: dict[str, str | float] = {"query": expr, "time": at}
    answer = requests.get(f"{prometheus.url}/api/v1/query", params=params, timeout=30).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    return {
        tuple(sorted(item["metric"].items())): float(item["value"][1])
        for item in answer["data"]["result"]
    }


def _close(first: float, second: float, expr: str, per_exporter: bool) -> bool:
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    if per_exporter:
        return abs(first - second) <= max(PER_EXPORTER * max(abs(first), abs(second)), 0.05)
    if any(name in expr for name in TIME_DEPENDENT):
        scale = 1000 if "* 1000" in expr else 1
        return abs(first - second) <= SECONDS * scale
    return first == second


def test_the_pair_duplicates_every_job_series(servers: Pair) -> None:
    """The premise: the HA server really holds every job series twice."""
    single = servers.single.query("count(milvus_refresh_job_state)")
    pair = servers.pair.query("count(milvus_refresh_job_state)")
    assert single and int(pair[0]["value"][1]) == 2 * int(single[0]["value"][1])


def test_every_dashboard_query_gives_the_same_numbers_with_an_ha_pair(servers: Pair) -> None:
    at = time.time() - 2
    compared, with_data, differences, empty = 0, 0, [], []
    for board, title, expr in _dashboard_queries():
        everything = _substituted(expr, ".*")
        single = _at(servers.single, everything, at)
        pair = _at(servers.pair, everything, at)
        per_exporter = any("instance" in dict(labels) for labels in (*single, *pair))
        if per_exporter:
            only_x = _substituted(expr, re.escape(servers.shared_instance).replace("\\", "\\\\"))
            single, pair = _at(servers.single, only_x, at), _at(servers.pair, only_x, at)
        compared += 1
        with_data += bool(single)
        where = f"{board} / {title}: {expr[:120]}"
        if not single:
            empty.append(where)
        if set(single) != set(pair):
            differences.append(f"{where}\n  series: {sorted(single)} != {sorted(pair)}")
            continue
        for labels, value in single.items():
            if not _close(value, pair[labels], expr, per_exporter):
                differences.append(f"{where}\n  {dict(labels)}: {value} != {pair[labels]}")
    print(f"\n{compared} queries compared, {with_data} with data, {len(differences)} different")
    assert not differences, "\n".join(differences)
    assert compared >= 60 and with_data >= compared * 0.75, (
        f"{with_data} of {compared} with data; without:\n" + "\n".join(empty)
    )
