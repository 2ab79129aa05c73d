"""The poll path at fleet scale (issue 23): what one round costs the real exporter, against a
plain loop polling the same fleet.

The fleet (``fleet_upstream.Fleet``): per database, 200 external collections x 10 finished
refreshes and 1,000 imports of which 8 run for ever; 50 databases (100,000 refresh records and
50,000 imports per round) and 200, under one token at Zilliz Cloud's 20 requests/s per token and
path, ``poll_interval: 15s``. Everything else is the exporter's default, except
``max_tracked_jobs: 100000`` for 200 databases (they have 81,600 jobs to track, over the default
50,000).

Each point runs, one after another (never two at once on the 2-core machine):

1. the exporter (``python -m exporter serve``) against the lean fake upstream
   (``fleet_upstream.py``): two cycles from a cold start (their VmHWM is the cold peak); then
   one warm-up cycle at no rate limit with ``max_import_describes`` at the fleet's imports, so
   that every finished import is described once (at 20/s that alone takes 40 minutes for 50,000
   imports, ``described_finished`` survives a reload but not a restart); then back to the
   measured config, VmHWM reset (``/proc/PID/clear_refs``), ``--warm-cycles`` cycles, and the
   ``--cycles`` measured ones; optionally a py-spy recording of ``--profile-cycles`` more;
2. the plain loop (``plainloop.py``) against the same fake: two cold cycles, VmHWM reset,
   the same warm and measured cycles;
3. the exporter against the built-in simulator at the same sizes (``--simulator``; the
   simulator's own rate limit is off, since it cannot be lifted for the warm-up; the exporter's
   limiter holds 20/s as it does against the fake), the same phases as 1.

CPU per cycle is the process's own CPU time (utime + stime from ``/proc/PID/stat``) over the
measured cycles, divided by how many the process's own counter
(``milvus_jobs_exporter_poll_cycles_total``) says were completed; each reading is taken right
after a cycle is published, while the process waits for its next one. Cycle time is the poll
(``milvus_jobs_exporter_poll_cycle_duration_seconds``) plus the publish (from the published
cycle's timestamp to its ``cycle.finished`` log line), and the interval is the time between two
cycle starts. Requests per round are the growth of ``milvus_jobs_exporter_api_requests_total``
by ``api`` over the measured cycles. One gzip scrape follows each cycle (about what Prometheus
costs), inside the measured CPU. Both processes run with the container image's
``MALLOC_MMAP_THRESHOLD_``, so their memory is what a pod would show.

    python -m benchmarks.fleet [--quick] [--databases 50 200] [--simulator] [--profile DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import itertools
import json
import os
import re
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from . import report
from .fleet_upstream import LIMIT_PATH, STATS_PATH, TOKEN, Fleet
from .harness import GZIP, LOOPBACK, Process, RawHttpClient, World, free_port, memory_of
from .profiling import Profiler, layer_shares, summary, thread_names
from .upstream import database_names, token_names

POLL_INTERVAL_SECONDS = 15.0
COLD_CYCLES = 2
WARM_CYCLES = 2
CYCLES = 6
PROFILE_CYCLES = 3
LARGE_TRACKED_JOBS = 100_000
MANIFEST_LIMIT_MB = 256 * 1024 * 1024 / 1e6
"""The memory limit of the shipped Kubernetes manifest (256 Mi), in MB (10^6 bytes)."""
CPU_TARGET_SECONDS = 1.0
CPU_MOONSHOT_SECONDS = 0.5
CYCLE_TIMEOUT_SLACK_SECONDS = 120.0
CONTAINER_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "33554432"}
"""What the container image sets (``Dockerfile``): large buffers go back to the system when
freed. Both the exporter and the plain loop run with it, so their memory is what a pod shows."""


@dataclass(frozen=True)
class Settings:
    """How one point is run: the fleet, the measured config and how many cycles of each phase."""

    fleet: Fleet
    poll_interval: float = POLL_INTERVAL_SECONDS
    request_timeout: float | None = None
    max_tracked_jobs: int | None = None
    quiet: tuple[float, float] | None = None
    """(load, seconds): wait up to that long for the 1-minute load to fall that low before the
    measured cycles (``--quiet-load``)."""
    cold_cycles: int = COLD_CYCLES
    warm_cycles: int = WARM_CYCLES
    cycles: int = CYCLES
    profile_cycles: int = 0

    def exporter_config(self, endpoint: str, token: str, port: int, warm_up: bool) -> str:
        """Defaults but for the interval (and the few the fleet needs); ``warm_up`` lifts the
        rate limit and the describe cap so every finished import is described in one round."""
        lines = [f'listen_address: "{LOOPBACK}:{port}"']
        if warm_up:
            lines += [
                "poll_interval: 1h",
                "requests_per_second: 100000",
                f"max_import_describes: {max(self.fleet.imports, 1)}",
            ]
        else:
            lines.append(f"poll_interval: {self.poll_interval:g}s")
        if self.request_timeout is not None:
            lines.append(f"request_timeout: {self.request_timeout:g}s")
        if self.max_tracked_jobs is not None:
            lines.append(f"max_tracked_jobs: {self.max_tracked_jobs}")
        databases = ", ".join(database_names(self.fleet.databases))
        lines += [
            "clusters:",
            "  - name: fleet",
            f"    endpoint: {endpoint}",
            f"    token: {token}",
            f"    databases: [{databases}]",
        ]
        return "\n".join(lines) + "\n"

    def changes(self) -> list[str]:
        """The config keys this point sets besides the address and the cluster."""
        changed = [f"poll_interval: {self.poll_interval:g}s"]
        if self.request_timeout is not None:
            changed.append(f"request_timeout: {self.request_timeout:g}s")
        if self.max_tracked_jobs is not None:
            changed.append(f"max_tracked_jobs: {self.max_tracked_jobs}")
        return changed


# -- reading a process: CPU, memory, its log, its /metrics --------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int, tid: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (or of one of its threads) so far: fields 14 and
    15 of ``/proc/PID/stat`` (or of ``/proc/PID/task/TID/stat``)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (or of one of its threads) so far."""
    return sum(cpu_times(pid, tid))


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time so far of each live thread of a process (``/proc/PID/task/TID/stat``)."""
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            out[int(tid)] = cpu_seconds(pid, int(tid))
    return out


THREAD_GROUPS = (
    ("poll-loop", "poll loop (scheduler, model, series, publish)"),
    ("poll_", "pool workers (HTTP, parsing, kept)"),
    ("http", "web server (scrapes)"),
    ("MainThread", "main thread"),
)


def thread_group(name: str) -> str:
    for prefix, group in THREAD_GROUPS:
        if name.startswith(prefix):
            return group
    return "other threads"


def cpu_by_thread_group(
    before: dict[int, float], after: dict[int, float], names: dict[int, str], total: float
) -> dict[str, float]:
    """CPU seconds of the window per group of threads; threads that ended within it (the
    plain loop's workers, a scrape's thread) are what is left of the process total."""
    out: dict[str, float] = {}
    for tid, seconds in after.items():
        group = thread_group(names.get(tid, ""))
        out[group] = out.get(group, 0.0) + seconds - before.get(tid, 0.0)
    out["threads that ended"] = max(0.0, total - sum(out.values()))
    return out


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current VmRSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


_SERIES = re.compile(rb"^([a-z_]+)(\{[^}]*\})? (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Scrape:
    """The self-describing series of one /metrics page (``milvus_jobs_exporter_*``)."""

    series: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, name: str, default: float = 0.0) -> float:
        return self.series.get((name, ()), default)

    def requests_by_api(self) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for (name, labels), value in self.series.items():
            if name == "milvus_jobs_exporter_api_requests_total":
                found = dict(labels)
                key = (found.get("api", ""), found.get("outcome", ""))
                out[key] = out.get(key, 0.0) + value
        return out

    def describe_series(self) -> dict[str, float]:
        """Every exporter series that names describes (a backlog metric, once there is one)."""
        out: dict[str, float] = {}
        for (name, _labels), value in self.series.items():
            if "describe" in name:
                out[name] = out.get(name, 0.0) + value
        return out

    def gc_collections(self) -> dict[str, float]:
        """Garbage collections so far by generation (prometheus_client's ``GCCollector``)."""
        return {
            dict(labels).get("generation", ""): value
            for (name, labels), value in self.series.items()
            if name == "python_gc_collections_total"
        }

    def targets(self) -> tuple[int, int]:
        """(targets, targets up) from ``milvus_jobs_exporter_target_up``."""
        values = [
            value
            for (name, _labels), value in self.series.items()
            if name == "milvus_jobs_exporter_target_up"
        ]
        return len(values), sum(1 for value in values if value == 1.0)


def _regions(page: bytes) -> Iterator[tuple[int, int]]:
    """Where the series read here sit: the garbage collector's family, and everything from the
    first ``milvus_jobs_exporter_`` family on (after the job families, which are the bulk)."""
    gc = page.find(b"# HELP python_gc_collections")
    if gc >= 0:
        yield gc, page.find(b"# HELP", gc + 1)
    own = page.find(b"# HELP milvus_jobs_exporter_")
    if own >= 0:
        yield own, len(page)


def parse_scrape(page: bytes) -> Scrape:
    series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    matches = (
        match
        for start, end in _regions(page)
        for match in _SERIES.finditer(page, start, end if end >= 0 else len(page))
    )
    for match in matches:
        name = match.group(1).decode()
        if not name.startswith(("milvus_jobs_exporter_", "python_gc_collections")):
            continue
        labels = tuple(sorted(_LABEL.findall((match.group(2) or b"").decode())))
        series[(name, labels)] = float(match.group(3))
    return Scrape(series)


def scrape(client: RawHttpClient, port: int) -> tuple[Scrape, int]:
    """One gzip scrape: (the exporter's own series, samples on the page)."""
    answer = client.get(port, "/metrics", GZIP)
    if answer.status != 200:
        raise RuntimeError(f"/metrics answered {answer.status}")
    body = bytes(answer.body)
    if answer.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    samples = body.count(b"\n") - body.count(b"\n#") - body.startswith(b"#")
    return parse_scrape(body), samples


@dataclass(frozen=True)
class CycleLine:
    """One ``cycle.finished`` log line: when it was written and the poll's seconds."""

    at: float
    poll_s: float
    publish_s: float | None
    requests: int
    by_api: dict[str, int] = field(default_factory=dict)
    """Requests of the cycle by ``api`` (the plain loop logs them; the exporter does not)."""


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Subject:
    """A process under measurement: the exporter or the plain loop (the same log shape)."""

    def __init__(self, name: str, process: Process, port: int) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.client = RawHttpClient()
        self._read = 0
        self.cycles: list[CycleLine] = []
        self.overruns = 0

    def _scan(self) -> None:
        """Take new ``cycle.finished`` (and ``cycle.overrun``) lines from the log."""
        text = self.process.output()
        lines = text[self._read :].split("\n")
        complete, rest = lines[:-1], lines[-1]
        self._read = len(text) - len(rest)
        for line in complete:
            if '"cycle.' not in line:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "cycle.overrun":
                    self.overruns += 1
                elif event.get("event") == "cycle.finished":
                    publish = event.get("publish_ms")
                    self.cycles.append(
                        CycleLine(
                            at=_epoch(event["timestamp"]),
                            poll_s=event["ms"] / 1000.0,
                            publish_s=None if publish is None else publish / 1000.0,
                            requests=int(event.get("requests", 0)),
                            by_api={
                                api.removeprefix("/v2/vectordb/").removeprefix("jobs/"): int(n)
                                for api, n in (event.get("by_api") or {}).items()
                            },
                        )
                    )

    def wait_cycles(self, count: int, timeout: float) -> list[CycleLine]:
        """Wait until ``count`` more cycles have finished; return them."""
        self._scan()
        first = len(self.cycles)
        deadline = time.monotonic() + timeout
        while len(self.cycles) < first + count:
            self.process.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: {len(self.cycles) - first} of {count} cycles within "
                    f"{timeout:.0f}s:\n{self.process.output()[-3000:]}"
                )
            time.sleep(0.05)
            self._scan()
        return self.cycles[first : first + count]

    def scrape(self) -> tuple[Scrape, int]:
        return scrape(self.client, self.port)


