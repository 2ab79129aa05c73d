"""The obvious alternative to the exporter's poll path: a plain loop, in a process of its own.

What someone would write in an afternoon with ``requests``, ``json`` and prometheus_client's
``Gauge``: every ``--interval`` seconds one thread per API path (the rate limit is per path, so
three paths poll side by side) lists every database's refreshes, every database's imports (page
by page), and describes the running imports, the longest undescribed first, until the interval
is nearly over (what the last publish took, and a margin, before it). Each path waits ``1.05 / --requests-per-second`` seconds between requests, so it
never goes over the limit. Then it sets the gauges that matter and removes the ones that went
away: per job, for unfinished jobs and each collection's newest finished one, its state (0/1 per
state) and progress, and the imported and total rows of described imports; per collection and
state, the count of jobs; per target, up. prometheus_client's own HTTP server answers /metrics.

It prints ``ready 127.0.0.1:PORT`` on stdout, then one JSON line per cycle on stderr, in the
exporter's log shape, so the fleet benchmark reads both the same way::

    {"event": "cycle.finished", "ms": 14650, "publish_ms": 180, "requests": 391, ...}

    python -m benchmarks.plainloop --endpoint http://127.0.0.1:40123 --token T --databases 50
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client import Counter as CounterMetric
from prometheus_client import Gauge, start_http_server

from .upstream import READY_PREFIX, database_names, stop_on_signals

CLUSTER = "plain"
API = "/v2/vectordb/jobs/"
REFRESH_STATES = ("RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed")
IMPORT_STATES = ("Pending", "Importing", "Completed", "Failed")
FINISHED = frozenset({"RefreshCompleted", "RefreshFailed", "Completed", "Failed"})
MARGIN_SECONDS = 0.5
"""Describes stop this long before the interval ends, plus 1.5 times the last publish, so the
gauges are set before the next cycle is due."""
TIMEOUT_SECONDS = 10.0

JOB = ["milvus_cluster", "database", "collection", "job_id"]
COLLECTION = ["milvus_cluster", "database", "collection", "state"]
REFRESH_STATE = Gauge("milvus_refresh_job_state", "Refresh job state.", [*JOB, "state"])
REFRESH_PROGRESS = Gauge("milvus_refresh_job_progress_ratio", "Refresh progress.", JOB)
REFRESH_JOBS = Gauge("milvus_refresh_jobs", "Listed refresh jobs.", COLLECTION)
IMPORT_STATE = Gauge("milvus_import_job_state", "Import job state.", [*JOB, "state"])
IMPORT_PROGRESS = Gauge("milvus_import_job_progress_ratio", "Import progress.", JOB)
IMPORT_JOBS = Gauge("milvus_import_jobs", "Listed import jobs.", COLLECTION)
IMPORTED_ROWS = Gauge("milvus_import_job_imported_rows", "Rows imported.", JOB)
TOTAL_ROWS = Gauge("milvus_import_job_total_rows", "Rows to import.", JOB)
TARGET_UP = Gauge(
    "milvus_jobs_exporter_target_up", "Target up.", ["milvus_cluster", "database", "kind"]
)
CYCLES = CounterMetric("milvus_jobs_exporter_poll_cycles", "Poll cycles completed.")
REQUESTS = CounterMetric(
    "milvus_jobs_exporter_api_requests", "HTTP requests.", ["milvus_cluster", "api", "outcome"]
)


class Pacer:
    """At most ``rate`` requests a second on one path: each waits its turn (one thread each)."""

    def __init__(self, rate: float) -> None:
        self.spacing = 1.05 / rate
        self.next_at = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.spacing


@dataclass
class Round:
    """What one cycle read: records by database, and the running imports left to describe."""

    refreshes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    imports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    due: list[tuple[str, str]] = field(default_factory=list)
    lists_done: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PlainLoop:
    def __init__(self, endpoint: str, token: str, databases: list[str], rate: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.databases = databases
        self.rate = rate
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.pacers = {name: Pacer(rate) for name in ("refresh", "import", "describe")}
        self.details: dict[str, dict[str, Any]] = {}
        self.last_described: dict[str, float] = {}
        self.shown: dict[Any, set[tuple[str, ...]]] = {}

    def post(self, kind: str, path: str, body: dict[str, Any], counts: Counter[str]) -> Any:
        """One request under the path's pace; a 429 waits Retry-After and tries once more."""
        for _attempt in range(2):
            self.pacers[kind].wait()
            answer = self.session.post(self.endpoint + path, json=body, timeout=TIMEOUT_SECONDS)
            counts[path.removeprefix(API)] += 1
            outcome = "rate_limited" if answer.status_code == 429 else "success"
            REQUESTS.labels(CLUSTER, path.removeprefix(API), outcome).inc()
            if answer.status_code == 429:
                time.sleep(float(answer.headers.get("Retry-After") or 1))
                continue
            answer.raise_for_status()
            envelope = answer.json()
            if envelope.get("code") not in (0, 200):
                raise RuntimeError(f"{path}: code {envelope.get('code')}")
            return envelope.get("data")
        raise RuntimeError(f"{path}: rate limited twice")

    def cycle(self, deadline: float) -> tuple[Round, float]:
        current = Round()
        workers = [
            threading.Thread(target=self._list_refreshes, args=(current,)),
            threading.Thread(target=self._list_imports, args=(current,)),
            threading.Thread(target=self._describe, args=(current, deadline)),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        publish_started = time.monotonic()
        self.publish(current)
        return current, time.monotonic() - publish_started

    def _list_refreshes(self, current: Round) -> None:
        for database in self.databases:
            counts: Counter[str] = Counter()
            try:
                data = self.post(
                    "refresh", API + "external_collection/list", {"dbName": database}, counts
                )
                records = list(data.get("records") or [])
            except (requests.RequestException, RuntimeError, ValueError):
                records = None
            with current.lock:
                current.requests.update(counts)
                if records is not None:
                    current.refreshes[database] = records

    def _list_imports(self, current: Round) -> None:
        for database in self.databases:
            counts: Counter[str] = Counter()
            records: list[dict[str, Any]] | None = []
            body: dict[str, Any] = {"dbName": database}
            try:
                while True:
                    data = self.post("import", API + "import/list", body, counts)
                    assert records is not None
                    records.extend(data.get("records") or [])
                    if "count" not in data or len(records) >= int(data["count"]):
                        break
                    body = {
                        **body,
                        "pageSize": int(data["pageSize"]),
                        "currentPage": int(data.get("currentPage") or 1) + 1,
                    }
            except (requests.RequestException, RuntimeError, ValueError):
                records = None
            with current.lock:
                current.requests.update(counts)
                if records is not None:
                    current.imports[database] = records
                    current.due += [
                        (database, str(record["jobId"]))
                        for record in records
                        if record.get("state") not in FINISHED
                    ]
                current.lists_done += 1

    def _describe(self, current: Round, deadline: float) -> None:
        """The running imports as their lists arrive, the longest undescribed first."""
        while time.monotonic() < deadline:
            with current.lock:
                if not current.due:
                    if current.lists_done == len(self.databases):
                        return
                    chosen = None
                else:
                    chosen = min(
                        current.due, key=lambda item: self.last_described.get(item[1], -math.inf)
                    )
                    current.due.remove(chosen)
            if chosen is None:
                time.sleep(0.01)
                continue
            counts: Counter[str] = Counter()
            try:
                data = self.post("describe", API + "import/describe", {"jobId": chosen[1]}, counts)
                self.details[chosen[1]] = data
            except (requests.RequestException, RuntimeError, ValueError):
                pass
            self.last_described[chosen[1]] = time.monotonic()
            with current.lock:
                current.requests.update(counts)

    def publish(self, current: Round) -> None:
        """Set every gauge of this round and remove those of jobs and collections gone."""
        shown: dict[Any, set[tuple[str, ...]]] = {}

        def show(gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
            gauge.labels(*labels).set(value)
            shown.setdefault(gauge, set()).add(labels)

        for database in self.databases:
            for kind, listed in (("refresh", current.refreshes), ("import", current.imports)):
                show(TARGET_UP, (CLUSTER, database, kind), 1.0 if database in listed else 0.0)
            for record in _tracked(current.refreshes.get(database, []), _started):
                job = (CLUSTER, database, record["collectionName"], str(record["jobId"]))
                for state in REFRESH_STATES:
                    show(REFRESH_STATE, (*job, state), 1.0 if record["state"] == state else 0.0)
                show(REFRESH_PROGRESS, job, float(record.get("progress") or 0) / 100)
            for record in _tracked(current.imports.get(database, []), _job_number):
                job = (CLUSTER, database, record["collectionName"], str(record["jobId"]))
                for state in IMPORT_STATES:
                    show(IMPORT_STATE, (*job, state), 1.0 if record["state"] == state else 0.0)
                show(IMPORT_PROGRESS, job, float(record.get("progress") or 0) / 100)
                details = self.details.get(job[3])
                if details is not None:
                    show(IMPORTED_ROWS, job, float(details.get("importedRows") or 0))
                    show(TOTAL_ROWS, job, float(details.get("totalRows") or 0))
            for gauge, listed in (
                (REFRESH_JOBS, current.refreshes),
                (IMPORT_JOBS, current.imports),
            ):
                counts = Counter(
                    (record["collectionName"], record["state"])
                    for record in listed.get(database, [])
                )
                for (collection, state), count in counts.items():
                    show(gauge, (CLUSTER, database, collection, state), float(count))
        for gauge, before in self.shown.items():
            for labels in before - shown.get(gauge, set()):
                gauge.remove(*labels)
        self.shown = shown
        listed_imports = {
            str(record["jobId"]) for records in current.imports.values() for record in records
        }
        for job_id in [job_id for job_id in self.details if job_id not in listed_imports]:
            del self.details[job_id]
        CYCLES.inc()


def _started(record: dict[str, Any]) -> float:
    return float(record.get("startTime") or 0)


def _job_number(record: dict[str, Any]) -> float:
    text = str(record["jobId"])
    return float(text) if text.isdigit() else 0.0


def _tracked(
    records: Iterable[dict[str, Any]], newest: Callable[[dict[str, Any]], float]
) -> list[dict[str, Any]]:
    """Unfinished jobs, and the newest finished job of each collection."""
    unfinished = []
    newest_finished: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("state") not in FINISHED:
            unfinished.append(record)
            continue
        seen = newest_finished.get(record["collectionName"])
        if seen is None or newest(record) > newest(seen):
            newest_finished[record["collectionName"]] = record
    return unfinished + list(newest_finished.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--databases", type=int, required=True)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--requests-per-second", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    stop = stop_on_signals()
    server, _thread = start_http_server(args.port, addr="127.0.0.1")
    print(f"{READY_PREFIX}127.0.0.1:{server.server_address[1]}", flush=True)
    loop = PlainLoop(
        args.endpoint, args.token, list(database_names(args.databases)), args.requests_per_second
    )
    next_start = time.monotonic()
    publish_seconds = 0.0
    while not stop.is_set():
        started = time.monotonic()
        margin = MARGIN_SECONDS + 1.5 * publish_seconds
        current, publish_seconds = loop.cycle(started + args.interval - margin)
        poll_seconds = time.monotonic() - started - publish_seconds
        line = {
            "event": "cycle.finished",
            "ms": round(poll_seconds * 1000),
            "publish_ms": round(publish_seconds * 1000),
            "requests": sum(current.requests.values()),
            "by_api": dict(current.requests),
            "targets": len(current.refreshes) + len(current.imports),
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        print(json.dumps(line), file=sys.stderr, flush=True)
        next_start += args.interval
        now = time.monotonic()
        next_start = max(next_start, now)  # an overrun starts the next cycle at once
        if stop.wait(next_start - now):
            break


if __name__ == "__main__":
    main()
