"""Time from starting the exporter process to its first 200 on /readyz (the first cycle done).

100 targets: 10 clusters (one token each) x 5 databases x 2 kinds, against a fast upstream (no
added latency) that enforces 20 requests/s per (token, path). Each database holds 4 external
collections with 3 finished refreshes each and 5 imports. The same upstream serves three
exporter starts in a row; the median is the figure. "listening" is the first HTTP answer of
any kind: interpreter start, imports and config loading.

    python -m benchmarks.startup [--quick] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from . import report
from .harness import Deployment, World, exporter, health_of, upstream

RATE_LIMIT = 20
BOUND_FACTOR = 1.1
READY_TARGET_S = 2.0
HEADERS = [
    "run",
    "listening s",
    "ready s",
    "poll s",
    "requests",
    "busiest window",
    "bound s",
    "up",
    "429s",
]


def run(clusters: int = 10, databases: int = 5, runs: int = 3) -> dict[str, Any]:
    world = World(
        databases=databases,
        collections=4,
        history=3,
        imports=5,
        tokens=clusters,
        requests_per_second=RATE_LIMIT,
    )
    deployment = Deployment(clusters=clusters, databases=databases, kinds=("refresh", "import"))
    starts = []
    with upstream(world) as endpoint:
        for _ in range(runs):
            with exporter(deployment, endpoint) as running:
                startup = running.wait_ready()
                health = health_of(running.client.get(running.port, "/metrics").body)
            busiest = max(health.requests.values(), default=0)
            starts.append(
                {
                    "listening_s": startup.listening_seconds,
                    "ready_s": startup.ready_seconds,
                    "poll_s": health.poll_cycle_seconds,
                    "requests": sum(health.requests.values()),
                    "busiest_window": busiest,
                    "bound_s": BOUND_FACTOR * busiest / RATE_LIMIT,
                    "targets_up": health.targets_up,
                    "rate_limited": health.rate_limited_requests,
                }
            )
    return {
        "targets": deployment.targets,
        "clusters": clusters,
        "databases": databases,
        "runs": starts,
        "ready_median_s": statistics.median(start["ready_s"] for start in starts),
        "listening_median_s": statistics.median(start["listening_s"] for start in starts),
        "target_ready_below_s": READY_TARGET_S,
    }


def print_table(result: dict[str, Any], judged: bool = True) -> list[dict[str, Any]]:
    """Print the table and the target; return the verdict."""
    print(
        f"4. Startup: process start to first 200 on /readyz, {result['targets']} targets "
        f"({result['clusters']} tokens x {result['databases']} databases x 2 kinds), fast upstream "
        f"with {RATE_LIMIT} requests/s per token and path"
    )
    report.table(
        HEADERS,
        [
            [
                str(index + 1),
                f"{start['listening_s']:.2f}",
                f"{start['ready_s']:.2f}",
                f"{start['poll_s']:.2f}",
                str(start["requests"]),
                str(start["busiest_window"]),
                f"{start['bound_s']:.2f}",
                f"{start['targets_up']}/{result['targets']}",
                str(start["rate_limited"]),
            ]
            for index, start in enumerate(result["runs"])
        ],
    )
    print(
        f"   median: listening {result['listening_median_s']:.2f} s, ready "
        f"{result['ready_median_s']:.2f} s; bound = {BOUND_FACTOR} x (most requests for one "
        f"token and path) / {RATE_LIMIT} s, what the rate limit alone allows"
    )
    return report.verdicts(
        [("median time to ready", result["ready_median_s"], "<", READY_TARGET_S, "s")], judged
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    report.add_common_arguments(parser)
    parser.add_argument("--runs", type=int, default=None, help="exporter starts (default 3)")
    args = parser.parse_args(argv)
    if args.quick:
        result = run(clusters=2, databases=2, runs=args.runs or 1)
    else:
        result = run(runs=args.runs or 3)
    result["verdicts"] = print_table(result, judged=not args.quick)
    report.save(args, "startup", result)
    return result


if __name__ == "__main__":
    main()