# -- one measured window ------------------------------------------------------------------------


@dataclass
class Window:
    """What the measured cycles of one subject showed."""

    cycles: int
    cpu_s: float
    system_s: float
    """Of ``cpu_s``, the time in the kernel (socket reads, futex waits of contending threads)."""
    wall_s: float
    poll_s: list[float]
    publish_s: list[float]
    intervals_s: list[float]
    requests: dict[str, float]
    """Per round, by ``api`` (every outcome)."""
    rate_limited: float
    """Per round: requests the upstream refused (as the subject counted them)."""
    describe_series: dict[str, float]
    samples: int
    rss_mb: float
    peak_rss_mb: float
    overruns: int
    load_1m: float
    """The 1-minute load average when the measured cycles started (the machine is shared)."""
    upstream_stats: dict[str, Any]
    upstream_cpu_s: float
    targets: int
    targets_up: int
    gc_per_cycle: dict[str, float]
    """Garbage collections per cycle, by generation."""
    cpu_by_thread: dict[str, float]
    """CPU seconds per cycle by group of threads (empty without py-spy to name them)."""

    @property
    def cpu_per_cycle_s(self) -> float:
        return self.cpu_s / self.cycles if self.cycles else 0.0

    @property
    def cycle_s(self) -> list[float]:
        return [poll + publish for poll, publish in zip(self.poll_s, self.publish_s, strict=True)]


