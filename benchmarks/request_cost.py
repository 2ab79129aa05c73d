"""CPU per request of the exporter's client against plain ``requests``, on a kept connection.

At fleet scale most of a poll round is small requests: about 330 a round at 50 databases, 232
of them ``import/describe`` follow-ups of a few hundred bytes each, so what one request costs
the exporter's CPU, before any JSON, is a large part of the cycle. The upstream here is a
process of its own on 127.0.0.1 (``--serve``) answering ``import/describe`` with a describe-sized
answer and ``external_collection/list`` with a list-sized one (about 200 KB), so every CPU
second counted (``time.process_time`` of this process) is the client's. Each way of asking is
run in interleaved rounds and its median round kept:

- the exporter: ``MilvusClient.call`` through ``transport.new_session`` (urllib3's pools with the
  watched connections, a ``Watchdog`` holding every request to its deadline), envelope checked;
- plain ``requests``: ``Session.post(...).json()``, envelope checked, the obvious alternative;
- ``http.client`` on one kept connection, the floor of a Python client (no deadline, no pool,
  no proxy, no decoding): what is left to win by going lower than urllib3.

    python -m benchmarks.request_cost [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import requests

from exporter.guards.watchdog import Watchdog
from exporter.upstream.client import API_PREFIX, IMPORT_DESCRIBE, REFRESH_LIST, MilvusClient
from exporter.upstream.transport import new_session

from . import report
from .harness import LOOPBACK, Process
from .upstream import READY_PREFIX, JsonAnswers, stop_on_signals

TOKEN = "bench-token"
DESCRIBED = json.dumps(
    {
        "code": 0,
        "data": {
            "jobId": "448700000000000001",
            "collectionName": "books",
            "state": "Importing",
            "progress": 50,
            "importedRows": 410000,
            "totalRows": 1000000,
            "fileSize": 73400320,
            "createTime": "2026-11-23T10:50:25Z",
            "completeTime": "",
            "details": [
                {
                    "fileName": "[s3://bulk-import/books/part-00000.parquet]",
                    "fileSize": 36700160,
                    "progress": 82,
                    "state": "Importing",
                    "importedRows": 410000,
                    "totalRows": 500000,
                }
            ],
        },
    }
).encode()
LIST_RECORDS = 660
LISTED = json.dumps(
    {
        "code": 0,
        "data": {
            "records": [
                {
                    "jobId": 449503829274500000 + index,
                    "collectionName": f"ext_collection_{index // 10:04d}",
                    "state": "RefreshCompleted",
                    "progress": 100,
                    "externalSource": f"s3://lake.storage.svc:9000/external/{index // 10:04d}/",
                    "externalSpec": '{"format":"parquet","credential":"***"}',
                    "startTime": 1795427425000 + index,
                    "endTime": 1795427431000 + index,
                }
                for index in range(LIST_RECORDS)
            ]
        },
    }
).encode()
ANSWERS = {API_PREFIX + IMPORT_DESCRIBE: DESCRIBED, API_PREFIX + REFRESH_LIST: LISTED}


def serve() -> None:
    """The upstream process: print ``ready URL``, answer until SIGTERM."""

    class Handler(JsonAnswers):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_json(200, ANSWERS.get(self.path, b'{"code": 0, "data": {}}'))

    stop = stop_on_signals()
    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{READY_PREFIX}http://{LOOPBACK}:{server.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()


@contextlib.contextmanager
def upstream() -> Iterator[str]:
    with Process("benchmarks.request_cost", ["--serve"], "request-cost-upstream") as process:
        yield process.read_ready_line()


def checked(payload: Any) -> Any:
    """The envelope check every way of asking does: ``code`` 0 or the request failed."""
    if not isinstance(payload, dict) or payload.get("code") != 0:
        raise RuntimeError(f"unexpected answer: {str(payload)[:200]}")
    return payload["data"]


Ask = Callable[[str, bytes], Any]
"""One request: POST the body to the API path, return the answer's ``data``."""


