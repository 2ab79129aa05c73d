"""Run every benchmark part, print its table and update ``benchmarks/results.json``.

    python -m benchmarks [--quick] [--output PATH] [--no-plot]

1. scrape cost at 100,000 jobs: exporter, stock prometheus_client, loopback floor
2. polling under the rate limit: the poller against a naive loop
3. scale: cycle, scrape and memory at 1k / 10k / 100k jobs and 10 / 100 / 1,000 targets
   (the 100k-job point is part 1's exporter run), drawn to ``benchmarks/scale.png``
4. startup: process start to the first 200 on /readyz with 100 targets
5. time to page: a failure upstream to the Alertmanager webhook, at the shipped defaults and at
   the fastest documented settings (full runs only: the defaults take about five minutes)
6. listed imports: memory and /metrics of one target listing 200,000 and 500,000 imports at
   the default limits (full runs only: about four minutes)
7. fleet: CPU, time and memory of one poll round at 50 and 200 databases (100,000 and 400,000
   refresh records), the exporter against a plain loop polling the same lean fake upstream
   (full runs only: about twenty minutes; ``python -m benchmarks.fleet --simulator --profile
   DIR`` adds the simulator row and a py-spy profile)
8. model cycle: CPU of ``MetricsModel.update`` alone with the fleet's snapshots (50 databases,
   the same job objects for unchanged records), in process, by step with ``--steps``
9. request cost: CPU per request of the exporter's client against plain ``requests`` on a kept
   connection, a describe-sized and a 200 KB list answer (full runs only: its quick run is
   ``tests/test_benchmarks.py``'s)

Each part also runs alone: ``python -m benchmarks.scrape`` (``polling``, ``scale``, ``startup``,
``paging``, ``listing``, ``fleet``, ``model_cycle``, ``request_cost``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from . import (
    fleet,
    listing,
    model_cycle,
    paging,
    polling,
    report,
    request_cost,
    scale,
    scrape,
    startup,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_common_arguments(parser)
    parser.add_argument("--no-plot", action="store_true", help="do not draw scale.png")
    args = parser.parse_args(argv)
    common = ["--quick"] if args.quick else []
    if args.output is not None:
        common += ["--output", str(args.output)]
    started = time.monotonic()
    print(f"machine: {report.machine()}\n")

    scraped = scrape.main(common)
    print()
    polled = polling.main(common)
    print()
    sizes = scraped["sizes"]
    reused = scale.jobs_point(sizes["running"], sizes["databases"], sizes["collections"])
    scaled = scale.main(
        common + ([] if args.no_plot else ["--plot"]), (reused, scraped["exporter"])
    )
    print()
    started_up = startup.main(common)
    print()
    model_cycle.main(common)
    print()
    listed: dict[str, Any] = {"verdicts": []}
    fleets: dict[str, Any] = {"verdicts": []}
    costs: dict[str, Any] = {"verdicts": []}
    if not args.quick:  # their own smoke tests: tests/test_benchmarks.py runs them with --quick
        paging.main(common)
        print()
        listed = listing.main(common)
        print()
        fleets = fleet.main(common)
        print()
        costs = request_cost.main(common)
        print()

    verdicts: list[dict[str, Any]] = [
        *scraped["verdicts"],
        *polled["verdicts"],
        *started_up["verdicts"],
        *listed["verdicts"],
        *fleets["verdicts"],
        *costs["verdicts"],
    ]
    del scaled  # the scale curve has no pass/fail target of its own
    missed = [verdict["what"] for verdict in verdicts if not verdict["met"]]
    elapsed = time.monotonic() - started
    if verdicts:
        print(f"targets: {len(verdicts) - len(missed)} of {len(verdicts)} met", end="")
        print(f"; not met: {', '.join(missed)}" if missed else "")
    path = report.output_path(args)
    print(f"whole run: {elapsed:.0f} s" + (f"; results in {Path(path)}" if path else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
