"""What every benchmark part needs: processes, a fast raw HTTP client, the loopback floor, memory.

The exporter, the upstream and the stock alternative each run as a process of their own, the
way they run in production, so no benchmark figure includes another component's work on the same
interpreter lock. The client is a raw socket reading into a preallocated buffer: what it costs
per byte is the floor that ``floor.py`` measures (the same bytes from a server that only sends
them), so a scrape figure is the server's own time plus that floor, never the client's parsing.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from .profiling import Profiler
from .upstream import READY_PREFIX, database_names, token_names

REPOSITORY = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
GZIP = {"Accept-Encoding": "gzip"}
START_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def median_ms(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) * 1000.0


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process, from /proc: now and at its peak (VmHWM), in MB (10^6 bytes)."""

    rss_mb: float
    peak_mb: float


def memory_of(pid: int) -> Memory:
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024 / 1e6  # /proc says kB, meaning KiB
    return Memory(values.get("VmRSS", 0.0), values.get("VmHWM", 0.0))


# -- processes ---------------------------------------------------------------------------------


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {**os.environ, **(extra or {})}
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = str(REPOSITORY) + (os.pathsep + path if path else "")
    return environment


class Process:
    """A child Python process (``python -m module args``), its stderr in a temporary file;
    ``environment`` adds to (or overrides) the benchmark's own environment variables."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        name: str,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._directory = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
        self.log_path = Path(self._directory.name) / "stderr.log"
        with open(self.log_path, "wb") as log:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPOSITORY,
                env=_environment(environment),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def read_ready_line(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """The first stdout line that starts with ``ready ``; fail with the log if it never comes."""
        found: list[str] = []

        def reader() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                if line.startswith(READY_PREFIX):
                    found.append(line[len(READY_PREFIX) :].strip())
                    return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(timeout)
        if not found:
            output = self.output()
            self.stop()
            raise RuntimeError(f"{self.name} did not become ready:\n{output}")
        return found[0]

    def output(self) -> str:
        """What the process wrote to stderr (its logs), read through a separate file handle."""
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
            )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._directory.cleanup()

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class World:
    """The upstream's shape: ``running`` hung refreshes per external collection, and so on."""

    databases: int
    collections: int = 20
    running: int = 0
    history: int = 0
    imports: int = 0
    tokens: int = 1
    latency: float = 0.0
    requests_per_second: int = 0

    @property
    def refresh_jobs(self) -> int:
        return self.databases * self.collections * (self.running + self.history)

    def arguments(self) -> list[str]:
        return [
            f"--databases={self.databases}",
            f"--collections={self.collections}",
            f"--running={self.running}",
            f"--history={self.history}",
            f"--imports={self.imports}",
            f"--tokens={self.tokens}",
            f"--latency={self.latency}",
            f"--requests-per-second={self.requests_per_second}",
        ]


@contextlib.contextmanager
def upstream(world: World) -> Iterator[str]:
    """Start ``python -m benchmarks.upstream`` for ``world``; yield its URL."""
    with Process("benchmarks.upstream", world.arguments(), "upstream") as process:
        line = process.read_ready_line()
        yield line.split()[0]


@dataclass(frozen=True)
class Deployment:
    """Which targets the exporter polls: ``clusters`` clusters (one token each) x databases x kinds."""

    clusters: int
    databases: int
    kinds: tuple[str, ...] = ("refresh",)
    max_tracked_jobs: int = 200_000
    requests_per_second: float = 20.0

    @property
    def targets(self) -> int:
        return self.clusters * self.databases * len(self.kinds)

    def config_text(self, endpoint: str, port: int, generation: int = 0) -> str:
        """The exporter's YAML config (tokens are literal: these are the simulator's keys).

        ``generation`` changes a setting the benchmark never reaches, because a reload starts a
        cycle only when the config changed."""
        databases = ", ".join(database_names(self.databases))
        kinds = ", ".join(self.kinds)
        lines = [
            f'listen_address: "{LOOPBACK}:{port}"',
            "poll_interval: 1h",  # no cycle of its own after the first: the benchmark asks for each
            "request_timeout: 30s",
            f"requests_per_second: {self.requests_per_second}",
            f"max_tracked_jobs: {self.max_tracked_jobs}",
            "max_retries: 0",
            f"max_tracked_collections: {1_000_000 + generation}",
            "clusters:",
        ]
        for index, token in enumerate(token_names(self.clusters)):
            lines += [
                f"  - name: bench-{index:02d}",
                f"    endpoint: {endpoint}",
                f"    token: {token}",
                f"    databases: [{databases}]",
                f"    jobs: [{kinds}]",
            ]
        return "\n".join(lines) + "\n"


