"""Polling throughput under the rate limit, against the simulator on 127.0.0.1.

The simulator, in a process of its own, answers each request after 100 ms and enforces
20 requests/s per (token, path); its request log (read through its control route) gives the
rejections and the most requests that arrived within any one second.
The exporter's poller (scheduler + worker pool + strict sliding window) is compared with the
obvious alternative, a sequential loop that waits for each answer before sending the next request
(under the same limiter), in the same run. The bound for N databases under one token is
1.1 x N / 20 s (the limiter's 1.1 s window holds 20 requests); two tokens have a window each,
so they should take the time of one, not the sum.

    python -m benchmarks.polling [--quick] [--databases 60] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import requests

from exporter.config.loader import ClusterConfig, Config
from exporter.log import configure_logging
from exporter.polling.poller import Poller
from exporter.upstream.client import MilvusClient
from exporter.upstream.ratelimit import SlidingWindowLimiter

from . import report
from .harness import World, upstream
from .upstream import database_names, token_names

RATE_LIMIT = 20
BOUND_FACTOR = 1.1
QUICK_DATABASES = 5
QUICK_LATENCY = 0.02


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    rejected: int
    busiest_window: int
    last_arrival: float
    """When the last request arrived upstream, in seconds after the first one did."""
    tokens: int = 1
    parallel: bool = True
    """False for the naive loop, which is shown as the baseline and held to no bound."""

    @property
    def per_second_per_token(self) -> float:
        return self.requests / self.tokens / self.seconds if self.seconds else 0.0


def bound_seconds(databases: int) -> float:
    return BOUND_FACTOR * databases / RATE_LIMIT


def _request_log(endpoint: str) -> list[dict[str, Any]]:
    """What the simulator saw, through its control route (it runs in its own process)."""
    answer = requests.get(f"{endpoint}/_simulator/requests", timeout=30)
    answer.raise_for_status()
    return [record for record in answer.json()["requests"] if record["path"].startswith("/v2/")]


def _measure(
    name: str,
    endpoint: str,
    run: Callable[[], object],
    tokens: int = 1,
    parallel: bool = True,
) -> Result:
    requests.delete(f"{endpoint}/_simulator/requests", timeout=30).raise_for_status()
    started = time.monotonic()
    run()
    seconds = time.monotonic() - started
    log = _request_log(endpoint)
    rejected = sum(1 for record in log if record["status"] == 429 or record["code"] in (8, 1807))
    busiest = 0
    by_key: dict[tuple[str, str], list[float]] = {}
    for record in log:
        by_key.setdefault((record["token"], record["path"]), []).append(record["arrival"])
    for arrivals in by_key.values():
        arrivals.sort()
        for index, start in enumerate(arrivals):
            count = sum(1 for moment in arrivals[index:] if moment < start + 1.0)
            busiest = max(busiest, count)
    arrivals = [record["arrival"] for record in log]
    spread = max(arrivals) - min(arrivals) if arrivals else 0.0
    return Result(name, len(log), seconds, rejected, busiest, spread, tokens, parallel)


def run(databases: int = 60, latency: float = 0.1) -> list[Result]:
    """The simulator runs in a process of its own (``benchmarks.upstream``); the poller here."""
    world = World(
        databases=databases,
        collections=2,
        history=2,
        imports=2,
        tokens=2,
        latency=latency,
        requests_per_second=RATE_LIMIT,
    )
    names = database_names(databases)
    tokens = token_names(2)
    results = []
    with upstream(world) as endpoint:

        def config(chosen: tuple[str, ...]) -> Config:
            clusters = tuple(
                ClusterConfig(
                    name=f"c{index}",
                    endpoint=endpoint,
                    token=token,
                    databases=names,
                    jobs=("refresh",),
                )
                for index, token in enumerate(chosen)
            )
            return Config(
                clusters=clusters, poll_interval=600.0, request_timeout=5.0, max_retries=0
            )

        for label, chosen in (
            ("poller, 1 token", tokens[:1]),
            ("poller, 2 tokens in parallel", tokens),
        ):
            poller = Poller(config(chosen))
            try:
                results.append(_measure(label, endpoint, poller.poll_cycle, len(chosen)))
            finally:
                poller.close()

        def sequential() -> None:
            limiter = SlidingWindowLimiter(RATE_LIMIT)
            with requests.Session() as session:
                client = MilvusClient(
                    endpoint, tokens[0], session, 5.0, gate=lambda api: limiter.acquire(api)
                )
                for database in names:
                    client.list_refresh_jobs(database)

        results.append(
            _measure("naive sequential loop, 1 token", endpoint, sequential, parallel=False)
        )
    return results


def as_json(results: list[Result], databases: int, latency: float) -> dict[str, Any]:
    return {
        "databases_per_token": databases,
        "latency_s": latency,
        "requests_per_second": RATE_LIMIT,
        "bound_s": bound_seconds(databases),
        "methods": [
            {**asdict(result), "per_second_per_token": result.per_second_per_token}
            for result in results
        ],
    }


def print_table(
    results: list[Result], databases: int, latency: float, judged: bool = True
) -> list[dict[str, Any]]:
    """Print the table and the targets; return the verdicts."""
    bound = bound_seconds(databases)
    print(
        f"2. Polling {databases} databases per token; upstream answers after "
        f"{latency * 1000:.0f} ms and allows {RATE_LIMIT} requests/s per token and path"
    )
    report.table(
        [
            "method",
            "requests",
            "cycle s",
            "bound s",
            "last sent s",
            "req/s/token",
            "429s",
            "most in any 1 s",
        ],
        [
            [
                result.name,
                str(result.requests),
                f"{result.seconds:.2f}",
                f"{bound:.2f}" if result.parallel else "-",
                f"{result.last_arrival:.2f}",
                f"{result.per_second_per_token:.1f}",
                str(result.rejected),
                str(result.busiest_window),
            ]
            for result in results
        ],
    )
    print(
        f"   bound = {BOUND_FACTOR} x {databases} / {RATE_LIMIT} s per token; last sent = arrival "
        "of the last request after the first, upstream's clock (then one latency to the answer)"
    )
    return report.verdicts(
        [
            (f"{result.name}: cycle", result.seconds, "<=", bound, "s")
            for result in results
            if result.parallel
        ]
        + [
            (f"{result.name}: rate-limit rejections", float(result.rejected), "<=", 0.0, "")
            for result in results
        ],
        judged,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    report.add_common_arguments(parser)
    parser.add_argument("--databases", type=int, default=None, help="per token (default 60)")
    parser.add_argument("--latency", type=float, default=None, help="seconds (default 0.1)")
    args = parser.parse_args(argv)
    databases = args.databases or (QUICK_DATABASES if args.quick else 60)
    latency = args.latency if args.latency is not None else QUICK_LATENCY if args.quick else 0.1
    configure_logging("error", "console")
    results = run(databases, latency)
    result = as_json(results, databases, latency)
    result["verdicts"] = print_table(results, databases, latency, judged=not args.quick)
    report.save(args, "polling", result)
    return result


if __name__ == "__main__":
    main()
