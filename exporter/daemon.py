"""Wiring of one running exporter: poll loop -> model -> cached exposition, plus status for pages.

The loop starts a cycle every ``poll_interval`` (measured start to start). A cycle ends early
enough for its publish to be on time: the poller's round deadline is the next start minus the
longest of the last few publishes (``PUBLISH_HISTORY``; at most a quarter of the interval). The
describes fill what the lists leave of a round, so the round now lasts to near its deadline at
fleet scale and a publish slower than the last one (a loaded host) would push the cycle over. If the loop stops publishing for any reason (a bug, a blocked write, a
frozen host), ``readiness`` turns false after ``stall_after`` seconds, and the exported
``last_poll_cycle_timestamp_seconds`` stops moving for the stall alert to see.

Reloads (SIGHUP, ``POST /-/reload``) validate the new config at once, in the caller's thread, so
the caller learns whether it was accepted; the loop swaps it in between two cycles and starts a
cycle straight away. A refused config leaves the running one untouched.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest as generate_text
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from .config.loader import Config, ConfigError, load_config
from .exposition import catalogue as m
from .exposition.cache import ExpositionCache
from .exposition.families import MetricFamily
from .log import SecretRedactor, dropped_log_lines
from .memory.removals import log_lines
from .memory.state import (
    StateError,
    load_state,
    remembered_counts,
    remove_leftovers,
    save_state,
    set_aside,
)
from .metrics.model import MetricsModel
from .polling.poller import Poller
from .polling.snapshots import CycleResult
from .polling.targets import limiter_rate
from .web.status import DiscoveryStatus, ReloadResult, TargetStatus

log = structlog.get_logger("exporter.daemon")

PUBLISH_HISTORY = 5
"""Publishes whose longest is kept free at the end of each round."""
STATE_SAVE_INTERVAL_SECONDS = 60.0
"""How often the state file is rewritten (and once more at shutdown): a crash loses at most
this much of the exporter's memory, and a large file is not rewritten on every cycle."""


class _LogCollector:
    """Log lines dropped because stderr could not take them: read at every scrape, so the
    count stays true even while the poll loop is stuck."""

    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(m.LOG_LINES_DROPPED.name, m.LOG_LINES_DROPPED.help)
        family.add_metric([], float(dropped_log_lines()))
        return [family]


class _CycleAgeCollector(Collector):
    """Seconds since the last published cycle, on the monotonic clock, read at every scrape.

    The cycle timestamp follows the host's wall clock, so a host two days behind looked stalled
    to a rule comparing it with Prometheus's time; this age cannot be fooled that way, and it
    keeps growing while the poll loop is stuck (the exposition it would update is not redone).
    """

    def __init__(
        self, last_published: Callable[[], float | None], clock: Callable[[], float]
    ) -> None:
        self._last_published = last_published
        self._clock = clock

    def collect(self) -> list[GaugeMetricFamily]:
        published = self._last_published()
        if published is None:  # no cycle yet: absent, as the cycle timestamp is
            return []
        age = max(0.0, self._clock() - published)
        return [GaugeMetricFamily(m.LAST_POLL_CYCLE_AGE.name, m.LAST_POLL_CYCLE_AGE.help, age)]


def _process_registry(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_LogCollector())
    for collector in collectors:
        registry.register(collector)
    return registry


def stall_after(config: Config) -> float:
    """How long without a published cycle means polling has stalled: a cycle is published at
    most one poll interval after it starts, so two intervals plus a margin are never normal."""
    return 2 * config.poll_interval + max(10.0, config.request_timeout)


GC_THRESHOLDS = (50_000, 20, 10)
"""The collector's thresholds while serving (Python's: 700, 10, 10). A cycle at fleet scale
allocates and frees hundreds of thousands of objects; every 700 survivors a young collection
ran (200 a cycle), and what the cycle still held then was promoted, until a full collection
walked every object the exporter keeps: 0.2-0.4 s a cycle at 50 databases, a quarter of its
CPU. At 50,000 nearly all of a cycle's temporaries are freed before a collection sees them
(none reached generation 2 over many cycles), for about 20 MB more resident memory there."""


def tune_garbage_collection() -> None:
    """Set ``GC_THRESHOLDS`` (``serve`` calls it once, before the first cycle)."""
    gc.set_threshold(*GC_THRESHOLDS)


