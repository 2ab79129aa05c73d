"""The lean fake upstream of the fleet benchmark: a whole fleet's answers, rendered once.

A process of its own (``python -m benchmarks.fleet_upstream``) so that its work never competes
with the exporter for one interpreter lock. Each database holds ``collections`` external
collections with ``history`` finished refreshes each, and ``imports`` imports over as many plain
collections, ``running_imports`` of them importing for ever (their progress moves with the
clock, so every list answer of a round differs a little from the last one, as a live server's
does). Everything else is finished and never changes.

What it answers, in the shapes of Zilliz Cloud's pages (``/work/shared/api``):

- ``jobs/external_collection/list``: every refresh of a database, newest first, one answer
  rendered at start;
- ``jobs/import/list``: the paged control-plane form (``count``, ``currentPage``, ``pageSize``),
  ``--page-size`` records a page unless the request names another size (the exporter's first
  request names none); finished records rendered at start, running ones per request;
- ``jobs/import/describe``: rows, sizes, RFC 3339 times and one file, rendered per request;
- ``collections/list`` and ``databases/list``: the names.

Every path is limited to ``--requests-per-second`` per (token, path), as the simulator's zilliz
flavour does: a request over it gets HTTP 429 with ``Retry-After: 1`` and code 1807. Two control
routes, never limited: ``GET /_fleet/stats`` (requests, 429s and describes so far) and
``POST /_fleet/limit`` with ``{"requests_per_second": N}`` (0 turns the limit off: the
benchmark's warm-up describes every finished import once without waiting 20 per second).

Prints one line when listening::

    ready http://127.0.0.1:40123 refresh=100000 imports=50000 build_s=1.20
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exporter.simulator.ratelimit import SlidingWindowLimiter

from .upstream import READY_PREFIX, JsonAnswers, database_names, stop_on_signals

TOKEN = "fleet-benchmark-token"
REFRESH_LIST = "/v2/vectordb/jobs/external_collection/list"
IMPORT_LIST = "/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE = "/v2/vectordb/jobs/import/describe"
COLLECTIONS_LIST = "/v2/vectordb/collections/list"
DATABASES_LIST = "/v2/vectordb/databases/list"
API_PATHS = (REFRESH_LIST, IMPORT_LIST, IMPORT_DESCRIBE, COLLECTIONS_LIST, DATABASES_LIST)
STATS_PATH = "/_fleet/stats"
LIMIT_PATH = "/_fleet/limit"

REFRESH_ID_BASE = 449_503_829_274_000_000
IMPORT_ID_BASE = 448_761_313_698_000_000
HOUR = 3600.0
REFRESH_FAILS_EVERY = 7
"""Every seventh refresh of the history failed; so did the newest of every seventh collection."""
IMPORT_FAILS_EVERY = 25
IMPORT_FAILURE = "failed to read file: no such file or directory"
REFRESH_FAILURE = "schema mismatch: field 'embedding' has dim 768, collection expects 1024"
SPEC = '{"format":"parquet","credential":"***"}'


@dataclass(frozen=True)
class Fleet:
    """The fleet of issue 23 by default: per database, 200 external collections x 10 refreshes
    (2,000 refresh records) and 1,000 imports, 8 of them running, over 200 plain collections."""

    databases: int = 50
    collections: int = 200
    history: int = 10
    imports: int = 1000
    running_imports: int = 8
    page_size: int = 1000
    requests_per_second: int = 20

    @property
    def refresh_records(self) -> int:
        return self.databases * self.collections * self.history

    @property
    def import_records(self) -> int:
        return self.databases * self.imports

    @property
    def running(self) -> int:
        return self.databases * self.running_imports

    def arguments(self) -> list[str]:
        return [
            f"--databases={self.databases}",
            f"--collections={self.collections}",
            f"--history={self.history}",
            f"--imports={self.imports}",
            f"--running-imports={self.running_imports}",
            f"--page-size={self.page_size}",
            f"--requests-per-second={self.requests_per_second}",
        ]

    def is_running(self, index: int) -> bool:
        """Which imports of a database never finish: spread evenly through the list."""
        if not self.running_imports:
            return False
        spacing = max(1, self.imports // self.running_imports)
        return index % spacing == 0 and index // spacing < self.running_imports


def external_collection(index: int) -> str:
    return f"ext_{index:04d}"


def import_collection(index: int) -> str:
    return f"plain_{index:04d}"


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FleetAnswers:
    """Every answer of the fleet: rendered at start where it never changes, per request where
    it does (the running imports)."""

    def __init__(self, fleet: Fleet, now: float) -> None:
        self.fleet = fleet
        self.started = now
        self.names = database_names(fleet.databases)
        self._numbers = {name: number for number, name in enumerate(self.names)}
        self._refresh_lists: dict[str, bytes] = {}
        self._import_fragments: dict[str, list[bytes | None]] = {}
        self.imports: dict[str, tuple[str, int]] = {}
        """Import job id -> (database, index in its list)."""
        self._collections: dict[str, bytes] = {}
        for number, database in enumerate(self.names):
            self._refresh_lists[database] = self._render_refreshes(number, now)
            self._import_fragments[database] = self._render_imports(number, database)
            names = [external_collection(i) for i in range(fleet.collections)]
            names += [import_collection(i) for i in range(fleet.collections)]
            self._collections[database] = _compact({"code": 0, "data": names})
        self.databases_answer = _compact({"code": 0, "data": list(self.names)})

    def _render_refreshes(self, number: int, now: float) -> bytes:
        """Newest first, as the server sorts them: every collection's newest, then the older."""
        fleet = self.fleet
        records = []
        for age in range(fleet.history):
            for collection in range(fleet.collections):
                sequence = (number * fleet.collections + collection) * fleet.history + age
                failed = (collection + age) % REFRESH_FAILS_EVERY == 0
                started = now - (age + 1) * 2 * HOUR - collection
                record: dict[str, object] = {
                    "jobId": REFRESH_ID_BASE + sequence,
                    "collectionName": external_collection(collection),
                    "state": "RefreshFailed" if failed else "RefreshCompleted",
                    "progress": 37 if failed else 100,
                    "externalSource": json.dumps(
                        {"type": "volume", "path": f"volume://lake/{number}/{collection}"},
                        separators=(",", ":"),
                    ),
                    "externalSpec": SPEC,
                    "startTime": round(started * 1000),
                    "endTime": round((started + 300 + collection % 60) * 1000),
                }
                if failed:
                    record["reason"] = REFRESH_FAILURE
                records.append(record)
        return _compact({"code": 0, "data": {"records": records}})

    def _import_id(self, number: int, index: int) -> str:
        return str(IMPORT_ID_BASE + number * self.fleet.imports + index)

    def _render_imports(self, number: int, database: str) -> list[bytes | None]:
        """The finished list records as JSON fragments; None where a running one goes."""
        fragments: list[bytes | None] = []
        for index in range(self.fleet.imports):
            job_id = self._import_id(number, index)
            self.imports[job_id] = (database, index)
            if self.fleet.is_running(index):
                fragments.append(None)
                continue
            record = self._import_record(number, index, describe=False)
            fragments.append(_compact(record))
        return fragments

    def _progress(self, index: int, now: float) -> int:
        """A running import's progress: 10..98, one step every 15 seconds."""
        return 10 + (index + int((now - self.started) / 15)) % 89

    def _import_record(
        self, number: int, index: int, describe: bool, now: float = 0.0
    ) -> dict[str, object]:
        running = self.fleet.is_running(index)
        failed = not running and index % IMPORT_FAILS_EVERY == 1
        state = "Importing" if running else "Failed" if failed else "Completed"
        progress = self._progress(index, now) if running else 0 if failed else 100
        record: dict[str, object] = {
            "jobId": self._import_id(number, index),
            "collectionName": import_collection(index % self.fleet.collections),
            "state": state,
            "progress": progress,
        }
        if failed:
            record["reason"] = IMPORT_FAILURE
        if not describe:
            return record
        total = 1_000_000 + index * 1000
        rows = 0 if failed else total if not running else total * (progress - 10) // 89
        created = self.started - 3 * HOUR + index * 10
        completed = "" if running or failed else _rfc3339(created + 600)
        size = 64_000_000 + index
        record.update(
            {
                "importedRows": rows,
                "totalRows": 0 if failed else total,
                "fileSize": size,
                "createTime": _rfc3339(created),
                "completeTime": completed,
                "details": [
                    {
                        "fileName": f"s3://bulk/{record['collectionName']}/part-{index:05d}.parquet",
                        "fileSize": size,
                        "progress": progress,
                        "completeTime": completed,
                        "state": state,
                        "importedRows": rows,
                        "totalRows": total,
                        **({"reason": IMPORT_FAILURE} if failed else {}),
                    }
                ],
            }
        )
        return record

    def refresh_list(self, database: str) -> bytes | None:
        return self._refresh_lists.get(database)

    def import_page(
        self, database: str, page: int, size: int | None, now: float
    ) -> tuple[bytes, int] | None:
        """(answer, records on it) of page ``page`` (from 1) of ``size`` records."""
        fragments = self._import_fragments.get(database)
        if fragments is None:
            return None
        page_size = size or self.fleet.page_size
        first = (max(page, 1) - 1) * page_size
        number = self._numbers[database]
        parts = [
            fragment
            if fragment is not None
            else _compact(self._import_record(number, index, describe=False, now=now))
            for index, fragment in enumerate(fragments[first : first + page_size], start=first)
        ]
        head = b'{"code":0,"data":{"count":%d,"currentPage":%d,"pageSize":%d,"records":[' % (
            len(fragments),
            max(page, 1),
            page_size,
        )
        return head + b",".join(parts) + b"]}}", len(parts)

    def describe(self, job_id: str, now: float) -> tuple[bytes, bool] | None:
        """(answer, whether the job is finished), or None for an unknown id."""
        found = self.imports.get(job_id)
        if found is None:
            return None
        database, index = found
        record = self._import_record(self._numbers[database], index, describe=True, now=now)
        return _compact({"code": 0, "data": record}), record["state"] != "Importing"

    def collections(self, database: str) -> bytes | None:
        return self._collections.get(database)


