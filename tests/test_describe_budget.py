"""Every cycle within its interval (issue 23): the lists of every target each round, then the
``import/describe`` follow-ups within what the rate limit leaves of the round, oldest first
across every target, the rest counted as the describe backlog and described in later rounds.

The real daemon (``python -m exporter serve``) against a small upstream on 127.0.0.1 that holds
only running imports and enforces the limit per token and path, as Zilliz Cloud does.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from exporter.simulator.ratelimit import SlidingWindowLimiter

from .conftest import TOKEN_A
from .test_cli import REPO, free_port

LIST = "/v2/vectordb/jobs/import/list"
DESCRIBE = "/v2/vectordb/jobs/import/describe"
COLLECTIONS = "/v2/vectordb/collections/list"


@dataclass(frozen=True)
class Seen:
    at: float
    path: str
    database: str
    job_id: str
    limited: bool


@dataclass
class RunningImports:
    """``databases`` x ``running`` imports that never finish, ``rate`` requests per second per
    (token, path) and HTTP 429 above it; every request noted in ``seen``."""

    databases: tuple[str, ...]
    running: int
    rate: int
    slow_lists: dict[str, float] = field(default_factory=dict)
    """Databases whose list answers only after this many seconds."""
    seen: list[Seen] = field(default_factory=list)

    def job_ids(self, database: str) -> list[str]:
        number = self.databases.index(database)
        return [str(448_700_000_000 + number * 1000 + index) for index in range(self.running)]

    def every_job(self) -> set[str]:
        return {job for database in self.databases for job in self.job_ids(database)}

    def record(self, job_id: str, detailed: bool) -> dict[str, Any]:
        database = self.databases[(int(job_id) - 448_700_000_000) // 1000]
        record: dict[str, Any] = {
            "jobId": job_id,
            "collectionName": f"{database}_c{job_id[-3:]}",
            "state": "Importing",
            "progress": 60,
        }
        if detailed:
            record.update(
                importedRows=600,
                totalRows=1000,
                fileSize=4096,
                details=[
                    {
                        "fileName": "part-0.parquet",
                        "fileSize": 4096,
                        "progress": 60,
                        "state": "Importing",
                        "importedRows": 600,
                        "totalRows": 1000,
                    }
                ],
            )
        return record

    @contextmanager
    def serving(self) -> Iterator[str]:
        limiter = SlidingWindowLimiter(self.rate)
        upstream = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                database = str(body.get("dbName", ""))
                job_id = str(body.get("jobId", ""))
                admitted = limiter.admit(TOKEN_A, self.path, time.monotonic())
                with lock:
                    upstream.seen.append(
                        Seen(time.monotonic(), self.path, database, job_id, not admitted)
                    )
                if not admitted:
                    self._send(429, {"code": 1807, "message": "rate limit exceeded"}, "1")
                elif self.path == LIST:
                    time.sleep(upstream.slow_lists.get(database, 0.0))
                    records = [upstream.record(job, False) for job in upstream.job_ids(database)]
                    self._send(200, {"code": 0, "data": {"records": records}})
                elif self.path == DESCRIBE:
                    self._send(200, {"code": 0, "data": upstream.record(job_id, True)})
                elif self.path == COLLECTIONS:
                    names = [f"{database}_c{job[-3:]}" for job in upstream.job_ids(database)]
                    self._send(200, {"code": 0, "data": names})
                else:
                    self._send(404, {"code": 404, "message": "no such path"})

            def _send(self, status: int, payload: object, retry_after: str = "") -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                del request, client_address  # a client gone mid-answer (the exporter killed)

        server = Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@contextmanager
def exporter_serving(
    url: str, databases: tuple[str, ...], tmp_path: Path, settings: str
) -> Iterator[tuple[int, Path]]:
    port = free_port()
    config = tmp_path / "config.yaml"
    names = ", ".join(databases)
    config.write_text(
        f"{settings}clusters:\n"
        f"  - {{name: prod, endpoint: '{url}', token: {TOKEN_A},"
        f" databases: [{names}], jobs: [import]}}\n"
    )
    log_path = tmp_path / "exporter.log"
    command = [
        sys.executable, "-m", "exporter", "serve", "--config", str(config),
        "--listen", f"127.0.0.1:{port}", "--log-format", "json",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO, stderr=log_file)
        try:
            yield port, log_path
        finally:
            process.kill()
            process.wait(timeout=10)


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics by its line's name and labels."""
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            found[name] = float(number)
    return found


