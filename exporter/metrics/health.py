"""What the exporter says about itself: targets up or down, poll errors, requests, cycles.

Counters and histograms here live as long as their target or cluster is configured; they are
filled from each cycle's result and rendered into the families declared in ``catalogue.py``
(``HEALTH_METRICS``), in that order.

    milvus_jobs_exporter_target_up{milvus_cluster="prod",database="default",kind="refresh"} 1.0
    milvus_jobs_exporter_poll_errors_total{...,kind="import",reason="timeout"} 3.0
    milvus_jobs_exporter_poll_cycles_total 42.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import __version__
from ..exposition import catalogue as m
from ..exposition.families import HistogramState, MetricFamily, histogram_family
from ..polling.describes import Backlog
from ..polling.kept import LIMITS
from ..polling.snapshots import CycleResult, Snapshot
from ..polling.targets import TargetKey

API_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class TargetRow:
    """One target as the health families show it."""

    key: TargetKey
    up: bool
    reason: str
    last_success_time: float | None
    unkept: Mapping[str, int] | None = None
    """Listed jobs its last good poll left out, by limit; None before a good poll."""


class ExporterHealth:
    """Cross-cycle counters about polling itself (not about jobs)."""

    def __init__(self) -> None:
        self._poll_errors: Counter[tuple[str, str, str, str]] = Counter()
        self._skipped_records: Counter[tuple[str, str, str, str]] = Counter()
        self._api_requests: Counter[tuple[str, str, str]] = Counter()
        self._api_latency: dict[tuple[str, str], HistogramState] = {}
        self._clock_skew: dict[str, float] = {}
        """Per cluster: its clock minus ours at its latest answer with a ``Date``."""
        self._discovery: dict[str, tuple[bool, int, float | None]] = {}
        """Per pattern cluster: (last discovery ok, databases matched, last success time)."""
        self._discovery_skipped: dict[str, tuple[int, int]] = {}
        """Per pattern cluster, at its last successful discovery: matched databases not
        polled, (past max_discovered_databases, names too long)."""
        self._discovery_errors: Counter[tuple[str, str]] = Counter()
        self._discovery_reasons: dict[str, str] = {}
        self.cycles = 0
        self._late_targets = 0
        self._last_cycle_seconds = 0.0
        self._last_cycle_end = 0.0
        self._describe_backlog: tuple[Backlog, ...] = ()

    def forget(self, targets: set[TargetKey]) -> None:
        """Drop what belongs to targets (and clusters) no longer configured."""
        clusters = {key[0] for key in targets}
        self._poll_errors = Counter(
            {k: v for k, v in self._poll_errors.items() if k[:3] in targets}
        )
        self._skipped_records = Counter(
            {k: v for k, v in self._skipped_records.items() if k[:3] in targets}
        )
        self._api_requests = Counter(
            {k: v for k, v in self._api_requests.items() if k[0] in clusters}
        )
        self._api_latency = {k: v for k, v in self._api_latency.items() if k[0] in clusters}
        self._clock_skew = {k: v for k, v in self._clock_skew.items() if k in clusters}

    def record_snapshot(self, snapshot: Snapshot) -> None:
        cluster, database, kind = snapshot.target.key
        if not snapshot.ok:
            self._poll_errors[(cluster, database, kind, snapshot.reason)] += 1
            return
        for reason, count, _message in snapshot.skipped_records:
            self._skipped_records[(cluster, database, kind, reason)] += count

    def record_cycle(self, cycle: CycleResult, now: float) -> None:
        for request in cycle.requests:
            record = request.record
            self._api_requests[(request.cluster, record.api, record.outcome)] += 1
            latency = self._api_latency.setdefault(
                (request.cluster, record.api), HistogramState(API_LATENCY_BUCKETS)
            )
            latency.observe(record.seconds)
            if record.clock_skew is not None:
                self._clock_skew[request.cluster] = record.clock_skew
        for outcome in cycle.discoveries:
            _ok, matched, last_success = self._discovery.get(outcome.cluster, (False, 0, None))
            self._discovery_reasons[outcome.cluster] = outcome.reason
            if outcome.ok:
                self._discovery[outcome.cluster] = (True, len(outcome.matched), outcome.at)
                self._discovery_skipped[outcome.cluster] = (outcome.over_limit, outcome.too_long)
            else:
                self._discovery[outcome.cluster] = (False, matched, last_success)
                self._discovery_errors[(outcome.cluster, outcome.reason)] += 1
        clusters = set(cycle.discovery_clusters)
        self._discovery = {k: v for k, v in self._discovery.items() if k in clusters}
        self._discovery_skipped = {
            k: v for k, v in self._discovery_skipped.items() if k in clusters
        }
        self._discovery_errors = Counter(
            {k: v for k, v in self._discovery_errors.items() if k[0] in clusters}
        )
        self.cycles += 1
        self._late_targets = len(cycle.late)
        self._describe_backlog = cycle.describe_backlog
        self._last_cycle_seconds = cycle.seconds
        self._last_cycle_end = now

    def discovery(self, cluster: str) -> tuple[bool | None, int, str, float | None]:
        """(last discovery ok or None if none ended yet, databases matched, reason, last success)."""
        if cluster not in self._discovery:
            return None, 0, "", None
        ok, matched, last_success = self._discovery[cluster]
        return ok, matched, self._discovery_reasons.get(cluster, ""), last_success

    def families(
        self,
        rows: Iterable[TargetRow],
        tracked_collections: int,
        forgotten_collections: Counter[str],
        untracked_jobs: int,
        untracked_collections: int = 0,
    ) -> list[MetricFamily]:
        out = {metric: metric.family() for metric in m.HEALTH_METRICS}
        for row in sorted(rows, key=lambda row: row.key):
            labels = (
                ("milvus_cluster", row.key[0]),
                ("database", row.key[1]),
                ("kind", row.key[2]),
            )
            out[m.TARGET_UP].add(labels, 1.0 if row.up else 0.0)
            if not row.up and row.reason:
                out[m.TARGET_ERROR].add((*labels, ("reason", row.reason)), 1.0)
            if row.last_success_time is not None:
                out[m.TARGET_LAST_SUCCESS].add(labels, row.last_success_time)
            if row.unkept is not None:
                for limit in LIMITS:
                    out[m.UNKEPT_JOBS].add(
                        (*labels, ("limit", limit)), float(row.unkept.get(limit, 0))
                    )
        for metric, counts in (
            (m.POLL_ERRORS, self._poll_errors),
            (m.SKIPPED_RECORDS, self._skipped_records),
        ):
            for (cluster, database, kind, reason), count in sorted(counts.items()):
                out[metric].add(
                    (
                        ("milvus_cluster", cluster),
                        ("database", database),
                        ("kind", kind),
                        ("reason", reason),
                    ),
                    float(count),
                    "_total",
                )
        out[m.TRACKED_COLLECTIONS].add((), float(tracked_collections))
        for reason in ("retention", "limit", "dropped"):
            out[m.FORGOTTEN_COLLECTIONS].add(
                (("reason", reason),), float(forgotten_collections[reason]), "_total"
            )
        for (cluster, api, outcome), count in sorted(self._api_requests.items()):
            out[m.API_REQUESTS].add(
                (("milvus_cluster", cluster), ("api", api), ("outcome", outcome)),
                float(count),
                "_total",
            )
        out[m.API_REQUEST_DURATION] = histogram_family(
            m.API_REQUEST_DURATION.name,
            m.API_REQUEST_DURATION.help,
            [
                ((("milvus_cluster", c), ("api", a)), h)
                for (c, a), h in sorted(self._api_latency.items())
            ],
        )
        for cluster, skew in sorted(self._clock_skew.items()):
            out[m.UPSTREAM_CLOCK_SKEW].add((("milvus_cluster", cluster),), round(skew, 3))
        out[m.POLL_CYCLE_DURATION].add((), self._last_cycle_seconds)
        out[m.POLL_CYCLES].add((), float(self.cycles), "_total")
        if self.cycles:  # no cycle yet (a state file was just restored): no time to show
            out[m.LAST_POLL_CYCLE].add((), self._last_cycle_end)
        out[m.LATE_TARGETS].add((), float(self._late_targets))
        for backlog in self._describe_backlog:
            pairs = (("milvus_cluster", backlog.cluster), ("kind", backlog.kind))
            out[m.DESCRIBE_BACKLOG].add(pairs, float(backlog.waiting))
            out[m.DESCRIBE_BACKLOG_OLDEST_AGE].add(pairs, round(backlog.oldest_age, 3))
        out[m.UNTRACKED_JOBS].add((), float(untracked_jobs))
        out[m.UNTRACKED_COLLECTIONS].add((), float(untracked_collections))
        out[m.BUILD_INFO].add((("version", __version__),), 1.0)
        discovery = {metric: metric.family() for metric in m.DISCOVERY_METRICS}
        for cluster, (ok, matched, last_success) in sorted(self._discovery.items()):
            cluster_labels = (("milvus_cluster", cluster),)
            discovery[m.DISCOVERED_DATABASES].add(cluster_labels, float(matched))
            discovery[m.DISCOVERY_UP].add(cluster_labels, 1.0 if ok else 0.0)
            if last_success is not None:
                discovery[m.LAST_DISCOVERY_SUCCESS].add(cluster_labels, last_success)
            if cluster in self._discovery_skipped:
                over_limit, too_long = self._discovery_skipped[cluster]
                for reason, count in (("limit", over_limit), ("name_too_long", too_long)):
                    discovery[m.DISCOVERY_SKIPPED].add(
                        (*cluster_labels, ("reason", reason)), float(count)
                    )
        for (cluster, reason), count in sorted(self._discovery_errors.items()):
            discovery[m.DISCOVERY_ERRORS].add(
                (("milvus_cluster", cluster), ("reason", reason)), float(count), "_total"
            )
        return [
            *(out[metric] for metric in m.HEALTH_METRICS),
            *(discovery[metric] for metric in m.DISCOVERY_METRICS),
        ]