def wait_for_quiet(threshold: float, longest: float) -> float:
    """Wait (at most ``longest`` seconds) for the 1-minute load to fall to ``threshold``: other
    engineers share the machine, and a loaded machine inflates every CPU figure. Returns the
    load when the wait ended, whether it fell or not."""
    deadline = time.monotonic() + longest
    while (load := os.getloadavg()[0]) > threshold and time.monotonic() < deadline:
        time.sleep(5)
    return load


def measure_window(
    subject: Subject,
    count: int,
    interval: float,
    upstream: Upstream | None = None,
    quiet: tuple[float, float] | None = None,
) -> Window:
    """``count`` cycles, from right after one was published (the subject waits for its next
    one then) to right after the last; the upstream's CPU and (the lean fake's) counts are read
    over the same cycles.

    The counters are read before the cycle that opens the window and after the last one, by
    scrapes outside the CPU window: a scrape of the plain loop renders its whole registry
    (about a second at 50 databases), which belongs to the scrape path, not the poll. The
    exporter answers from cached bytes; its page after each cycle says when the cycle was
    published, which the plain loop writes in its log line instead."""
    timeout = (count + 2) * interval * 3 + CYCLE_TIMEOUT_SLACK_SECONDS
    if quiet is not None:
        wait_for_quiet(*quiet)
    subject.wait_cycles(1, timeout)
    before, _ = subject.scrape()
    (opening,) = subject.wait_cycles(1, timeout)
    pid = subject.process.pid
    cpu_before = cpu_seconds(pid)
    system_before = cpu_times(pid)[1]
    threads_before = thread_cpu_seconds(pid)
    wall_before = time.monotonic()
    load = os.getloadavg()[0]
    overruns_before = subject.overruns
    stats_before = upstream.stats() if upstream else {}
    upstream_cpu = cpu_seconds(upstream.pid) if upstream else 0.0
    logged = opening.publish_s is not None  # the plain loop logs its publish and requests
    published = [] if logged else [_published(subject)]
    lines: list[CycleLine] = []
    for _ in range(count):
        lines += subject.wait_cycles(1, timeout)
        cpu_now = cpu_seconds(pid)
        system_now = cpu_times(pid)[1]
        threads_now = thread_cpu_seconds(pid)
        wall_now = time.monotonic()
        upstream_cpu_now = cpu_seconds(upstream.pid) if upstream else 0.0
        if not logged:
            published.append(_published(subject))
    after, samples = subject.scrape()
    names = thread_names(pid)
    counted = int(
        after.value("milvus_jobs_exporter_poll_cycles_total")
        - before.value("milvus_jobs_exporter_poll_cycles_total")
    )
    if counted != count + 1:  # the window's cycles and the one that opened it
        raise RuntimeError(
            f"{subject.name}: the counter says {counted} cycles, the log {count + 1}"
        )
    poll = [line.poll_s for line in lines]
    by_api: dict[str, float] = {}
    limited = 0.0
    if logged:
        publish = [float(line.publish_s or 0.0) for line in lines]
        starts = [
            line.at - line.poll_s - float(line.publish_s or 0.0) for line in (opening, *lines)
        ]
        for line in lines:
            for api, number in line.by_api.items():
                by_api[api] = by_api.get(api, 0.0) + number / count
    else:  # the exporter: published at the cycle timestamp, logged once the publish ended
        publish = [
            max(0.0, line.at - stamp) for line, stamp in zip(lines, published[1:], strict=True)
        ]
        starts = [
            stamp - poll_s for stamp, poll_s in zip(published, [opening.poll_s, *poll], strict=True)
        ]
    old = before.requests_by_api()
    for (api, outcome), value in after.requests_by_api().items():
        grown = (value - old.get((api, outcome), 0.0)) / counted
        if not logged:
            by_api[api] = by_api.get(api, 0.0) + grown
        if outcome == "rate_limited":
            limited += grown
    memory = memory_of(pid)
    stats = _stats_growth(stats_before, upstream.stats() if upstream else {}, count)
    return Window(
        cycles=count,
        cpu_s=cpu_now - cpu_before,
        system_s=system_now - system_before,
        wall_s=wall_now - wall_before,
        poll_s=poll,
        publish_s=publish,
        intervals_s=[later - earlier for earlier, later in itertools.pairwise(starts)],
        requests=by_api,
        rate_limited=limited,
        describe_series=after.describe_series(),
        samples=samples,
        rss_mb=memory.rss_mb,
        peak_rss_mb=memory.peak_mb,
        overruns=subject.overruns - overruns_before,
        load_1m=load,
        upstream_stats=stats,
        upstream_cpu_s=upstream_cpu_now - upstream_cpu,
        targets=after.targets()[0],
        targets_up=after.targets()[1],
        cpu_by_thread={
            group: round(seconds / count, 3)
            for group, seconds in cpu_by_thread_group(
                threads_before, threads_now, names, cpu_now - cpu_before
            ).items()
        }
        if names
        else {},
        gc_per_cycle={
            generation: round((count - before.gc_collections().get(generation, 0.0)) / counted, 1)
            for generation, count in sorted(after.gc_collections().items())
        },
    )