@dataclass
class Startup:
    """Seconds from spawning the exporter to its first HTTP answer, and to the first 200 on /readyz."""

    listening_seconds: float
    ready_seconds: float


@dataclass
class Exporter:
    """A running ``python -m exporter serve``; use ``exporter()`` to start one."""

    process: Process
    port: int
    reload: Callable[[], None] = lambda: None
    client: RawHttpClient = field(default_factory=lambda: RawHttpClient())

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> Startup:
        listening: float | None = None
        deadline = self.process.started + timeout
        while time.monotonic() < deadline:
            self.process.check_alive()
            try:
                answer = self.client.get(self.port, "/readyz")
            except OSError:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            if listening is None:
                listening = now - self.process.started
            if answer.status == 200:
                return Startup(listening, now - self.process.started)
            time.sleep(0.01)
        raise RuntimeError(f"exporter not ready within {timeout:g}s:\n{self.process.output()}")

    def memory(self) -> Memory:
        return memory_of(self.process.pid)

    def finished_cycles(self) -> list[dict[str, Any]]:
        """The ``cycle.finished`` log events so far (each has ``ms``, ``targets``, ``failed``)."""
        events = []
        for line in self.process.output().splitlines():
            if '"cycle.finished"' not in line:
                continue
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def run_another_cycle(self, timeout: float = START_TIMEOUT_SECONDS) -> float:
        """Ask for a cycle now (a reload of a changed config starts one at once); return its
        wall time."""
        before = len(self.finished_cycles())
        started = time.monotonic()
        self.reload()
        while time.monotonic() < started + timeout:
            self.process.check_alive()
            if len(self.finished_cycles()) > before:
                return time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"no cycle finished within {timeout:g}s of the reload")