def rounds_of(seen: list[Seen]) -> list[list[Seen]]:
    """The requests split into rounds: a round starts with the first list of a database that
    the current round has listed already (every database is listed once a round)."""
    rounds: list[list[Seen]] = []
    listed: set[str] = set()
    for request in list(seen):
        if request.path == LIST and not request.limited:
            if not rounds or request.database in listed:
                rounds.append([])
                listed = set()
            listed.add(request.database)
        if rounds:
            rounds[-1].append(request)
    return rounds


def test_describes_fill_what_the_lists_leave_oldest_first_across_rounds_with_a_backlog_metric(
    tmp_path,
):
    """8 databases x 6 running imports, 10 requests/s per path, a 2 s interval: a round's
    describe budget is what the limiter lets through (10 per 1.1 s) in 2 s less a margin of
    0.2 s, 16. Before: a describe started only
    while the deadline was more than 1 s away (8 to 10 a round), in the order the lists
    answered, so the first databases' imports took every round's describes and the last ones'
    were never described; and no metric said so."""
    databases = tuple(f"db{index}" for index in range(8))
    upstream = RunningImports(databases, running=6, rate=10)
    interval, rate, margin = 2.0, 10, 0.2
    budget = math.floor(rate / 1.1 * (interval - margin))
    every = upstream.every_job()
    backlog_key = 'milvus_jobs_exporter_describe_backlog{milvus_cluster="prod",kind="import"}'
    age_key = (
        'milvus_jobs_exporter_describe_backlog_oldest_age_seconds{milvus_cluster="prod",'
        'kind="import"}'
    )
    settings = "poll_interval: 2s\nrequest_timeout: 1s\nrequests_per_second: 10\n"
    backlogs: list[float] = []
    ages: list[float] = []
    cycle_seconds: list[float] = []
    late: list[float] = []
    with (
        upstream.serving() as url,
        exporter_serving(url, databases, tmp_path, settings) as (
            port,
            log_path,
        ),
    ):
        deadline = time.monotonic() + 40
        while len(rounds_of(upstream.seen)) < 8:
            assert time.monotonic() < deadline, "fewer than 7 rounds in 40 s"
            time.sleep(0.25)
            try:
                samples = scrape(port)
            except requests.RequestException:
                continue
            if backlog_key in samples:
                backlogs.append(samples[backlog_key])
                ages.append(samples[age_key])
            if "milvus_jobs_exporter_poll_cycle_duration_seconds" in samples:
                cycle_seconds.append(samples["milvus_jobs_exporter_poll_cycle_duration_seconds"])
                late.append(samples["milvus_jobs_exporter_late_targets"])
        log_lines = log_path.read_text().splitlines()
    rounds = rounds_of(upstream.seen)[:-1]  # the last may be cut short
    assert len(rounds) >= 6
    starts = [round_requests[0].at for round_requests in rounds]
    last_described: dict[str, int] = {}
    for number, round_requests in enumerate(rounds):
        lists = [r for r in round_requests if r.path == LIST]
        assert sorted(r.database for r in lists if not r.limited) == sorted(databases), (
            f"round {number}: not every database listed once"
        )
        described = [r.job_id for r in round_requests if r.path == DESCRIBE and not r.limited]
        assert len(described) <= budget, f"round {number}: {len(described)} describes"
        if number >= 1:  # the first round starts cold
            assert len(described) >= budget - 3, f"round {number}: {len(described)} describes"
        waited = {job: last_described.get(job, -1) for job in every}
        longest = sorted(waited.values())[len(described) - 1] if described else -1
        assert all(waited[job] <= longest for job in described), (
            f"round {number}: a job described more recently went before an older one"
        )
        for job in described:
            last_described[job] = number
    fewest = min(
        sum(1 for r in round_requests if r.path == DESCRIBE and not r.limited)
        for round_requests in rounds[1:]
    )
    per_window = math.ceil(len(every) / fewest)  # 3 at the full budget
    for first in range(1, len(rounds) - per_window + 1):
        window = set()
        for round_requests in rounds[first : first + per_window]:
            window |= {r.job_id for r in round_requests if r.path == DESCRIBE and not r.limited}
        assert window == every, f"rounds {first}..: {len(every - window)} never described"
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert max(gaps) < interval + 0.5, f"rounds started {gaps} apart"
    assert cycle_seconds and max(cycle_seconds) <= interval
    assert late and max(late) == 0
    assert not [line for line in log_lines if "cycle.overrun" in line]
    expected_backlog = len(every) - budget
    assert backlogs and all(
        expected_backlog <= value <= expected_backlog + 3 for value in backlogs[1:]
    ), backlogs
    assert max(ages) > 0 and max(ages) <= (per_window + 1) * interval, ages


