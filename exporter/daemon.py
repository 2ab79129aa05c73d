"""Wiring of one running exporter: poll loop -> model -> cached exposition, plus status for pages.

The loop starts a cycle every ``poll_interval`` (measured start to start). A cycle that overruns
the interval is followed at once by the next, with a warning, rather than piling up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from .config import Config
from .exposition import ExpositionCache
from .model import MetricsModel
from .poller import CycleResult, Poller

log = structlog.get_logger("exporter.daemon")


@dataclass(frozen=True)
class TargetStatus:
    """One row of the landing page."""

    cluster: str
    database: str
    kind: str
    up: bool
    reason: str
    last_success: float | None


def _process_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class Daemon:
    """Owns the poller, the model and the exposition cache for the current config."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self.poller = Poller(config, clock=clock, wall_clock=wall_clock)
        self.model = MetricsModel(config.max_tracked_jobs, config.poll_interval)
        registry = _process_registry()
        self.cache = ExpositionCache(
            live_text=lambda: generate_text(registry),
            live_openmetrics=lambda: generate_openmetrics(registry).removesuffix(b"# EOF\n"),
        )
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._cycle_lock = threading.Lock()
        self._status: list[TargetStatus] = []

    def run_cycle(self) -> CycleResult:
        """Poll everything once and publish the new exposition."""
        with self._cycle_lock:
            cycle = self.poller.poll_cycle()
            families = self.model.update(cycle, self._wall_clock())
            self.cache.publish(families)
            self._status = self._collect_status()
        failed = sum(1 for snapshot in cycle.snapshots if not snapshot.ok)
        log.info(
            "cycle.finished",
            targets=len(cycle.snapshots),
            failed=failed,
            requests=len(cycle.requests),
            ms=round(cycle.seconds * 1000),
            untracked_jobs=self.model.untracked_jobs,
        )
        if self.model.untracked_jobs:
            log.warning(
                "cycle.jobs_untracked",
                untracked_jobs=self.model.untracked_jobs,
                max_tracked_jobs=self.config.max_tracked_jobs,
            )
        self.ready.set()
        return cycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="poll-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the cycle in flight; in-flight requests end within the request timeout."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.config.request_timeout + 1.0)
        self.poller.close()

    def _loop(self) -> None:
        next_start = self._clock()
        while not self._stopping.is_set():
            try:
                self.run_cycle()
            except Exception:  # the loop must outlive any bug in one cycle
                log.exception("cycle.internal_error")
            next_start += self.config.poll_interval
            now = self._clock()
            if now > next_start:
                log.warning(
                    "cycle.overrun",
                    poll_interval_s=self.config.poll_interval,
                    late_s=round(now - next_start, 3),
                )
                next_start = now
            self._stopping.wait(next_start - now)

    def status(self) -> list[TargetStatus]:
        """Target rows as of the last cycle (a list replaced whole, safe to read from any thread)."""
        return self._status

    def _collect_status(self) -> list[TargetStatus]:
        return [
            TargetStatus(
                cluster=state.target.cluster.name,
                database=state.target.database,
                kind=state.target.kind,
                up=state.up,
                reason=state.reason,
                last_success=state.last_success_time,
            )
            for state in self.model.target_status()
        ]