@contextlib.contextmanager
def exporter(deployment: Deployment, endpoint: str) -> Iterator[Exporter]:
    """Start ``python -m exporter serve`` against ``endpoint`` with a temporary config."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as directory:
        config = Path(directory) / "config.yaml"
        config.write_text(deployment.config_text(endpoint, port))
        config.chmod(0o600)
        arguments = ["serve", f"--config={config}", f"--listen={LOOPBACK}:{port}"]
        arguments += ["--log-level=info", "--log-format=json"]  # cycle.finished is info
        generations = itertools.count(1)
        with Process("exporter", arguments, "exporter") as process:

            def reload() -> None:
                config.write_text(deployment.config_text(endpoint, port, next(generations)))
                os.kill(process.pid, signal.SIGHUP)

            yield Exporter(process, port, reload)


REPEATED_CYCLES = 3


@dataclass
class ExporterFigures:
    """What one exporter run measured.

    Cycle 1 is the first poll after start. Then, once the scrapes are timed, ``repeated_cycles``
    more are asked for one after another with ``POST /-/reload`` (a reload starts a cycle at
    once, with a fresh poller): the steady state, where the old exposition is served while the
    new one is built, and where memory settles (or does not).
    """

    targets: int
    jobs: int
    listening_s: float
    ready_s: float
    first_poll_s: float
    repeated_cycles: int
    cycle_poll_s: float
    """Median poller time of the repeated cycles."""
    cycle_publish_s: float
    """Median time from the reload to ``cycle.finished``: poll, model, rendering and gzip."""
    cycle_requests: int
    cycle_busiest_window: int
    """Most requests of one cycle for one (token, API path): what the rate limit spaces out."""
    targets_up: int
    rate_limited: int
    plain_ms: float
    gzip_ms: float
    keep_alive_plain_ms: float
    keep_alive_gzip_ms: float
    """Back-to-back scrapes over one kept-alive connection."""
    plain_bytes: int
    gzip_bytes: int
    rss_mb: float
    """VmRSS after cycle 1 and the scrapes."""
    rss_steady_mb: float
    """The largest VmRSS read after each repeated cycle."""
    peak_rss_mb: float
    """VmHWM at the end: the most the process ever held."""
    rss_readings_mb: list[float]
    plain_all_ms: list[float]
    gzip_all_ms: list[float]

    @property
    def rss_largest_mb(self) -> float:
        return max(self.rss_mb, self.rss_steady_mb)


def measure_exporter(
    running: Exporter,
    jobs: int,
    targets: int,
    scrapes: int,
    repeated_cycles: int = REPEATED_CYCLES,
    profiler: Profiler | None = None,
) -> ExporterFigures:
    """Wait for the first cycle; time ``scrapes`` plain and gzip scrapes; read memory; run
    ``repeated_cycles`` more cycles, reading memory after each."""

    def phase(name: str) -> contextlib.AbstractContextManager[None]:
        return profiler.record(name, gil_only=True) if profiler else contextlib.nullcontext()

    with phase("first_cycle"):
        startup = running.wait_ready()
    client = running.client
    with phase("scrapes"):
        plain, plain_bytes = time_scrapes(client, running.port, scrapes)
        compressed, gzip_bytes = time_scrapes(client, running.port, scrapes, GZIP)
        kept_alive = RawHttpClient(keep_alive=True)
        kept_alive_plain, _ = time_scrapes(kept_alive, running.port, scrapes)
        kept_alive_gzip, _ = time_scrapes(kept_alive, running.port, scrapes, GZIP)
        kept_alive.close()
    health = health_of(client.get(running.port, "/metrics").body)
    answer = client.get(running.port, "/metrics", GZIP)
    if answer.headers.get("content-encoding") != "gzip" or not gzip.decompress(answer.body):
        raise RuntimeError("the gzip answer is not gzip")
    readings = [running.memory().rss_mb]
    publish_times = []
    with phase("repeated_cycles"):
        for _ in range(repeated_cycles):
            publish_times.append(running.run_another_cycle())
            readings.append(running.memory().rss_mb)
    poll_times = [event["ms"] / 1000.0 for event in running.finished_cycles()[1:]]
    peak = running.memory().peak_mb
    after = health_of(client.get(running.port, "/metrics").body)
    per_window = {
        window: (count - health.requests.get(window, 0)) // max(repeated_cycles, 1)
        for window, count in after.requests.items()
    }
    return ExporterFigures(
        targets=targets,
        jobs=jobs,
        listening_s=startup.listening_seconds,
        ready_s=startup.ready_seconds,
        first_poll_s=health.poll_cycle_seconds,
        repeated_cycles=repeated_cycles,
        cycle_poll_s=statistics.median(poll_times) if poll_times else health.poll_cycle_seconds,
        cycle_publish_s=statistics.median(publish_times) if publish_times else 0.0,
        cycle_requests=sum(per_window.values()),
        cycle_busiest_window=max(per_window.values(), default=0),
        targets_up=after.targets_up,
        rate_limited=after.rate_limited_requests,
        plain_ms=median_ms(plain),
        gzip_ms=median_ms(compressed),
        keep_alive_plain_ms=median_ms(kept_alive_plain),
        keep_alive_gzip_ms=median_ms(kept_alive_gzip),
        plain_bytes=plain_bytes,
        gzip_bytes=gzip_bytes,
        rss_mb=readings[0],
        rss_steady_mb=max(readings[1:], default=readings[0]),
        peak_rss_mb=peak,
        rss_readings_mb=[round(reading, 1) for reading in readings],
        plain_all_ms=[round(value * 1000, 2) for value in plain],
        gzip_all_ms=[round(value * 1000, 2) for value in compressed],
    )


# -- HTTP over a raw socket --------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: memoryview
    seconds: float


class RawHttpClient:
    """HTTP/1.1 GETs read with ``recv_into`` into a buffer kept between calls.

    No parsing beyond the status line and headers, no copy of the body: the time per byte is the
    kernel's, which is what the floor measures too. By default each GET has a connection of its
    own; ``keep_alive`` reuses one, as Prometheus does. ``Answer.body`` is a view of the buffer,
    valid until the next GET.
    """

    def __init__(self, capacity: int = 1 << 20, keep_alive: bool = False) -> None:
        self._buffer = bytearray(capacity)
        self._keep_alive = keep_alive
        self._connection: socket.socket | None = None

    def get(self, port: int, path: str, headers: dict[str, str] | None = None) -> Answer:
        request = f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        if not self._keep_alive:
            request += "Connection: close\r\n"
        for name, value in (headers or {}).items():
            request += f"{name}: {value}\r\n"
        payload = (request + "\r\n").encode()
        started = time.perf_counter()
        connection = self._connection or socket.create_connection((LOOPBACK, port), timeout=60)
        try:
            connection.sendall(payload)
            received, header_end = self._read_headers(connection)
            status, parsed = _parse_head(bytes(self._buffer[:header_end]))
            length = int(parsed.get("content-length", "0"))
            total = header_end + length
            if total > len(self._buffer):
                grown = bytearray(total)
                grown[:received] = self._buffer[:received]
                self._buffer = grown
            view = memoryview(self._buffer)
            while received < total:
                count = connection.recv_into(view[received:total], total - received)
                if count == 0:
                    raise ConnectionError(f"connection closed after {received} of {total} bytes")
                received += count
        except BaseException:
            connection.close()
            self._connection = None
            raise
        seconds = time.perf_counter() - started
        if self._keep_alive and parsed.get("connection", "").lower() != "close":
            self._connection = connection
        else:
            connection.close()
            self._connection = None
        return Answer(status, parsed, view[header_end:total], seconds)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _read_headers(self, connection: socket.socket) -> tuple[int, int]:
        received = 0
        view = memoryview(self._buffer)
        while True:
            count = connection.recv_into(view[received:], len(self._buffer) - received)
            if count == 0:
                raise ConnectionError("connection closed before the headers ended")
            received += count
            end = self._buffer.find(b"\r\n\r\n", 0, received)
            if end >= 0:
                return received, end + 4
            if received == len(self._buffer):
                raise ConnectionError("headers larger than the buffer")


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def time_scrapes(
    client: RawHttpClient, port: int, count: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    """One warm-up scrape (sizes the buffer), then ``count`` timed ones: (seconds, body bytes)."""
    warm_up = client.get(port, "/metrics", headers)
    if warm_up.status != 200:
        raise RuntimeError(f"/metrics answered {warm_up.status}")
    seconds = []
    size = len(warm_up.body)
    for _ in range(count):
        answer = client.get(port, "/metrics", headers)
        seconds.append(answer.seconds)
        size = len(answer.body)
    return seconds, size


@contextlib.contextmanager
def floor_server(size: int) -> Iterator[int]:
    """Start ``python -m benchmarks.floor`` answering ``size`` bytes; yield its port."""
    with Process("benchmarks.floor", [f"--bytes={size}"], "floor") as process:
        yield int(process.read_ready_line().rsplit(":", 1)[1])


# -- what the exporter says about itself ------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """Read from the exporter's own series on a scraped page."""

    targets: int
    targets_up: int
    rate_limited_requests: int
    poll_cycle_seconds: float
    requests: dict[tuple[str, str], int]
    """Requests so far per (cluster, api): the rate limit's windows (one token per cluster here)."""


_SAMPLE = re.compile(rb"^(milvus_jobs_exporter_[a-z_]+)(\{[^}]*\})? (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def health_of(page: memoryview | bytes) -> Health:
    """The exporter's health series; they sit after the job families, so only the tail is read."""
    data = bytes(page)
    start = data.find(b"# HELP milvus_jobs_exporter_")
    targets = targets_up = rate_limited = 0
    cycle = 0.0
    requests: dict[tuple[str, str], int] = {}
    for match in _SAMPLE.finditer(data, max(start, 0)):
        name, value = match.group(1), float(match.group(3))
        labels = dict(_LABEL.findall((match.group(2) or b"").decode()))
        if name == b"milvus_jobs_exporter_target_up":
            targets += 1
            targets_up += int(value)
        elif name == b"milvus_jobs_exporter_api_requests_total":
            window = (labels.get("milvus_cluster", ""), labels.get("api", ""))
            requests[window] = requests.get(window, 0) + int(value)
            if labels.get("outcome") == "rate_limited":
                rate_limited += int(value)
        elif name == b"milvus_jobs_exporter_poll_cycle_duration_seconds":
            cycle = value
    return Health(targets, targets_up, rate_limited, cycle, requests)
