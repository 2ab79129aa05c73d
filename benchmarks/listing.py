"""Listed, not tracked: memory and /metrics of one target whose server lists 200,000 or 500,000
imports, at the default limits.

What a server lists is not up to the exporter; what it keeps and exports is. Each point is a
fresh upstream and exporter process. The upstream (``--serve``, a process of its own) answers
one database's ``import/list`` with pages rendered once at start, in the Zilliz Cloud paged
shape, and every ``import/describe`` with a small running job. The exporter runs with the
default limits and ``poll_interval: 10s``; after its first cycle and two more, the figures are
read: samples and bytes of a plain /metrics, VmRSS and VmHWM (the peak) of the exporter.

Three shapes: running imports each in a collection of its own (the worst case for
per-collection series), running imports over 100 collections (the worst case for per-job
series: every job is a candidate), and completed imports over 100 collections (a busy but
ordinary database).

    python -m benchmarks.listing [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import report
from .harness import LOOPBACK, Exporter, Process, free_port
from .upstream import READY_PREFIX, JsonAnswers, stop_on_signals

PAGES = 3
POLL_INTERVAL_SECONDS = 10
CYCLES = 3
MANIFEST_LIMIT_MB = 256 * 1024 * 1024 / 1e6
"""The memory limit of the shipped Kubernetes manifest (256 Mi), in MB (10^6 bytes)."""
COLLECTIONS = 100


@dataclass(frozen=True)
class Shape:
    """``imports`` jobs in ``state``, over ``collections`` collections (0: one each)."""

    imports: int
    state: str
    collections: int

    @property
    def name(self) -> str:
        spread = (
            "own collection each" if not self.collections else f"{self.collections} collections"
        )
        return f"{self.state}, {spread}"

    @property
    def argument(self) -> str:
        return f"{self.state}:{self.collections}"

    def record(self, index: int) -> dict[str, Any]:
        collection = index % self.collections if self.collections else index
        return {
            "jobId": str(448_700_000_000_000_000 + index),
            "collectionName": f"c{collection:07d}",
            "state": self.state,
            "progress": 100 if self.state == "Completed" else 50,
        }


SHAPES = (("Importing", 0), ("Importing", COLLECTIONS), ("Completed", COLLECTIONS))


def render_pages(shape: Shape, pages: int = PAGES) -> list[bytes]:
    """The list answers, one per page (``currentPage`` 1..pages), each ``{"code": 0, ...}``."""
    page_size = -(-shape.imports // pages)
    rendered = []
    for page in range(pages):
        first = page * page_size
        records = [
            shape.record(index) for index in range(first, min(first + page_size, shape.imports))
        ]
        data = {
            "records": records,
            "count": shape.imports,
            "currentPage": page + 1,
            "pageSize": page_size,
        }
        rendered.append(json.dumps({"code": 0, "data": data}, separators=(",", ":")).encode())
    return rendered


DESCRIBED = json.dumps(
    {
        "code": 0,
        "data": {
            "jobId": "0",
            "collectionName": "c",
            "state": "Importing",
            "progress": 50,
            "importedRows": 10,
            "totalRows": 20,
            "fileSize": 1024,
            "createTime": "2026-01-01T00:00:00Z",
            "completeTime": "",
            "details": [],
        },
    }
).encode()
EMPTY = json.dumps({"code": 0, "data": {"records": []}}).encode()


def serve(shape: Shape, port: int) -> None:
    """The upstream process: print ``ready URL``, answer until SIGTERM."""
    pages = render_pages(shape)

    class Handler(JsonAnswers):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            if self.path.endswith("/import/list"):
                page = int(body.get("currentPage") or 1) if isinstance(body, dict) else 1
                answer = pages[min(max(page, 1), len(pages)) - 1]
            elif self.path.endswith("/import/describe"):
                answer = DESCRIBED
            else:
                answer = EMPTY
            self.send_json(200, answer)

    stop = stop_on_signals()
    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    size = sum(len(page) for page in pages)
    print(f"{READY_PREFIX}http://{LOOPBACK}:{server.server_address[1]} bytes={size}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()


@contextlib.contextmanager
def listing_upstream(shape: Shape) -> Iterator[tuple[str, int]]:
    arguments = ["--serve", f"--shape={shape.argument}", f"--imports={shape.imports}"]
    with Process("benchmarks.listing", arguments, "listing-upstream") as process:
        url, size = process.read_ready_line().split()
        yield url, int(size.removeprefix("bytes="))


def config_text(endpoint: str, port: int) -> str:
    """Defaults for every limit; only the address, the interval and the cluster are set."""
    return (
        f'listen_address: "{LOOPBACK}:{port}"\n'
        f"poll_interval: {POLL_INTERVAL_SECONDS}s\n"
        "clusters:\n"
        "  - name: listing\n"
        f"    endpoint: {endpoint}\n"
        "    token: listing-benchmark-token\n"
        "    databases: [default]\n"
        "    jobs: [import]\n"
    )


@dataclass
class Figures:
    shape: str
    listed_imports: int
    listed_bytes: int
    cycles: int
    target_up: bool
    target_reason: str
    samples: int
    metrics_bytes: int
    rss_mb: float
    peak_rss_mb: float
    seconds: float


def measure(shape: Shape, cycles: int = CYCLES) -> Figures:
    started = time.monotonic()
    with listing_upstream(shape) as (endpoint, size):
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-listing-") as directory:
            config = Path(directory) / "config.yaml"
            config.write_text(config_text(endpoint, port))
            config.chmod(0o600)
            arguments = ["serve", f"--config={config}", "--log-level=info", "--log-format=json"]
            with Process("exporter", arguments, "exporter") as process:
                running = Exporter(process, port)
                running.wait_ready()
                deadline = time.monotonic() + cycles * POLL_INTERVAL_SECONDS * 6 + 60
                while len(running.finished_cycles()) < cycles:
                    process.check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"fewer than {cycles} cycles:\n{process.output()[-3000:]}"
                        )
                    time.sleep(0.2)
                page = bytes(running.client.get(port, "/metrics").body)
                memory = running.memory()
    up, reason = _target(page)
    return Figures(
        shape=shape.name,
        listed_imports=shape.imports,
        listed_bytes=size,
        cycles=cycles,
        target_up=up,
        target_reason=reason,
        samples=sum(1 for line in page.splitlines() if line and not line.startswith(b"#")),
        metrics_bytes=len(page),
        rss_mb=round(memory.rss_mb, 1),
        peak_rss_mb=round(memory.peak_mb, 1),
        seconds=round(time.monotonic() - started, 1),
    )


def _target(page: bytes) -> tuple[bool, str]:
    up = (
        b'milvus_jobs_exporter_target_up{milvus_cluster="listing",database="default",kind="import"} 1.0'
        in page
    )
    reason = ""
    for line in page.splitlines():
        if line.startswith(b"milvus_jobs_exporter_target_error_info{"):
            reason = line.split(b'reason="', 1)[1].split(b'"', 1)[0].decode()
    return up, reason


SIZES = (200_000, 500_000)
QUICK_SIZES = (5_000,)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.listing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_common_arguments(parser)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="Importing:0", help=argparse.SUPPRESS)
    parser.add_argument("--imports", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        state, collections = args.shape.split(":")
        serve(Shape(args.imports, state, int(collections)), 0)
        return {}
    print("6. Listed imports: one target, default limits, pages of a third each")
    points = [
        measure(Shape(size, state, collections), 1 if args.quick else CYCLES)
        for size in (QUICK_SIZES if args.quick else SIZES)
        for state, collections in SHAPES
    ]
    report.table(
        ["listed imports", "listed JSON", "target", "samples", "/metrics", "RSS", "peak RSS"],
        [
            [
                f"{point.listed_imports:,} ({point.shape})",
                report.megabytes(point.listed_bytes),
                "up" if point.target_up else f"down ({point.target_reason})",
                f"{point.samples:,}",
                report.megabytes(point.metrics_bytes),
                f"{point.rss_mb:.0f} MB",
                f"{point.peak_rss_mb:.0f} MB",
            ]
            for point in points
        ],
    )
    verdicts = report.verdicts(
        [
            (
                f"peak RSS at {point.listed_imports:,} {point.shape}",
                point.peak_rss_mb,
                "<",
                MANIFEST_LIMIT_MB,
                "MB",
            )
            for point in points
        ],
        judged=not args.quick,
    )
    result = {"points": [asdict(point) for point in points], "verdicts": verdicts}
    path = report.save(args, "listing", result)
    if path is not None:
        print(f"   results in {path}")
    return result


if __name__ == "__main__":
    main()
