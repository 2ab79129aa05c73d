"""The stock prometheus_client alternative, served in a process of its own for comparison.

What an exporter written the textbook way does (the custom-collector pattern of the
prometheus_client docs): the job records are fetched once, through the same ``MilvusClient``,
and a ``Collector`` builds ``GaugeMetricFamily`` objects for the same refresh families from them
on every ``collect()``; ``prometheus_client.start_http_server`` answers each scrape with
``generate_latest(registry)`` (gzip-compressed when asked). Prints one line when listening::

    ready 127.0.0.1:40125 jobs=100000 fetch_s=3.10

    python -m benchmarks.stock --endpoint http://127.0.0.1:40123 --databases 50 --port 0
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.upstream.client import MilvusClient
from exporter.upstream.records import REFRESH_STATES, RefreshJob

from .upstream import READY_PREFIX, database_names, stop_on_signals, token_names

JOB_LABELS = ["milvus_cluster", "database", "collection", "job_id"]


@dataclass(frozen=True)
class Listing:
    """The refresh jobs of one database as one poll found them."""

    cluster: str
    database: str
    polled_at: float
    jobs: tuple[RefreshJob, ...]


class RefreshJobsCollector(Collector):
    """Per-job and per-collection refresh families, rebuilt from the records at every scrape.

    Sample output::

        milvus_refresh_job_progress_ratio{milvus_cluster="bench-00",database="db000",collection="ext_books",job_id="449503829998244842"} 0.42
        milvus_refresh_job_state{...,job_id="449503829998244842",state="RefreshInProgress"} 1.0
        milvus_refresh_jobs{milvus_cluster="bench-00",database="db000",collection="ext_books",state="RefreshInProgress"} 100.0
        milvus_jobs_exporter_target_up{milvus_cluster="bench-00",database="db000",kind="refresh"} 1.0
    """

    def __init__(self, listings: list[Listing]) -> None:
        self._listings = listings

    def collect(self) -> Iterator[Metric]:
        progress = GaugeMetricFamily(
            "milvus_refresh_job_progress_ratio",
            "Progress of a refresh job, 0 to 1.",
            labels=JOB_LABELS,
        )
        state = GaugeMetricFamily(
            "milvus_refresh_job_state",
            "Refresh job state: 1 for the current state, else 0.",
            labels=[*JOB_LABELS, "state"],
        )
        start = GaugeMetricFamily(
            "milvus_refresh_job_start_timestamp_seconds",
            "When a refresh job started.",
            labels=JOB_LABELS,
        )
        end = GaugeMetricFamily(
            "milvus_refresh_job_end_timestamp_seconds",
            "When a refresh job ended.",
            labels=JOB_LABELS,
        )
        duration = GaugeMetricFamily(
            "milvus_refresh_job_duration_seconds",
            "End (or poll time) minus start.",
            labels=JOB_LABELS,
        )
        failure = GaugeMetricFamily(
            "milvus_refresh_job_failure_info",
            "Failure reason of a failed refresh job.",
            labels=[*JOB_LABELS, "reason"],
        )
        counts = GaugeMetricFamily(
            "milvus_refresh_jobs",
            "Number of listed refresh jobs per collection and state.",
            labels=["milvus_cluster", "database", "collection", "state"],
        )
        up = GaugeMetricFamily(
            "milvus_jobs_exporter_target_up",
            "1 if the last poll of the target succeeded, else 0.",
            labels=["milvus_cluster", "database", "kind"],
        )
        for listing in self._listings:
            up.add_metric([listing.cluster, listing.database, "refresh"], 1.0)
            per_collection: dict[str, Counter[str]] = {}
            for job in listing.jobs:
                per_collection.setdefault(job.collection, Counter())[job.state] += 1
                labels = [listing.cluster, listing.database, job.collection, str(job.job_id)]
                progress.add_metric(labels, job.progress_ratio)
                for state_name in REFRESH_STATES:
                    state.add_metric([*labels, state_name], 1.0 if job.state == state_name else 0.0)
                if job.start_time is not None:
                    start.add_metric(labels, job.start_time)
                    finish = job.end_time if job.finished else listing.polled_at
                    if finish is not None:
                        duration.add_metric(labels, max(0.0, finish - job.start_time))
                if job.end_time is not None:
                    end.add_metric(labels, job.end_time)
                if job.state == "RefreshFailed":
                    failure.add_metric([*labels, job.reason or "unknown"], 1.0)
            for collection, by_state in sorted(per_collection.items()):
                for state_name in REFRESH_STATES:
                    counts.add_metric(
                        [listing.cluster, listing.database, collection, state_name],
                        float(by_state.get(state_name, 0)),
                    )
        yield from (progress, state, start, end, duration, failure, counts, up)


def fetch_listings(endpoint: str, clusters: int, databases: int) -> list[Listing]:
    """One list request per (cluster, database), sequentially: the upstream has no limit here."""
    listings = []
    with requests.Session() as session:
        for index, token in enumerate(token_names(clusters)):
            client = MilvusClient(endpoint, token, session, 60.0)
            for database in database_names(databases):
                polled_at = time.time()
                jobs = client.list_refresh_jobs(database).jobs
                listings.append(Listing(f"bench-{index:02d}", database, polled_at, jobs))
    return listings


def build_registry(listings: list[Listing]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RefreshJobsCollector(listings))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    stop = stop_on_signals()
    started = time.monotonic()
    listings = fetch_listings(args.endpoint, args.clusters, args.databases)
    fetch_seconds = time.monotonic() - started
    jobs = sum(len(listing.jobs) for listing in listings)
    server, thread = start_http_server(args.port, "127.0.0.1", build_registry(listings))
    port = server.server_address[1]
    print(f"{READY_PREFIX}127.0.0.1:{port} jobs={jobs} fetch_s={fetch_seconds:.2f}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    thread.join(timeout=5)


if __name__ == "__main__":
    main()