def _published(subject: Subject) -> float:
    """When the exporter published its last cycle (a cached gzip scrape: milliseconds)."""
    page, _ = subject.scrape()
    return page.value("milvus_jobs_exporter_last_poll_cycle_timestamp_seconds")


# -- the upstreams ------------------------------------------------------------------------------


@dataclass
class Upstream:
    name: str
    url: str
    token: str
    pid: int
    lean: bool

    def set_limit(self, requests_per_second: int) -> None:
        if self.lean:
            answer = requests.post(
                self.url + LIMIT_PATH, json={"requests_per_second": requests_per_second}, timeout=10
            )
            answer.raise_for_status()

    def stats(self) -> dict[str, Any]:
        if not self.lean:
            return {}
        answer = requests.get(self.url + STATS_PATH, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())


@contextlib.contextmanager
def lean_upstream(fleet: Fleet) -> Iterator[Upstream]:
    with Process("benchmarks.fleet_upstream", fleet.arguments(), "fleet-upstream") as process:
        url = process.read_ready_line(timeout=300).split()[0]
        yield Upstream("lean fake", url, TOKEN, process.pid, lean=True)


@contextlib.contextmanager
def simulator_upstream(fleet: Fleet) -> Iterator[Upstream]:
    world = World(
        databases=fleet.databases,
        collections=fleet.collections,
        history=fleet.history,
        imports=fleet.imports,
        requests_per_second=0,
    )
    with Process("benchmarks.upstream", world.arguments(), "simulator") as process:
        url = process.read_ready_line(timeout=300).split()[0]
        yield Upstream("simulator", url, token_names(1)[0], process.pid, lean=False)


