"""Small builders shared by the unit tests of the model and the exposition."""

from __future__ import annotations

import subprocess
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


def wait_until_answered(
    url: str,
    failure: str,
    timeout: float,
    *,
    request_timeout: float = 1.0,
    pause: float = 0.1,
    process: subprocess.Popen[str] | None = None,
) -> None:
    """Ask ``url`` until it answers 200 within ``timeout`` (a refused or slow answer is asked
    again); ``failure`` says what did not happen. With ``process``, its exit fails at once."""
    deadline = time.monotonic() + timeout
    while True:
        assert process is None or process.poll() is None, (
            f"the exporter exited with {process.returncode}"
        )
        try:
            if requests.get(url, timeout=request_timeout).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, failure
        time.sleep(pause)


def wait_for_simulator(url: str, timeout: float = 20.0) -> None:
    """Wait until a simulator process started on ``url`` answers its health check."""
    wait_until_answered(f"{url}/_simulator/health", "the simulator did not start", timeout)
