"""Polling throughput under the rate limit, against the simulator on 127.0.0.1.

The simulator answers each request after 100 ms and enforces 20 requests/s per (token, path).
The exporter's poller (scheduler + worker pool + strict sliding window) is compared with the
obvious alternative, a sequential loop that waits for each answer before sending the next request
(under the same limiter), in the same run.

    python -m benchmarks.polling [--databases 60] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from exporter.client import MilvusClient
from exporter.config import ClusterConfig, Config
from exporter.log import configure_logging
from exporter.poller import Poller
from exporter.ratelimit import SlidingWindowLimiter
from exporter.simulator import Simulator, SimulatorOptions

TOKENS = ("bench-token-one", "bench-token-two")
RATE_LIMIT = 20


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    rejected: int
    busiest_window: int
    tokens: int = 1

    @property
    def per_second_per_token(self) -> float:
        return self.requests / self.tokens / self.seconds if self.seconds else 0.0


def _simulator(databases: int, latency: float) -> Simulator:
    names = tuple(f"db{index:03d}" for index in range(databases))
    return Simulator(
        SimulatorOptions(
            seed=1,
            tokens=TOKENS,
            databases=names,
            collections_per_database=2,
            refresh_jobs_per_collection=2,
            import_jobs_per_database=2,
            latency_seconds=latency,
            requests_per_second=RATE_LIMIT,
        )
    )


def _measure(name: str, simulator: Simulator, run: Callable[[], object], tokens: int = 1) -> Result:
    simulator.clear_request_log()
    started = time.monotonic()
    run()
    seconds = time.monotonic() - started
    log = [record for record in simulator.request_log() if record.path.startswith("/v2/")]
    rejected = sum(1 for record in log if record.status == 429 or record.code in (8, 1807))
    busiest = 0
    by_key: dict[tuple[str, str], list[float]] = {}
    for record in log:
        by_key.setdefault((record.token, record.path), []).append(record.arrival)
    for arrivals in by_key.values():
        arrivals.sort()
        for index, start in enumerate(arrivals):
            count = sum(1 for moment in arrivals[index:] if moment < start + 1.0)
            busiest = max(busiest, count)
    return Result(name, len(log), seconds, rejected, busiest, tokens)


def run(databases: int = 60, latency: float = 0.1) -> list[Result]:
    simulator = _simulator(databases, latency)
    names = tuple(f"db{index:03d}" for index in range(databases))
    results = []
    with simulator.serve("127.0.0.1", 0) as upstream:

        def config(tokens: tuple[str, ...]) -> Config:
            clusters = tuple(
                ClusterConfig(
                    name=f"c{index}",
                    endpoint=upstream.url,
                    token=token,
                    databases=names,
                    jobs=("refresh",),
                )
                for index, token in enumerate(tokens)
            )
            return Config(
                clusters=clusters, poll_interval=600.0, request_timeout=5.0, max_retries=0
            )

        for label, tokens in (
            ("poller, 1 token", TOKENS[:1]),
            ("poller, 2 tokens in parallel", TOKENS),
        ):
            poller = Poller(config(tokens))
            try:
                results.append(_measure(label, simulator, poller.poll_cycle, len(tokens)))
            finally:
                poller.close()

        def sequential() -> None:
            limiter = SlidingWindowLimiter(RATE_LIMIT)
            with requests.Session() as session:
                client = MilvusClient(
                    upstream.url, TOKENS[0], session, 5.0, gate=lambda api: limiter.acquire(api)
                )
                for database in names:
                    client.list_refresh_jobs(database)

        results.append(_measure("naive sequential loop, 1 token", simulator, sequential))
    return results


def print_table(results: list[Result], databases: int, latency: float) -> None:
    print(
        f"Polling {databases} databases per token, upstream latency {latency * 1000:.0f} ms, limit {RATE_LIMIT}/s per token and path"
    )
    print(
        f"{'method':34} {'requests':>8} {'cycle s':>8} {'req/s/token':>11} {'bound s':>8} {'429s':>5} {'max in any 1 s':>14}"
    )
    bound = 1.1 * databases / RATE_LIMIT
    for result in results:
        print(
            f"{result.name:34} {result.requests:8d} {result.seconds:8.2f} {result.per_second_per_token:11.1f} "
            f"{bound:8.2f} {result.rejected:5d} {result.busiest_window:14d}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args(argv)
    configure_logging("error", "console")
    print_table(run(args.databases, args.latency), args.databases, args.latency)


if __name__ == "__main__":
    main()