class Counters:
    """What the fake was asked, for ``GET /_fleet/stats`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.described_finished: set[str] = set()
        self.running_describes = 0

    def count(self, path: str, limited: bool) -> None:
        with self._lock:
            self.requests[path] += 1
            if limited:
                self.rate_limited[path] += 1

    def described(self, job_id: str, finished: bool) -> None:
        with self._lock:
            if finished:
                self.described_finished.add(job_id)
            else:
                self.running_describes += 1

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "rate_limited": dict(self.rate_limited),
                "finished_described": len(self.described_finished),
                "running_describes": self.running_describes,
            }


def _error(code: int, message: str) -> bytes:
    return _compact({"code": code, "message": message})


def make_handler(
    answers: FleetAnswers, counters: Counters, limiter: SlidingWindowLimiter
) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonAnswers):
        def do_GET(self) -> None:
            if self.path == STATS_PATH:
                self._send(200, _compact(counters.as_json()))
            else:
                self._send(404, _error(404, f"path not found: {self.path}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if self.path == LIMIT_PATH and isinstance(body, dict):
                limiter.limit = int(body.get("requests_per_second") or 0)
                self._send(200, _compact({"requests_per_second": limiter.limit}))
                return
            if self.path not in API_PATHS:
                self._send(404, _error(404, f"path not found: {self.path}"))
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, _error(1800, "user hasn't authenticated"))
                return
            if not limiter.admit(TOKEN, self.path, time.monotonic()):
                counters.count(self.path, limited=True)
                message = f"rate limit exceeded[rate={limiter.limit}]"
                self._send(429, _error(1807, message), retry_after=True)
                return
            counters.count(self.path, limited=False)
            if not isinstance(body, dict):
                self._send(200, _error(1801, "can only accept json format request"))
                return
            self._send(200, self._answer(body))

        def _answer(self, body: dict[str, Any]) -> bytes:
            database = str(body.get("dbName") or "default")
            now = time.time()
            answer: bytes | None
            if self.path == IMPORT_DESCRIBE:
                job_id = str(body.get("jobId", ""))
                described = answers.describe(job_id, now)
                if described is None:
                    return _error(2100, f"import job does not exist, jobID={job_id}")
                counters.described(job_id, described[1])
                return described[0]
            if self.path == DATABASES_LIST:
                return answers.databases_answer
            if self.path == REFRESH_LIST:
                answer = answers.refresh_list(database)
            elif self.path == IMPORT_LIST:
                page = answers.import_page(
                    database,
                    int(body.get("currentPage") or 1),
                    int(body.get("pageSize") or 0) or None,
                    now,
                )
                answer = page[0] if page else None
            else:
                answer = answers.collections(database)
            if answer is None:
                return _error(800, f"database not found[database={database}]")
            return answer

        def _send(self, status: int, body: bytes, retry_after: bool = False) -> None:
            self.send_json(status, body, {"Retry-After": "1"} if retry_after else None)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Fleet()
    parser.add_argument("--databases", type=int, default=defaults.databases)
    parser.add_argument("--collections", type=int, default=defaults.collections)
    parser.add_argument("--history", type=int, default=defaults.history)
    parser.add_argument("--imports", type=int, default=defaults.imports)
    parser.add_argument("--running-imports", type=int, default=defaults.running_imports)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument(
        "--requests-per-second", type=int, default=defaults.requests_per_second, help="0 is off"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fleet = Fleet(
        databases=args.databases,
        collections=args.collections,
        history=args.history,
        imports=args.imports,
        running_imports=args.running_imports,
        page_size=args.page_size,
        requests_per_second=args.requests_per_second,
    )
    stop = stop_on_signals()
    started = time.monotonic()
    answers = FleetAnswers(fleet, time.time())
    limiter = SlidingWindowLimiter(fleet.requests_per_second or None)
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_handler(answers, Counters(), limiter)
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(
        f"{READY_PREFIX}http://127.0.0.1:{server.server_address[1]} "
        f"refresh={fleet.refresh_records} imports={fleet.import_records} "
        f"build_s={time.monotonic() - started:.2f}",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