def test_lists_that_do_not_fit_a_round_rotate_oldest_first_and_the_log_says_so(tmp_path):
    """30 databases at 10 requests/s and a 2 s interval: the lists alone need 3.3 s. Those left
    over go first next round, so each database is listed at least every other round and none is
    reported down; describes still run beside the lists; one line says the interval is too
    short for the fleet at the rate limit (it said nothing before)."""
    databases = tuple(f"db{index:02d}" for index in range(30))
    upstream = RunningImports(databases, running=2, rate=10)
    settings = "poll_interval: 2s\nrequest_timeout: 1s\nrequests_per_second: 10\n"
    up_keys = [
        f'milvus_jobs_exporter_target_up{{milvus_cluster="prod",database="{database}",'
        'kind="import"}'
        for database in databases
    ]
    seen_down: set[str] = set()
    late: list[float] = []
    with (
        upstream.serving() as url,
        exporter_serving(url, databases, tmp_path, settings) as (
            port,
            log_path,
        ),
    ):
        deadline = time.monotonic() + 30
        started = time.monotonic()
        while time.monotonic() < started + 12:
            assert time.monotonic() < deadline
            time.sleep(0.25)
            try:
                samples = scrape(port)
            except requests.RequestException:
                continue
            if time.monotonic() > started + 5:  # every database polled once by then
                seen_down |= {key for key in up_keys if samples.get(key) == 0}
            if "milvus_jobs_exporter_late_targets" in samples:
                late.append(samples["milvus_jobs_exporter_late_targets"])
        log_lines = log_path.read_text().splitlines()
    lists = [r for r in upstream.seen if r.path == LIST and not r.limited]
    assert not [r for r in upstream.seen if r.limited], "the limiter let a request over the limit"
    first, last = lists[0].at, lists[-1].at
    # every database listed in every 4 s (two rounds) of the run, once the first round is over
    for window_start in (first + 2.0, first + 4.0, first + 6.0):
        if window_start + 4.0 > last:
            break
        listed = {r.database for r in lists if window_start <= r.at < window_start + 4.0}
        assert listed == set(databases), f"not listed from {window_start - first:.0f}s"
    assert not seen_down, f"reported down: {sorted(seen_down)[:3]}"
    assert late and max(late) > 0
    warnings = [json.loads(line) for line in log_lines if "poll.interval_too_short" in line]
    assert len(warnings) == 1, "said once, then every ten minutes"
    assert warnings[0]["lists"] == 30 and warnings[0]["api"] == "import/list"
    assert any(r.path == DESCRIBE for r in upstream.seen)


def test_a_slow_list_holds_the_describes_of_newer_jobs_only_for_the_margin(tmp_path):
    """db0's list takes 1.2 s of each 2 s round and its imports wait longest for a describe:
    the others' describes wait for it only 0.2 s (the margin), not until it answers, so a
    round still makes about its budget of describes and every target stays up."""
    databases = tuple(f"db{index}" for index in range(4))
    upstream = RunningImports(databases, running=6, rate=10, slow_lists={"db0": 1.2})
    settings = "poll_interval: 2s\nrequest_timeout: 1500ms\nrequests_per_second: 10\n"
    budget = math.floor(10 / 1.1 * (2.0 - 0.2))
    with (
        upstream.serving() as url,
        exporter_serving(url, databases, tmp_path, settings) as (
            port,
            _log_path,
        ),
    ):
        deadline = time.monotonic() + 30
        while len(rounds_of(upstream.seen)) < 6:
            assert time.monotonic() < deadline, "fewer than 5 rounds in 30 s"
            time.sleep(0.25)
        samples = scrape(port)
    rounds = rounds_of(upstream.seen)[1:-1]  # the first starts cold, the last may be cut short
    for number, round_requests in enumerate(rounds, start=1):
        described = [r for r in round_requests if r.path == DESCRIBE and not r.limited]
        assert len(described) >= budget - 4, f"round {number}: {len(described)} describes"
    for database in databases:
        key = (
            f'milvus_jobs_exporter_target_up{{milvus_cluster="prod",database="{database}",'
            'kind="import"}'
        )
        assert samples[key] == 1