# -- the runs ------------------------------------------------------------------------------------


@dataclass
class Point:
    """One row: a subject against an upstream, at one fleet."""

    subject: str
    upstream: str
    databases: int
    load_1m: float
    """The 1-minute load average when the measured cycles started (the machine is shared)."""
    cpu_per_cycle_s: float
    system_per_cycle_s: float
    """Of the CPU per cycle, the kernel's part."""
    cpu_s: float
    cycles: int
    poll_interval_s: float
    poll_s_median: float
    poll_s_max: float
    publish_s_median: float
    cycle_s_median: float
    cycle_s_max: float
    interval_s_median: float
    interval_s_max: float
    cycles_over_interval: int
    overruns_logged: int
    requests_per_round: dict[str, float]
    rate_limited_per_round: float
    describe_series: dict[str, float]
    samples: int
    targets: int
    targets_up: int
    gc_per_cycle: dict[str, float]
    """Garbage collections per cycle by generation: a generation-2 one walks every object."""
    cpu_by_thread: dict[str, float]
    """CPU seconds per cycle by group of threads (the poll loop, the pool workers, ...)."""
    cold_peak_rss_mb: float
    """VmHWM over the first cycles from start (every finished import not yet described)."""
    peak_rss_mb: float
    """VmHWM over the warm and measured cycles (reset before them)."""
    rss_mb: float
    peak_reset: bool
    upstream_stats: dict[str, Any] = field(default_factory=dict)
    upstream_cpu_per_cycle_s: float = 0.0
    warm_up_s: float = 0.0
    warm_up_described: int | None = None
    """Finished imports the lean fake had described once by the end of the warm-up."""
    config_changes: list[str] = field(default_factory=list)

    @property
    def requests_total(self) -> float:
        return sum(self.requests_per_round.values())