class Daemon:
    """Owns the poller, the model and the exposition cache for the current config."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        config_loader: Callable[[str], Config] = load_config,
        redactor: SecretRedactor | None = None,
    ) -> None:
        """``redactor`` (the logging one) learns the tokens of every config this daemon runs."""
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._config_loader = config_loader
        self._redactor = redactor or SecretRedactor()
        self._redactor.set_secrets(config.secrets)
        self.poller = Poller(config, clock=clock, wall_clock=wall_clock)
        self.model = MetricsModel(
            config.max_tracked_jobs,
            config.poll_interval,
            max_tracked_collections=config.max_tracked_collections,
            collection_retention=config.collection_retention,
        )
        registry = _process_registry(_CycleAgeCollector(lambda: self._last_published, clock))
        self.cache = ExpositionCache(
            live_text=lambda: generate_text(registry),
            live_openmetrics=lambda: generate_openmetrics(registry).removesuffix(b"# EOF\n"),
        )
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._status: list[TargetStatus] = []
        self._discovery_status: list[DiscoveryStatus] = []
        self._pending_config: Config | None = None
        self._reload_successful = True
        self._reload_success_time = wall_clock()
        self._publish_seconds: deque[float] = deque(maxlen=PUBLISH_HISTORY)
        """How long the last few publishes took."""
        self._last_published: float | None = None
        self._state_saved_at = -math.inf
        self._state_write_errors = 0
        self._state_saving = True
        """False when a state file that could not be used could not be kept aside either:
        saving would overwrite it."""
        self._restore_state()

    def run_cycle(self) -> CycleResult:
        """Poll everything once and publish the new exposition (only the loop thread calls it)."""
        self._apply_pending_config()
        interval = self.config.poll_interval
        budget = self.poller.poll_budget
        publish = max(self._publish_seconds, default=0.0)
        deadline = self._clock() + budget - min(publish, interval / 4)
        cycle = self.poller.poll_cycle(stop=self._stopping, deadline=deadline)
        if self._stopping.is_set():
            return cycle
        publish_started = self._clock()
        families = self.model.update(cycle, self._wall_clock())
        self._log_removals()
        self._status = self._collect_status()
        self._discovery_status = self._collect_discovery_status()
        self.cache.publish(families)
        self._last_published = self._clock()
        self.ready.set()
        del families  # the cache keeps the rendered bytes; the families can go now
        self.cache.prepare_gzip()
        self._publish_seconds.append(self._clock() - publish_started)
        self._save_state()
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
        return cycle

    def _restore_state(self) -> None:
        """Load the state file, and serve what it remembers before the first poll, so a
        restart does not make failed or stale collections vanish from /metrics. Leftovers of
        saves a kill interrupted go first; a file that cannot be used is kept aside."""
        path = self.config.state_file
        if not path:
            return
        removed = remove_leftovers(path)
        if removed:
            log.warning(
                "state.leftovers_removed",
                path=path,
                files=removed,
                why="a save was interrupted (the process was killed while it wrote the state)",
            )
        try:
            saved = load_state(path, self._wall_clock(), self.config.max_state_file_bytes)
        except StateError as error:
            self._keep_aside(path, error)
            return
        if saved is None:
            log.info("state.none_yet", path=path)
            return
        if saved.dropped:
            log.warning(
                "state.entries_dropped",
                path=path,
                dropped=saved.dropped,
                action="restored the rest",
            )
        self.model.restore(saved)
        now = self._wall_clock()
        self.model.reconcile(self.poller.targets, self.poller.watchlist, now)
        self.cache.publish(self.model.families(now))
        log.info(
            "state.restored",
            path=path,
            collections=remembered_counts(saved),
        )
        self._log_removals()

    def _log_removals(self) -> None:
        """One ``targets.removed`` line per removed (cluster, database) and cause."""
        for line in log_lines(self.model.removed):
            log.info("targets.removed", **line)
        self.model.removed = []

    def _keep_aside(self, path: str, error: StateError) -> None:
        """One line for a state file that cannot be used; keep it where no save overwrites it."""
        if error.aside is None:
            log.warning(error.event, error=str(error), action="starting without it")
            return
        aside = set_aside(path, error.aside)
        if aside is None:
            self._state_saving = False
            log.warning(
                error.event,
                error=str(error),
                action="starting without it; it could not be renamed, so no state is saved",
            )
            return
        log.warning(error.event, error=str(error), action=f"starting without it; kept as {aside}")

    def _save_state(self, force: bool = False) -> None:
        path = self.config.state_file
        if not path or not self._state_saving:
            return
        now = self._clock()
        if not force and now - self._state_saved_at < STATE_SAVE_INTERVAL_SECONDS:
            return
        try:
            save_state(
                path,
                self.model.saved_state(),
                self._wall_clock(),
                self.config.max_state_file_bytes,
            )
        except OSError as error:
            self._state_write_errors += 1
            self._republish()
            log.warning("state.write_failed", path=path, error=error.strerror or str(error))
        else:
            self._state_saved_at = now

    def readiness(self) -> tuple[bool, str]:
        """(ready, why not): not before the first cycle, and not while polling has stalled."""
        if not self.ready.is_set() or self._last_published is None:
            return False, "not ready: first poll cycle running"
        silent = self._clock() - self._last_published
        limit = stall_after(self.config)
        if silent > limit:
            return False, (
                f"not ready: no poll cycle finished for {silent:.0f}s "
                f"(more than {limit:g}s): polling has stalled"
            )
        return True, "ready"

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
        self._reload_successful = True
        self._reload_success_time = self._wall_clock()
        if config == (self._pending_config or self.config):
            self._republish()
            log.info("config.unchanged", source=source)
            return ReloadResult(True, f"reloaded {source}: no change")
        if config.listen_address != self.config.listen_address:
            log.warning(
                "config.listen_address_ignored", reason="changing listen_address needs a restart"
            )
        self._pending_config = config
        self._republish()
        log.info("config.reloaded", source=source, clusters=len(config.clusters))
        self._wake.set()
        return ReloadResult(True, f"reloaded {source}")

    def _apply_pending_config(self) -> None:
        """Swap in a reloaded config (called by the loop, between cycles)."""
        config, self._pending_config = self._pending_config, None
        if config is None or self._stopping.is_set():
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
            listed_databases=old.listed_databases,  # nor list a cluster's databases at once
            collection_lists=old.collection_lists,  # nor their collections
            parsed_records=old.parsed_records,  # nor read again what did not change
            oddities=old.oddities,  # nor say again what it said
        )
        old.close()
        self._redactor.set_secrets((*self.config.secrets, *config.secrets))
        self.config = config
        self.model.configure(
            config.max_tracked_jobs,
            config.poll_interval,
            max_tracked_collections=config.max_tracked_collections,
            collection_retention=config.collection_retention,
        )
        self._republish()

    def _republish(self) -> None:
        self.cache.publish_extra(self._reload_families())

    def _reload_families(self) -> list[MetricFamily]:
        """The config, shard and state families: they change on reload, not every cycle."""
        out = {metric: metric.family() for metric in m.CONFIG_METRICS}
        out[m.RELOAD_SUCCESSFUL].add((), 1.0 if self._reload_successful else 0.0)
        out[m.RELOAD_SUCCESS_TIME].add((), self._reload_success_time)
        out[m.SHARD_INFO].add(
            (("index", str(self.config.shard_index)), ("count", str(self.config.shard_count))), 1.0
        )
        out[m.SHARD_COUNT].add((), float(self.config.shard_count))
        out[m.POLL_INTERVAL].add((), self.config.poll_interval)
        out[m.STATE_WRITE_ERRORS].add((), float(self._state_write_errors), "_total")
        return [out[metric] for metric in m.CONFIG_METRICS]

    def start(self) -> None:
        self._republish()
        self._thread = threading.Thread(target=self._loop, name="poll-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling now: nothing new starts and requests in flight are cut."""
        self._stopping.set()
        self._wake.set()
        self.poller.close()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else 5.0)
            if not self._thread.is_alive() and self._last_published is not None:
                self._save_state(force=True)  # the loop is over: nothing else touches the model

    def _loop(self) -> None:
        next_start = self._clock()
        while not self._stopping.is_set():
            changed = False
            try:
                changed = self.run_cycle().targets_changed
            except Exception:  # the loop must outlive any bug in one cycle
                log.exception("cycle.internal_error")
            if changed:  # a discovery found new databases (or lost some): poll them now
                next_start = self._clock()
                continue
            next_start += self.config.poll_interval
            now = self._clock()
            if now > next_start:
                if now - next_start > 0.1 * self.config.poll_interval:  # not mere timer jitter
                    log.warning(
                        "cycle.overrun",
                        poll_interval_s=self.config.poll_interval,
                        late_s=round(now - next_start, 3),
                    )
                next_start = now
            if self._wake.wait(next_start - now):
                self._wake.clear()
                next_start = self._clock()
        self.poller.close()  # the one a reload may have swapped in while stop() closed the old

    def discovery_status(self) -> list[DiscoveryStatus]:
        """Pattern clusters as of the last cycle (replaced whole, safe from any thread)."""
        return self._discovery_status

    def _collect_discovery_status(self) -> list[DiscoveryStatus]:
        rows = []
        for cluster in self.config.clusters:
            if not cluster.database_patterns:
                continue
            ok, matched, reason, last_success = self.model.discovery_status(cluster.name)
            rows.append(
                DiscoveryStatus(
                    cluster.name,
                    cluster.database_patterns,
                    cluster.exclude_databases,
                    ok,
                    matched,
                    reason,
                    last_success,
                )
            )
        return rows

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
