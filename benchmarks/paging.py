"""Time to page: from a refresh failing upstream to the webhook notification, measured end to end.

The real chain: the simulator (the failure appears at a known instant) -> the exporter process
-> a real Prometheus with the shipped rules -> a real Alertmanager -> a webhook receiver. Each
sample is a different collection failing at a random moment, so the samples fall at random
phases of the poll, scrape and evaluation clocks. Two profiles:

- ``defaults``: poll_interval 30s, scrape and evaluation 30s, the shipped ``for: 1m``,
  Alertmanager ``group_wait: 30s`` (about five minutes);
- ``fast``: the fastest documented settings, poll_interval 5s, scrape and evaluation 5s,
  ``for: 0s``, ``group_wait: 0s`` (under a minute).

The arithmetic: a failure waits for the next poll (up to P), the next scrape (up to S) and the
next evaluation (up to E); then ``for`` (F) runs from that evaluation, the alert fires at the
evaluation that ends it (F is a multiple of E here) and goes to Alertmanager at once, which
waits ``group_wait`` (G) before it notifies. So F + G <= time to page <= P + S + E + F + G, and
F + G + (P + S + E) / 2 on average over many runs. Within one run only the wait for the poll is
random: the three clocks share a period, so the waits for the scrape and the evaluation are fixed
by how the clocks lined up at the start, and one run's median may sit anywhere within S + E.

    python -m benchmarks.paging [--quick] [--profile defaults|fast]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.simulator import Simulator, SimulatorOptions
from monitoring.stack import (
    alertmanager_process,
    answers,
    binary,
    exporter_process,
    prometheus_process,
    shortened_rules,
    wait_until,
    webhook_receiver,
)

from . import report

TOKEN = "paging-benchmark-token"


@dataclass(frozen=True)
class Profile:
    name: str
    poll: float
    scrape: float
    evaluation: float
    hold: float | None
    """``for:`` of MilvusRefreshJobFailed; None keeps the shipped one (1m)."""
    group_wait: float
    samples: int

    @property
    def hold_seconds(self) -> float:
        return 60.0 if self.hold is None else self.hold

    @property
    def best(self) -> float:
        return self.hold_seconds + self.group_wait

    @property
    def worst(self) -> float:
        return self.poll + self.scrape + self.evaluation + self.best


PROFILES = {
    "defaults": Profile("defaults", 30.0, 30.0, 30.0, None, 30.0, 6),
    "fast": Profile("fast", 5.0, 5.0, 5.0, 0.0, 0.0, 8),
}


def measure(profile: Profile, rng: random.Random) -> dict[str, Any]:
    """Run the chain once with ``profile.samples`` collections failing at random moments."""
    simulator = Simulator(
        SimulatorOptions(
            seed=5, tokens=(TOKEN,), databases=("default",),
            collections_per_database=profile.samples, refresh_jobs_per_collection=0,
            import_jobs_per_database=0, auto_refresh=False, time_scale=1.0,
        )
    )  # fmt: skip
    collections = simulator.databases()["default"]["externalCollections"][: profile.samples]
    with tempfile.TemporaryDirectory(prefix="bench-paging-") as directory, ExitStack() as stack:
        workdir = Path(directory)
        upstream = stack.enter_context(simulator.serve("127.0.0.1", 0))
        exporter_url = stack.enter_context(
            exporter_process(
                workdir,
                "exporter",
                f"poll_interval: {profile.poll:g}s\nrequest_timeout: 5s\n"
                f"clusters:\n  - name: bench\n    endpoint: {upstream.url}\n    token: {TOKEN}\n"
                "    databases: [default]\n    jobs: [refresh]\n",
            )
        )
        pages, webhook = stack.enter_context(webhook_receiver())
        alertmanager = stack.enter_context(
            alertmanager_process(workdir, webhook, group_wait=profile.group_wait)
        )
        prometheus = stack.enter_context(
            prometheus_process(
                workdir,
                [exporter_url.removeprefix("http://")],
                shortened_rules(workdir, hold=profile.hold),
                scrape_interval=profile.scrape,
                evaluation_interval=profile.evaluation,
                alertmanager=alertmanager,
            )
        )
        wait_until(lambda: answers(exporter_url + "/readyz"), 60, "the exporter")
        wait_until(
            lambda: prometheus.query("milvus_jobs_exporter_target_up == 1"),
            3 * profile.scrape + 30,
            "Prometheus to scrape the exporter",
        )
        spread = profile.poll + profile.scrape + profile.evaluation
        offsets = sorted(rng.uniform(0, spread) for _ in collections)
        started = time.monotonic()
        failed_at: dict[str, float] = {}
        for collection, offset in zip(collections, offsets, strict=True):
            time.sleep(max(0.0, started + offset - time.monotonic()))
            simulator.start_refresh(
                "default", collection, outcome="failed", duration_seconds=0.2, reason="bench"
            )
            failed_at[collection] = time.monotonic() + 0.2

        def paged() -> dict[str, float]:
            first: dict[str, float] = {}
            for note in pages.of("MilvusRefreshJobFailed"):
                collection = note.labels.get("collection", "")
                if (
                    note.status == "firing"
                    and collection in failed_at
                    and note.received >= failed_at[collection]
                ):
                    first.setdefault(collection, note.received)
            return first if len(first) == len(failed_at) else {}

        received = wait_until(paged, profile.worst + spread + 60, "every page", interval=0.2)
    latencies = sorted(received[c] - failed_at[c] for c in failed_at)
    return {
        "profile": profile.name,
        "poll_s": profile.poll,
        "scrape_s": profile.scrape,
        "evaluation_s": profile.evaluation,
        "for_s": profile.hold_seconds,
        "group_wait_s": profile.group_wait,
        "samples": len(latencies),
        "min_s": latencies[0],
        "median_s": statistics.median(latencies),
        "max_s": latencies[-1],
        "best_s": profile.best,
        "worst_s": profile.worst,
        "mean_expected_s": profile.best + (profile.poll + profile.scrape + profile.evaluation) / 2,
        "latencies_s": latencies,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paging", description=__doc__)
    report.add_common_arguments(parser)
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append")
    args = parser.parse_args(argv)
    print("5. Time to page: failure upstream -> exporter -> Prometheus -> Alertmanager -> webhook")
    if binary("prometheus") is None or binary("alertmanager") is None:
        print("   skipped: needs Debian's prometheus and prometheus-alertmanager packages")
        return {"profiles": []}
    names = args.profile or (["fast"] if args.quick else ["fast", "defaults"])
    rng = random.Random(8)
    results = []
    for name in names:
        profile = PROFILES[name]
        if args.quick:
            profile = Profile(**{**profile.__dict__, "samples": 2})
        results.append(measure(profile, rng))
    report.table(
        ["profile", "P / S / E s", "for s", "group_wait s", "samples", "min s", "median s",
         "max s", "bounds s", "mean expected s"],
        [
            [
                result["profile"],
                f"{result['poll_s']:g} / {result['scrape_s']:g} / {result['evaluation_s']:g}",
                f"{result['for_s']:g}",
                f"{result['group_wait_s']:g}",
                str(result["samples"]),
                f"{result['min_s']:.1f}",
                f"{result['median_s']:.1f}",
                f"{result['max_s']:.1f}",
                f"{result['best_s']:g} .. {result['worst_s']:g}",
                f"{result['mean_expected_s']:g}",
            ]
            for result in results
        ],
    )  # fmt: skip
    print("   bounds = for + group_wait .. poll + scrape + evaluation + for + group_wait")
    outcome = {"profiles": results}
    report.save(args, "paging", outcome)
    return outcome


if __name__ == "__main__":
    main()