def _point(
    subject: str,
    upstream: Upstream,
    settings: Settings,
    window: Window,
    cold_peak: float,
    reset: bool,
    warm_up_s: float = 0.0,
) -> Point:
    cycle = window.cycle_s
    interval = settings.poll_interval
    return Point(
        subject=subject,
        upstream=upstream.name,
        databases=settings.fleet.databases,
        load_1m=round(window.load_1m, 2),
        cpu_per_cycle_s=round(window.cpu_per_cycle_s, 3),
        system_per_cycle_s=round(window.system_s / window.cycles, 3),
        cpu_s=round(window.cpu_s, 2),
        cycles=window.cycles,
        poll_interval_s=interval,
        poll_s_median=round(statistics.median(window.poll_s), 3),
        poll_s_max=round(max(window.poll_s), 3),
        publish_s_median=round(statistics.median(window.publish_s), 3),
        cycle_s_median=round(statistics.median(cycle), 3),
        cycle_s_max=round(max(cycle), 3),
        interval_s_median=round(statistics.median(window.intervals_s), 3),
        interval_s_max=round(max(window.intervals_s), 3),
        cycles_over_interval=sum(1 for seconds in cycle if seconds > interval),
        overruns_logged=window.overruns,
        requests_per_round={api: round(count, 1) for api, count in sorted(window.requests.items())},
        rate_limited_per_round=round(window.rate_limited, 1),
        describe_series=window.describe_series,
        samples=window.samples,
        targets=window.targets,
        targets_up=window.targets_up,
        gc_per_cycle=window.gc_per_cycle,
        cpu_by_thread=window.cpu_by_thread,
        cold_peak_rss_mb=round(cold_peak, 1),
        peak_rss_mb=round(window.peak_rss_mb, 1),
        rss_mb=round(window.rss_mb, 1),
        peak_reset=reset,
        upstream_stats=window.upstream_stats,
        upstream_cpu_per_cycle_s=round(window.upstream_cpu_s / window.cycles, 3),
        warm_up_s=round(warm_up_s, 1),
        config_changes=settings.changes(),
    )


def _stats_growth(before: dict[str, Any], after: dict[str, Any], cycles: int) -> dict[str, Any]:
    """The lean fake's own counts over the window, per round."""
    if not after:
        return {}

    def per_round(name: str) -> dict[str, float]:
        old = before.get(name, {})
        return {
            path.rsplit("/v2/vectordb/", 1)[-1]: round((count - old.get(path, 0)) / cycles, 1)
            for path, count in after.get(name, {}).items()
        }

    return {
        "requests": per_round("requests"),
        "rate_limited": per_round("rate_limited"),
        "running_described": round(
            (after["running_describes"] - before.get("running_describes", 0)) / cycles, 1
        ),
        "finished_described": after["finished_described"],
    }


