"""Wiring of one running exporter: poll loop -> model -> cached exposition, plus status for pages.

The loop starts a cycle every ``poll_interval`` (measured start to start). A cycle that overruns
the interval is followed at once by the next, with a warning, rather than piling up.

Reloads (SIGHUP, ``POST /-/reload``) validate the new config at once, in the caller's thread, so
the caller learns whether it was accepted; the loop swaps it in between two cycles and starts a
cycle straight away. A refused config leaves the running one untouched.
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

from .config import Config, ConfigError, load_config
from .exposition import ExpositionCache
from .families import MetricFamily
from .log import redactor
from .model import MetricsModel
from .poller import CycleResult, Poller, limiter_rate

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


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str


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
        config_loader: Callable[[str], Config] = load_config,
    ) -> None:
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._config_loader = config_loader
        self.poller = Poller(config, clock=clock, wall_clock=wall_clock)
        self.model = MetricsModel(config.max_tracked_jobs, config.poll_interval)
        registry = _process_registry()
        self.cache = ExpositionCache(
            live_text=lambda: generate_text(registry),
            live_openmetrics=lambda: generate_openmetrics(registry).removesuffix(b"# EOF\n"),
        )
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: list[TargetStatus] = []
        self._pending_config: Config | None = None
        self._reload_successful = True
        self._reload_success_time = wall_clock()

    def run_cycle(self) -> CycleResult:
        """Poll everything once and publish the new exposition (only the loop thread calls it)."""
        self._apply_pending_config()
        cycle = self.poller.poll_cycle(stop=self._stopping)
        if self._stopping.is_set():
            return cycle
        families = self.model.update(cycle, self._wall_clock())
        self.cache.publish(families)
        del families  # the cache keeps the rendered bytes; the families can go now
        self.cache.prepare_gzip()
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

    def request_reload(self) -> ReloadResult:
        """Re-read the config file; apply it before the next cycle if it is valid."""
        source = self.config.source
        if source.startswith("<"):
            return ReloadResult(
                False, "this exporter runs without a config file; nothing to reload"
            )
        try:
            config = self._config_loader(source)
        except ConfigError as error:
            self._reload_successful = False
            self._republish()
            problems = str(error).splitlines()
            log.error("config.reload_failed", problems=problems)
            return ReloadResult(False, "\n".join(problems))
        for warning in config.warnings:
            log.warning("config.warning", warning=warning)
        if config.listen_address != self.config.listen_address:
            log.warning(
                "config.listen_address_ignored", reason="changing listen_address needs a restart"
            )
        self._pending_config = config
        self._reload_successful = True
        self._reload_success_time = self._wall_clock()
        self._republish()
        log.info("config.reloaded", source=source, clusters=len(config.clusters))
        self._wake.set()
        return ReloadResult(True, f"reloaded {source}")

    def _apply_pending_config(self) -> None:
        """Swap in a reloaded config (called by the loop, between cycles)."""
        config, self._pending_config = self._pending_config, None
        if config is None:
            return
        # keep the limiter (and its recent request times) unless this replica's rate changed
        limiter = self.poller.limiter if limiter_rate(config) == limiter_rate(self.config) else None
        old = self.poller
        self.poller = Poller(
            config,
            limiter=limiter,
            clock=self._clock,
            wall_clock=self._wall_clock,
            described_finished=old.described_finished,  # a reload need not describe them again
        )
        old.close()
        redactor.set_secrets((*self.config.secrets, *config.secrets))
        self.config = config
        self.model.configure(config.max_tracked_jobs, config.poll_interval)
        self._republish()

    def _republish(self) -> None:
        self.cache.publish_extra(self._reload_families())

    def _reload_families(self) -> list[MetricFamily]:
        successful = MetricFamily(
            "milvus_jobs_exporter_config_last_reload_successful",
            "gauge",
            "1 if the last config reload succeeded (or none was attempted), 0 if it was refused.",
        )
        successful.add((), 1.0 if self._reload_successful else 0.0)
        when = MetricFamily(
            "milvus_jobs_exporter_config_last_reload_success_timestamp_seconds",
            "gauge",
            "When the config was last loaded successfully (Unix time).",
        )
        when.add((), self._reload_success_time)
        shard = MetricFamily(
            "milvus_jobs_exporter_shard_info",
            "gauge",
            "This replica's shard: it polls the targets whose stable hash modulo count is index.",
        )
        shard.add(
            (("index", str(self.config.shard_index)), ("count", str(self.config.shard_count))), 1.0
        )
        return [successful, when, shard]

    def start(self) -> None:
        self._republish()
        self._thread = threading.Thread(target=self._loop, name="poll-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling: no new requests start; those in flight end within the request timeout."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.config.request_timeout + 2.0)
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
            if self._wake.wait(next_start - now):
                self._wake.clear()
                next_start = self._clock()

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
