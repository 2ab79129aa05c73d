"""Per-job and per-collection panels stay bounded at 100,000 jobs, with a real Prometheus.

A static exposition as the exporter writes it for a large fleet (50,000 refresh and 50,000
import jobs in 2,500 collections, a third of them unfinished, a quarter of the collections
failing, 20 of 200 targets down) is what a real Prometheus holds, as one scrape of it at ``NOW``
would have stored it (job and instance labels added). The samples are backfilled as a TSDB
block by promtool before Prometheus starts (``backfill.py``) rather than scraped: a scrape
every 60 s waited up to a minute for its phase. Then every query of both dashboards is
evaluated, instant and (for graphs) over a range, and none may return more series than its
``topk``/``bottomk`` bound, nor more than ``MAX_SERIES`` when it has none: a dashboard draws the
same number of lines for ten jobs or a hundred thousand. The queries run two at a time: they
are the CPU of this test, and Prometheus has a core for each. promtool and Prometheus run
``nice``: in a parallel run they use what the tests waiting on the clock leave.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from monitoring.stack import REPO, answers, batch, binary, free_port, start, stop, wait_until

from .backfill import create_blocks, openmetrics
from .test_prometheus import _dashboard_queries

pytestmark = pytest.mark.e2e

REFRESH_JOBS = 50_000
IMPORT_JOBS = 50_000
CLUSTERS = 2
DATABASES = 25  # per cluster
COLLECTIONS = 50  # per database: 2,500 in all
TARGETS_DOWN = 20
MAX_SERIES = 100
REFRESH_STATES = ("RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed")
IMPORT_STATES = ("Pending", "Importing", "Completed", "Failed")
NOW = 1_800_000_000.0  # the exposition's poll time, and the time of its one sample
AT = NOW + 5  # queries are evaluated at: the data is 5 s old
RANGE = 60  # seconds of graph before AT (at most 5m, the lookback of a sample)
STEP = 15
TARGET = {"job": "milvus-jobs", "instance": "fleet.example:9969"}


def _exposition() -> list[str]:
    """The lines of the text exposition of the fleet, one sample each."""
    lines: list[str] = []
    add = lines.append
    collections = [
        (f"c{c}", f"db{d:02d}", f"coll{n:03d}")
        for c in range(CLUSTERS)
        for d in range(DATABASES)
        for n in range(COLLECTIONS)
    ]
    add('milvus_jobs_exporter_build_info{version="0.0.0-fleet"} 1')
    add("milvus_jobs_exporter_untracked_jobs 0")
    add("milvus_jobs_exporter_poll_cycle_duration_seconds 12.5")
    add("milvus_jobs_exporter_poll_interval_seconds 30")
    add(f"milvus_jobs_exporter_last_poll_cycle_timestamp_seconds {NOW}")
    add("milvus_jobs_exporter_config_last_reload_successful 1")
    add('milvus_jobs_exporter_shard_info{index="0",count="1"} 1')
    add("milvus_jobs_exporter_shards 1")
    add("milvus_jobs_exporter_poll_cycles_total 1000")
    add("process_resident_memory_bytes 3.2e8")
    add("process_cpu_seconds_total 1234")
    add("process_start_time_seconds 1799990000")
    target_index = 0
    for cluster in range(CLUSTERS):
        for database in range(DATABASES):
            for kind in ("refresh", "import"):
                target = f'milvus_cluster="c{cluster}",database="db{database:02d}",kind="{kind}"'
                down = target_index < TARGETS_DOWN
                target_index += 1
                add(f"milvus_jobs_exporter_target_up{{{target}}} {0 if down else 1}")
                add(
                    f"milvus_jobs_exporter_last_success_timestamp_seconds{{{target}}} "
                    f"{NOW - (3600 + target_index if down else 20)}"
                )
                add(f"milvus_jobs_exporter_unknown_state_jobs{{{target}}} {target_index % 3}")
                if down:
                    add(f'milvus_jobs_exporter_target_error_info{{{target},reason="timeout"}} 1')
                    add(f'milvus_jobs_exporter_poll_errors_total{{{target},reason="timeout"}} 99')
        for api in ("external_collection/list", "import/list"):
            for outcome in ("success", "rate_limited"):
                labels = f'milvus_cluster="c{cluster}",api="{api}",outcome="{outcome}"'
                add(f"milvus_jobs_exporter_api_requests_total{{{labels}}} 5000")
    for index, (cluster_name, database_name, collection) in enumerate(collections):
        labels = (
            f'milvus_cluster="{cluster_name}",database="{database_name}",collection="{collection}"'
        )
        failing = index % 4 == 0
        success = NOW - 60 * (index % 2000)
        add(f"milvus_refresh_last_success_timestamp_seconds{{{labels}}} {success}")
        if failing:
            add(f"milvus_refresh_last_failure_timestamp_seconds{{{labels}}} {success + 30}")
            add(f'milvus_refresh_last_failure_info{{{labels},job_id="{index}",reason="boom"}} 1')
        for state in REFRESH_STATES:
            add(f'milvus_refresh_jobs{{{labels},state="{state}"}} 5')
        for state in IMPORT_STATES:
            add(f'milvus_import_jobs{{{labels},state="{state}"}} 5')
    for kind, jobs, states in (
        ("refresh", REFRESH_JOBS, REFRESH_STATES),
        ("import", IMPORT_JOBS, IMPORT_STATES),
    ):
        for number in range(jobs):
            cluster_name, database_name, collection = collections[number % len(collections)]
            job = (
                f'milvus_cluster="{cluster_name}",database="{database_name}",'
                f'collection="{collection}",'
                f'job_id="{kind[0]}{number}"'
            )
            state = states[number % 3 if number % 10 else 3]  # a third unfinished, a tenth failed
            for name in states:
                add(f'milvus_{kind}_job_state{{{job},state="{name}"}} {int(name == state)}')
            add(f"milvus_{kind}_job_progress_ratio{{{job}}} {number % 100 / 100}")
            add(f"milvus_{kind}_job_duration_seconds{{{job}}} {60 + number}")
            if state.endswith("Failed"):
                add(f'milvus_{kind}_job_failure_info{{{job},reason="bad"}} 1')
            if kind == "import":
                add(f"milvus_import_job_imported_rows{{{job}}} {number * 10}")
                add(f"milvus_import_job_create_timestamp_seconds{{{job}}} {NOW - number}")
    for cluster in range(CLUSTERS):
        for database in range(DATABASES):
            for kind in ("refresh", "import"):
                for state in ("RefreshCompleted", "Completed", "RefreshFailed", "Failed"):
                    labels = (
                        f'milvus_cluster="c{cluster}",database="db{database:02d}",state="{state}"'
                    )
                    for bound in ("60", "600", "3600", "+Inf"):
                        add(f'milvus_{kind}_duration_seconds_bucket{{{labels},le="{bound}"}} 3')
                    add(f"milvus_{kind}_duration_seconds_count{{{labels}}} 3")
                    add(f"milvus_{kind}_duration_seconds_sum{{{labels}}} 900")
    return lines


@dataclass
class Fleet:
    url: str

    def get(self, path: str, **params: Any) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=120).json()
        assert answer["status"] == "success", f"{params}: {answer}"
        return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    executable = binary("prometheus")
    if executable is None or binary("promtool") is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    workdir: Path = tmp_path_factory.mktemp("fleet")
    create_blocks(openmetrics(_exposition(), NOW, TARGET), workdir / "tsdb")
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 60s\n")  # scrapes nothing: all is backfilled
    port = free_port()
    process = start(
        batch([executable, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{port}", "--query.max-samples=50000000"]),
        workdir / "prometheus.log",
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(url + "/-/ready"), 60, "Prometheus to be ready", 0.2)
        yield Fleet(url)
    finally:
        stop(process)


def _substituted(expr: str, instance: str = ".*") -> str:
    for variable, value in (
        ("$__rate_interval", "1m"),
        ("$__range", "5m"),
        ("$instance", instance),
    ):
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", ".*", expr)


def _bound(expr: str) -> int:
    limits = [int(number) for number in re.findall(r"\b(?:topk|bottomk)\((\d+),", expr)]
    return max(limits) if limits else MAX_SERIES


def test_every_panel_query_stays_within_its_bound_at_100k_jobs(fleet: Fleet) -> None:
    assert fleet.get("query", query="count(milvus_refresh_job_state)", time=AT)[0]["value"][
        1
    ] == str(4 * REFRESH_JOBS)
    graphs = {
        (board, panel["title"])
        for board in ("milvus-jobs-overview", "milvus-jobs-exporter")
        for panel in json.loads((REPO / "grafana" / "dashboards" / f"{board}.json").read_text())[
            "panels"
        ]
        if panel["type"] in {"timeseries", "state-timeline"}
    }

    def counts(query: tuple[str, str, str]) -> tuple[list[int], str, str]:
        board, title, expr = query
        substituted = _substituted(expr)
        found = [len(fleet.get("query", query=substituted, time=AT))]
        if (board, title) in graphs:
            span = fleet.get("query_range", query=substituted, start=AT - RANGE, end=AT, step=STEP)
            found.append(len(span))
        return found, f"{board} / {title}", expr

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(counts, _dashboard_queries()))
    largest = sorted(((max(found), where) for found, where, _expr in results), reverse=True)
    too_many = [
        f"{where}: {found} series, bound {_bound(expr)}"
        for found, where, expr in results
        if max(found) > _bound(expr)
    ]
    print(f"\n{len(largest)} queries at {REFRESH_JOBS + IMPORT_JOBS} jobs; largest: {largest[:3]}")
    assert not too_many, "\n".join(too_many)
    assert largest[0][0] <= 50


def test_the_unbounded_queries_of_old_would_draw_one_line_per_job(fleet: Fleet) -> None:
    """What the bounds save: the per-job graphs used to draw every tracked job."""
    found = fleet.get(
        "query",
        query="count(max by (milvus_cluster, database, collection, job_id) "
        "(milvus_refresh_job_duration_seconds))",
        time=AT,
    )
    assert int(found[0]["value"][1]) == REFRESH_JOBS