@contextlib.contextmanager
def running_exporter(
    settings: Settings, upstream: Upstream
) -> Iterator[tuple[Subject, Callable[[bool], None]]]:
    """``python -m exporter serve`` with the measured config; yields it and ``configure(warm_up)``,
    which rewrites the config and sends SIGHUP."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as directory:
        config = Path(directory) / "config.yaml"
        config.write_text(settings.exporter_config(upstream.url, upstream.token, port, False))
        config.chmod(0o600)
        arguments = ["serve", f"--config={config}", "--log-level=info", "--log-format=json"]
        with Process("exporter", arguments, "exporter", CONTAINER_ENVIRONMENT) as process:

            def configure(warm_up: bool) -> None:
                config.write_text(
                    settings.exporter_config(upstream.url, upstream.token, port, warm_up)
                )
                os.kill(process.pid, signal.SIGHUP)

            yield Subject("exporter", process, port), configure


def _wait_for_interval(subject: Subject, seconds: float, timeout: float) -> None:
    """Wait until the exporter runs a config with this poll interval (it applies a reload at
    the start of a cycle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subject.process.check_alive()
        found, _ = subject.scrape()
        if found.value("milvus_jobs_exporter_poll_interval_seconds") == seconds:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the exporter did not apply poll_interval {seconds:g}s in {timeout:.0f}s")


def run_exporter(settings: Settings, upstream: Upstream, profiler: Profiler | None = None) -> Point:
    interval = settings.poll_interval
    phase_timeout = interval * 4 + CYCLE_TIMEOUT_SLACK_SECONDS
    with running_exporter(settings, upstream) as (subject, configure):
        subject.wait_cycles(settings.cold_cycles, phase_timeout * settings.cold_cycles)
        cold_peak = memory_of(subject.process.pid).peak_mb
        # the warm-up: every finished import described once, without waiting 20 per second.
        # A reload is applied when a cycle starts: the interval of 1 h shows the warm-up cycle
        # has started; the measured config, sent at once, is applied when it has ended.
        started = time.monotonic()
        upstream.set_limit(0)
        configure(True)
        _wait_for_interval(subject, 3600.0, phase_timeout)
        configure(False)
        warm_up_timeout = settings.fleet.import_records / 50 + CYCLE_TIMEOUT_SLACK_SECONDS
        _wait_for_interval(subject, interval, warm_up_timeout)
        upstream.set_limit(settings.fleet.requests_per_second)
        warm_up_s = time.monotonic() - started
        warm_up_described = upstream.stats().get("finished_described")
        reset = reset_peak(subject.process.pid)
        subject.wait_cycles(settings.warm_cycles, phase_timeout * max(settings.warm_cycles, 1))
        window = measure_window(subject, settings.cycles, interval, upstream, settings.quiet)
        if profiler is not None and settings.profile_cycles:
            profiler.attach(subject.process.pid)
            subject.wait_cycles(1, phase_timeout)
            name = f"exporter-{upstream.name.replace(' ', '-')}-{settings.fleet.databases}db"
            with profiler.record(name, gil_only=True):
                subject.wait_cycles(
                    settings.profile_cycles, phase_timeout * settings.profile_cycles
                )
    point = _point("exporter", upstream, settings, window, cold_peak, reset, warm_up_s)
    point.warm_up_described = warm_up_described
    return point


def run_plain_loop(settings: Settings, upstream: Upstream) -> Point:
    interval = settings.poll_interval
    phase_timeout = interval * 4 + CYCLE_TIMEOUT_SLACK_SECONDS
    arguments = [
        f"--endpoint={upstream.url}",
        f"--token={upstream.token}",
        f"--databases={settings.fleet.databases}",
        f"--interval={interval:g}",
        f"--requests-per-second={settings.fleet.requests_per_second}",
    ]
    with Process("benchmarks.plainloop", arguments, "plain-loop", CONTAINER_ENVIRONMENT) as process:
        port = int(process.read_ready_line().rsplit(":", 1)[1])
        subject = Subject("plain loop", process, port)
        subject.wait_cycles(settings.cold_cycles, phase_timeout * settings.cold_cycles)
        cold_peak = memory_of(process.pid).peak_mb
        reset = reset_peak(process.pid)
        subject.wait_cycles(settings.warm_cycles, phase_timeout * max(settings.warm_cycles, 1))
        window = measure_window(subject, settings.cycles, interval, upstream, settings.quiet)
    point = _point("plain loop", upstream, settings, window, cold_peak, reset)
    point.config_changes = []
    return point


# -- the report -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def print_points(points: Sequence[Point], fleets: dict[int, Fleet]) -> None:
    for databases, fleet in fleets.items():
        rows = [point for point in points if point.databases == databases]
        if not rows:
            continue
        print(
            f"   {databases} databases: {fleet.refresh_records:,} refresh records and "
            f"{fleet.import_records:,} imports per round ({fleet.running} running), "
            f"{fleet.requests_per_second} requests/s per path, poll_interval "
            f"{rows[0].poll_interval_s:g}s"
        )
        report.table(
            [
                "subject (upstream)",
                "load",
                "up",
                "CPU/cycle",
                "poll s",
                "cycle s (max)",
                "interval s (max)",
                "over",
                "requests/round",
                "describes",
                "429s",
                "peak RSS cold",
                "peak RSS",
                "RSS",
            ],
            [
                [
                    f"{point.subject} ({point.upstream})",
                    f"{point.load_1m:.2f}",
                    f"{point.targets_up}/{point.targets}",
                    f"{point.cpu_per_cycle_s:.2f} s",
                    _seconds(point.poll_s_median),
                    f"{_seconds(point.cycle_s_median)} ({_seconds(point.cycle_s_max)})",
                    f"{_seconds(point.interval_s_median)} ({_seconds(point.interval_s_max)})",
                    f"{point.cycles_over_interval}/{point.cycles}",
                    f"{point.requests_total:.0f}",
                    f"{point.requests_per_round.get('import/describe', 0.0):.0f}",
                    f"{point.rate_limited_per_round:.0f}",
                    f"{point.cold_peak_rss_mb:.0f} MB",
                    f"{point.peak_rss_mb:.0f} MB",
                    f"{point.rss_mb:.0f} MB",
                ]
                for point in rows
            ],
        )
        for point in rows:
            by_api = ", ".join(
                f"{api} {count:g}" for api, count in point.requests_per_round.items()
            )
            print(f"   {point.subject} ({point.upstream}) requests per round: {by_api}")
            gc = ", ".join(f"gen {gen} {count:g}" for gen, count in point.gc_per_cycle.items())
            print(
                f"      garbage collections per cycle: {gc}; of the CPU per cycle, "
                f"{point.system_per_cycle_s:.2f} s in the kernel"
            )
            if point.cpu_by_thread:
                split = ", ".join(
                    f"{group} {seconds:.2f} s"
                    for group, seconds in sorted(point.cpu_by_thread.items(), key=lambda x: -x[1])
                    if seconds >= 0.005
                )
                print(f"      CPU per cycle by thread: {split}")
            backlog = point.describe_series
            if backlog:
                print(f"      describe series: {backlog}")
            running = point.upstream_stats.get("running_described")
            if running is not None:
                print(
                    f"      running imports described per round: {running:g} of "
                    f"{fleet.running} (the rest wait for a later round); the fake's CPU "
                    f"{point.upstream_cpu_per_cycle_s:.2f} s per cycle"
                )
            if point.warm_up_s:
                print(
                    f"      warm-up (every finished import described once): {point.warm_up_s:.0f} s"
                )


def verdict_items(points: Sequence[Point]) -> list[report.Verdict]:
    items: list[report.Verdict] = []
    for point in points:
        if point.subject != "exporter" or point.upstream != "lean fake":
            continue
        what = f"exporter at {point.databases} databases"
        if point.databases == Fleet().databases:
            items.append(
                (f"{what}: CPU per cycle", point.cpu_per_cycle_s, "<=", CPU_TARGET_SECONDS, "s")
            )
            items.append((f"{what}: peak RSS", point.peak_rss_mb, "<", MANIFEST_LIMIT_MB, "MB"))
        items.append(
            (f"{what}: cycles over the interval", float(point.cycles_over_interval), "<=", 0.0, "")
        )
    return items


def print_profiles(profiler: Profiler) -> list[dict[str, Any]]:
    out = []
    for phase, seconds, gil_only in profiler.phases:
        path = profiler.directory / f"{phase}.txt"
        if not path.exists():
            continue
        print(summary(path, phase, seconds, gil_only, top=15))
        shares = layer_shares(path)
        print(
            "   share by layer: "
            + ", ".join(f"{layer} {share:.0f}%" for layer, share in shares.items())
        )
        out.append(
            {"phase": phase, "seconds": round(seconds, 1), "layers": shares, "path": str(path)}
        )
    return out


FULL_DATABASES = (50, 200)
QUICK_FLEET = Fleet(
    databases=2, collections=5, history=2, imports=20, running_imports=2, page_size=10
)


def settings_for(databases: int, args: argparse.Namespace) -> Settings:
    if args.quick:
        fleet = replace(QUICK_FLEET, databases=databases)
        return Settings(
            fleet,
            poll_interval=2.0,
            request_timeout=1.0,
            cold_cycles=1,
            warm_cycles=1,
            cycles=args.cycles or 2,
            profile_cycles=1 if args.profile else 0,
        )
    fleet = Fleet(databases=databases, page_size=args.page_size or Fleet().page_size)
    tracked = (
        LARGE_TRACKED_JOBS
        if databases * (2 * fleet.collections + fleet.running_imports) > 50_000
        else None
    )
    return Settings(
        fleet,
        max_tracked_jobs=tracked,
        cycles=args.cycles or CYCLES,
        profile_cycles=PROFILE_CYCLES if args.profile else 0,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_common_arguments(parser)
    parser.add_argument(
        "--databases", type=int, nargs="+", default=None, help="fleets to run (default 50 200)"
    )
    parser.add_argument("--cycles", type=int, default=0, help=f"measured cycles (default {CYCLES})")
    parser.add_argument("--simulator", action="store_true", help="add the built-in simulator row")
    parser.add_argument("--no-plain-loop", action="store_true", help="leave out the plain loop")
    parser.add_argument(
        "--page-size", type=int, default=0, help="import list page size (default 1000)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the exporter into DIR")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        metavar="LOAD",
        help="before each measured window, wait up to --quiet-wait seconds for the 1-minute "
        "load to fall to LOAD (the machine is shared)",
    )
    parser.add_argument("--quiet-wait", type=float, default=600.0, help="seconds (default 600)")
    args = parser.parse_args(argv)
    databases = args.databases or ([QUICK_FLEET.databases] if args.quick else list(FULL_DATABASES))
    profiler = Profiler(args.profile, native=True) if args.profile else None
    print("7. Fleet: the poll path of one round, the exporter against a plain loop")
    print(f"   load before: {os.getloadavg()[0]:.2f} (1 min)")
    points: list[Point] = []
    fleets: dict[int, Fleet] = {}
    for count in databases:
        settings = settings_for(count, args)
        if args.quiet_load is not None:
            settings = replace(settings, quiet=(args.quiet_load, args.quiet_wait))
        fleets[count] = settings.fleet
        with lean_upstream(settings.fleet) as upstream:
            points.append(run_exporter(settings, upstream, profiler))
            if not args.no_plain_loop:
                points.append(run_plain_loop(settings, upstream))
        if args.simulator:
            with simulator_upstream(settings.fleet) as upstream:
                points.append(run_exporter(replace(settings, profile_cycles=0), upstream))
    print_points(points, fleets)
    profiles = print_profiles(profiler) if profiler is not None else []
    verdicts = report.verdicts(verdict_items(points), judged=not args.quick)
    result = {
        "fleets": {str(count): asdict(fleet) for count, fleet in fleets.items()},
        "points": [asdict(point) for point in points],
        "profiles": profiles,
        "verdicts": verdicts,
    }
    path = report.save(args, "fleet", result)
    if path is not None:
        print(f"   results in {path}")
    return result


if __name__ == "__main__":
    main()
