"""Small builders shared by the unit tests of the model and the exposition."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.loader import ClusterConfig, Config
from exporter.exposition.cache import render
from exporter.exposition.families import MetricFamily
from exporter.polling.snapshots import CycleResult, Snapshot
from exporter.polling.targets import Target
from exporter.upstream.records import ImportJob, RefreshJob

CLUSTER = ClusterConfig(name="prod", endpoint="http://127.0.0.1:1", token="secret-token")
REFRESH = Target(CLUSTER, "default", "refresh")
IMPORT = Target(CLUSTER, "default", "import")
T0 = 1_700_000_000.0


def config(**overrides: object) -> Config:
    values: dict[str, object] = {"clusters": (CLUSTER,)}
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


def refresh_job(
    job_id: int,
    state: str,
    collection: str = "ext_books",
    progress: float = 0.5,
    start: float | None = T0,
    end: float | None = None,
    reason: str = "",
) -> RefreshJob:
    return RefreshJob(job_id, collection, state, progress, start, end, reason)


def import_job(
    job_id: str, state: str, collection: str = "books", progress: float = 0.5, reason: str = ""
) -> ImportJob:
    return ImportJob(job_id, collection, state, progress, reason)


def ok(
    target: Target,
    at: float,
    refresh: tuple[RefreshJob, ...] = (),
    imports: tuple[ImportJob, ...] = (),
) -> Snapshot:
    return Snapshot(target=target, polled_at=at, ok=True, jobs=(*refresh, *imports))


def failed(target: Target, at: float, reason: str = "timeout") -> Snapshot:
    return Snapshot(target=target, polled_at=at, ok=False, reason=reason, message="no answer")


def cycle(
    *snapshots: Snapshot, targets: tuple[Target, ...] = (REFRESH, IMPORT), at: float = T0
) -> CycleResult:
    return CycleResult(
        targets=targets, snapshots=snapshots, requests=(), started_at=at, seconds=0.25
    )


def samples(families: list[MetricFamily]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Render and parse back, as Prometheus would read the page: {(name, labels): value}."""
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(render(families)):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def value(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    """The value of the one series with exactly these labels, or None if it is absent."""
    return parsed.get((name, frozenset(labels.items())))


def series(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> list[dict[str, str]]:
    return [dict(labels) for (sample_name, labels) in parsed if sample_name == name]


def wait_for_simulator(url: str, timeout: float = 20.0) -> None:
    """Wait until a simulator process started on ``url`` answers its health check."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/_simulator/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the simulator did not start"
        time.sleep(0.1)