def exporter_client(endpoint: str, watchdog: Watchdog) -> Ask:
    client = MilvusClient(endpoint, TOKEN, new_session(4), 10.0, watchdog=watchdog)
    apis = {API_PREFIX + IMPORT_DESCRIBE: IMPORT_DESCRIBE, API_PREFIX + REFRESH_LIST: REFRESH_LIST}

    def ask(path: str, body: bytes) -> Any:
        return client.call(apis[path], json.loads(body))

    return ask


def plain_requests(endpoint: str) -> Ask:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def ask(path: str, body: bytes) -> Any:
        answer = session.post(
            endpoint + path,
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=(5.0, 10.0),
        )
        return checked(answer.json())

    return ask


def bare_http_client(endpoint: str) -> Ask:
    host, port = endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10.0)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def ask(path: str, body: bytes) -> Any:
        connection.request("POST", path, body=body, headers=headers)
        return checked(json.loads(connection.getresponse().read()))

    return ask


@dataclass(frozen=True)
class Row:
    """CPU milliseconds per request of one way of asking, for each answer size."""

    way: str
    describe_ms: float
    list_ms: float


def cpu_per_request(ask: Ask, path: str, count: int) -> float:
    body = b'{"jobId": "448700000000000001"}' if path.endswith("describe") else b'{"dbName": "d"}'
    started = time.process_time()
    for _ in range(count):
        ask(path, body)
    return (time.process_time() - started) / count * 1000


def measure(ways: dict[str, Ask], rounds: int, describes: int, lists: int) -> list[Row]:
    """Every way, round after round in turn (so a busy moment of the machine falls on all of
    them alike), after a warm-up; the median round of each."""
    describe_path, list_path = API_PREFIX + IMPORT_DESCRIBE, API_PREFIX + REFRESH_LIST
    samples: dict[str, tuple[list[float], list[float]]] = {way: ([], []) for way in ways}
    for ask in ways.values():
        cpu_per_request(ask, describe_path, 20)
        cpu_per_request(ask, list_path, 3)
    for _ in range(rounds):
        for way, ask in ways.items():
            samples[way][0].append(cpu_per_request(ask, describe_path, describes))
            samples[way][1].append(cpu_per_request(ask, list_path, lists))
    return [
        Row(way, statistics.median(small), statistics.median(large))
        for way, (small, large) in samples.items()
    ]


EXPORTER = "exporter MilvusClient"
REQUESTS = "requests.Session.post"
FLOOR = "http.client, one connection (floor)"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.request_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_common_arguments(parser)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return {}
    rounds, describes, lists = (3, 100, 10) if args.quick else (7, 1000, 60)
    print(
        f"9. Request cost: CPU per request on a kept connection to 127.0.0.1, describe answer "
        f"{len(DESCRIBED)} B, list answer {len(LISTED) // 1000} KB ({LIST_RECORDS} records)"
    )
    watchdog = Watchdog(name="request-cost-watchdog")
    try:
        with upstream() as endpoint:
            ways = {
                EXPORTER: exporter_client(endpoint, watchdog),
                REQUESTS: plain_requests(endpoint),
                FLOOR: bare_http_client(endpoint),
            }
            rows = measure(ways, rounds, describes, lists)
    finally:
        watchdog.stop()
    report.table(
        ["way", "describe (CPU/request)", "200 KB list (CPU/request)"],
        [[row.way, f"{row.describe_ms:.3f} ms", f"{row.list_ms:.2f} ms"] for row in rows],
    )
    by_way = {row.way: row for row in rows}
    verdicts = report.verdicts(
        [
            (
                "exporter CPU per describe against requests.Session.post",
                by_way[EXPORTER].describe_ms,
                "<",
                by_way[REQUESTS].describe_ms,
                "ms",
            ),
            (
                "exporter CPU per 200 KB list against requests.Session.post",
                by_way[EXPORTER].list_ms,
                "<=",
                by_way[REQUESTS].list_ms,
                "ms",
            ),
        ],
        judged=not args.quick,
    )
    result = {
        "describe_bytes": len(DESCRIBED),
        "list_bytes": len(LISTED),
        "rows": [asdict(row) for row in rows],
        "verdicts": verdicts,
    }
    path = report.save(args, "request_cost", result)
    if path is not None:
        print(f"   results in {path}")
    return result


if __name__ == "__main__":
    main()
