"""The simulated upstream of a benchmark, in a process of its own.

Run in its own process so that the upstream's JSON rendering never competes with the exporter
(or the benchmark's client) for one interpreter lock. It builds a world, starts ``--running``
refreshes per external collection that never finish (``outcome="hang"``), prints one line::

    ready http://127.0.0.1:40123 jobs=100000 build_s=2.31

and serves until SIGTERM or SIGINT.

    python -m benchmarks.upstream --databases 50 --collections 20 --running 100 --tokens 1
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler
from types import FrameType
from typing import Any

from exporter.simulator import Simulator, SimulatorOptions

READY_PREFIX = "ready "


class JsonAnswers(BaseHTTPRequestHandler):
    """The handler of a benchmark's fake upstream: JSON answers sent as a Go server (Milvus)
    sends them, Nagle's algorithm off and the head and a small body in one write. With Python's
    defaults (Nagle on, head and body unbuffered) every answer waited 40 ms for the client's
    delayed ACK, and both ends spent CPU on the extra wake-ups. Nothing is logged."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # flushed after each answer (``handle_one_request``)

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def database_names(count: int) -> tuple[str, ...]:
    """``db000``, ``db001``, ...: the names every benchmark process agrees on."""
    return tuple(f"db{index:03d}" for index in range(count))


def token_names(count: int) -> tuple[str, ...]:
    """One API key per simulated user: each has its own rate-limit window upstream."""
    return tuple(f"bench-token-{index:02d}" for index in range(count))


def build_simulator(
    *,
    databases: int,
    collections: int,
    running: int,
    tokens: int = 1,
    history: int = 0,
    imports: int = 0,
    latency: float = 0.0,
    requests_per_second: int | None = None,
) -> tuple[Simulator, int]:
    """A world of ``databases x collections`` external collections with ``running`` hung
    refreshes each (plus ``history`` finished ones and ``imports`` imports per database).

    Returns the simulator and the number of refresh jobs it lists.
    """
    simulator = Simulator(
        SimulatorOptions(
            seed=1,
            tokens=token_names(tokens),
            databases=database_names(databases),
            collections_per_database=collections,
            refresh_jobs_per_collection=history,
            import_jobs_per_database=imports,
            latency_seconds=latency,
            requests_per_second=requests_per_second,
            auto_refresh=False,
            hang_probability=0.0,
        )
    )
    for database, content in simulator.databases().items():
        for collection in content["externalCollections"]:
            for _ in range(running):
                simulator.start_refresh(database, collection, outcome="hang")
    return simulator, databases * collections * (running + history)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a benchmark server process stops cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--collections", type=int, default=20, help="per database")
    parser.add_argument(
        "--running", type=int, default=100, help="hung refreshes per external collection"
    )
    parser.add_argument("--history", type=int, default=0, help="finished refreshes per collection")
    parser.add_argument("--imports", type=int, default=0, help="import jobs per database")
    parser.add_argument("--tokens", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--requests-per-second", type=int, default=0, help="upstream limit per token; 0 is off"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    stop = stop_on_signals()
    started = time.monotonic()
    simulator, jobs = build_simulator(
        databases=args.databases,
        collections=args.collections,
        running=args.running,
        tokens=args.tokens,
        history=args.history,
        imports=args.imports,
        latency=args.latency,
        requests_per_second=args.requests_per_second or None,
    )
    build_seconds = time.monotonic() - started
    with simulator.serve("127.0.0.1", args.port) as server:
        print(f"{READY_PREFIX}{server.url} jobs={jobs} build_s={build_seconds:.2f}", flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
