"""The model's share of a poll round at fleet scale (issue 23), in process: CPU per
``MetricsModel.update`` with the fleet's snapshots, and where it goes by step.

The fleet of ``fleet_upstream.Fleet`` (50 databases: 200 external collections x 10 finished
refreshes, 1,000 imports over 200 plain collections of which 8 run), handed over as the poller
does: an unchanged list is the very same jobs tuple, an unchanged record the very same job
object, and each round every running import moves on (a new job object, a new tuple for its
database's list, and its ``import/describe`` answer). Every finished import was described in the
first rounds, and every database's ``collections/list`` answers each round. No HTTP, no threads:
what is measured is the model alone, ``time.process_time`` around each ``update``, then
the publish that follows it (``ExpositionCache.publish`` and its gzip), and what the model's
line caches keep.

    python -m benchmarks.model_cycle [--quick] [--databases 50] [--cycles 10] [--steps] [--profile]

``--steps`` prints the CPU of each step of ``update`` (``families`` is the rendering);
``--profile`` a cProfile of the model and its memory. Indicative only on a shared machine: take
the median of a quiet run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from exporter.config.loader import ClusterConfig
from exporter.exposition.cache import ExpositionCache
from exporter.metrics.model import MetricsModel
from exporter.polling.snapshots import CollectionsListing, CycleResult, Snapshot
from exporter.polling.targets import Target
from exporter.upstream.records import ImportJob, ImportJobDetails, RefreshJob

from . import report
from .fleet_upstream import (
    HOUR,
    IMPORT_FAILS_EVERY,
    IMPORT_FAILURE,
    IMPORT_ID_BASE,
    REFRESH_FAILS_EVERY,
    REFRESH_FAILURE,
    REFRESH_ID_BASE,
    Fleet,
    external_collection,
    import_collection,
)
from .upstream import database_names

POLL_INTERVAL_SECONDS = 15.0
WARM_CYCLES = 3
T0 = 1_750_000_000.0


class FleetRounds:
    """The fleet's snapshots round after round, reusing every unchanged job object."""

    def __init__(self, fleet: Fleet, now: float = T0) -> None:
        self.fleet = fleet
        self.started = now
        cluster = ClusterConfig(name="prod", endpoint="http://127.0.0.1:1", token="t")
        self.databases = database_names(fleet.databases)
        self.refresh_targets = [Target(cluster, name, "refresh") for name in self.databases]
        self.import_targets = [Target(cluster, name, "import") for name in self.databases]
        self.refreshes = [self._refreshes(number, now) for number in range(fleet.databases)]
        self.imports = [list(self._imports(number, now)) for number in range(fleet.databases)]
        self.names = frozenset(
            [external_collection(i) for i in range(fleet.collections)]
            + [import_collection(i) for i in range(fleet.collections)]
        )
        self.round = 0

    def _refreshes(self, number: int, now: float) -> tuple[RefreshJob, ...]:
        fleet = self.fleet
        jobs = []
        for age in range(fleet.history):
            for collection in range(fleet.collections):
                sequence = (number * fleet.collections + collection) * fleet.history + age
                failed = (collection + age) % REFRESH_FAILS_EVERY == 0
                started = now - (age + 1) * 2 * HOUR - collection
                jobs.append(
                    RefreshJob(
                        REFRESH_ID_BASE + sequence,
                        external_collection(collection),
                        "RefreshFailed" if failed else "RefreshCompleted",
                        0.37 if failed else 1.0,
                        started,
                        started + 300 + collection % 60,
                        REFRESH_FAILURE if failed else "",
                    )
                )
        return tuple(jobs)

    def _import(self, number: int, index: int, now: float) -> ImportJob:
        running = self.fleet.is_running(index)
        failed = not running and index % IMPORT_FAILS_EVERY == 1
        state = "Importing" if running else "Failed" if failed else "Completed"
        progress = self._progress(index, now) if running else 0 if failed else 100
        return ImportJob(
            str(IMPORT_ID_BASE + number * self.fleet.imports + index),
            import_collection(index % self.fleet.collections),
            state,
            progress / 100,
            IMPORT_FAILURE if failed else "",
        )

    def _imports(self, number: int, now: float) -> Iterator[ImportJob]:
        for index in range(self.fleet.imports):
            yield self._import(number, index, now)

    def _progress(self, index: int, now: float) -> int:
        return 10 + (index + int((now - self.started) / 15)) % 89

    def _details(self, job: ImportJob, index: int, now: float) -> ImportJobDetails:
        total = 1_000_000 + index * 1000
        finished = job.state != "Importing"
        failed = job.state == "Failed"
        progress = round(job.progress_ratio * 100)
        rows = 0 if failed else total if finished else total * (progress - 10) // 89
        created = self.started - 3 * HOUR + index * 10
        return ImportJobDetails(
            job_id=job.job_id,
            state=job.state,
            imported_rows=rows,
            total_rows=0 if failed else total,
            file_size_bytes=64_000_000 + index,
            create_time=created,
            complete_time=created + 600 if finished and not failed else None,
            collection=job.collection,
            progress_ratio=job.progress_ratio,
            reason=job.reason,
        )

    def next(self) -> tuple[CycleResult, float]:
        """The next round: the running imports moved on, and described; every finished import
        described too in the first round."""
        now = self.started + self.round * POLL_INTERVAL_SECONDS
        snapshots: list[Snapshot] = []
        follow_ups: list[tuple[Any, ImportJobDetails]] = []
        for number, (refresh, imports) in enumerate(
            zip(self.refresh_targets, self.import_targets, strict=True)
        ):
            snapshots.append(Snapshot(refresh, now, True, jobs=self.refreshes[number]))
            jobs = self.imports[number]
            for index, job in enumerate(jobs):
                if self.fleet.is_running(index):
                    if self.round:
                        job = jobs[index] = self._import(number, index, now)
                    follow_ups.append((imports.key, self._details(job, index, now)))
                elif self.round == 1:  # the warm-up describes every finished import once
                    follow_ups.append((imports.key, self._details(job, index, now)))
            snapshots.append(Snapshot(imports, now, True, jobs=tuple(jobs)))
        listings = tuple(
            CollectionsListing("prod", name, now - 1, True, self.names) for name in self.databases
        )
        self.round += 1
        result = CycleResult(
            targets=(*self.refresh_targets, *self.import_targets),
            snapshots=tuple(snapshots),
            requests=(),
            started_at=now,
            seconds=1.0,
            follow_ups=tuple(follow_ups),
            collection_lists=listings,
        )
        return result, now + 1.0


STEPS = (
    "reconcile",
    "_adopt_targets",
    "_apply_snapshot",
    "_apply_details",
    "_observe_durations",
    "_remember",
    "_apply_collections_listing",
    "_memories.prune",
    "_prune_evidence",
    "families",
    "_collection_series",
    "rendered_jobs.write_group",
    "_write_collection_counts",
    "_write_history",
    "_unlisted_remembered",
)
"""The steps of ``MetricsModel.update``, timed one by one with ``--steps`` (the last five are
parts of ``families``)."""


def kept_bytes(model: MetricsModel) -> int:
    """What the model's line caches hold for the next cycle: their containers and lines, not
    the jobs they point to (``sys.getsizeof`` of each object once)."""
    seen: set[int] = set()
    owned = (tuple, list, dict, bytes, bytearray, int, float)
    total = 0
    stack: list[Any] = [
        cache.__dict__.get("_current")
        for cache in (model.rendered_jobs, model.rendered_counts, model.rendered_history)
    ]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, owned):
            total += sys.getsizeof(item)
            if isinstance(item, (tuple, list)):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
        elif hasattr(item, "__slots__") and type(item).__module__ == "exporter.metrics.series":
            total += sys.getsizeof(item)
            stack.extend(getattr(item, name) for name in type(item).__slots__)
    return total


def time_steps(model: MetricsModel, spent: dict[str, float]) -> None:
    """Wrap each step of ``model`` so that its CPU time adds up in ``spent`` (by name)."""
    for name in STEPS:
        owner: Any = model
        *path, attribute = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        method = getattr(owner, attribute)

        def timed(*args: Any, _method: Any = method, _name: str = name) -> Any:
            started = time.process_time()
            try:
                return _method(*args)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - started

        setattr(owner, attribute, timed)


def run(
    fleet: Fleet, cycles: int, profile: bool, spent: dict[str, float] | None = None
) -> tuple[list[float], list[float], int]:
    """(CPU of each ``update``, CPU of each publish with its gzip, bytes the line caches
    keep), after the warm-up cycles."""
    rounds = FleetRounds(fleet)
    model = MetricsModel(50_000, POLL_INTERVAL_SECONDS)
    cache = ExpositionCache()
    for _ in range(WARM_CYCLES):
        cache.publish(model.update(*rounds.next()))
        cache.prepare_gzip()
    if spent is not None:
        time_steps(model, spent)
    profiler = cProfile.Profile() if profile else None
    seconds: list[float] = []
    publishes: list[float] = []
    for _ in range(cycles):
        result, now = rounds.next()
        started = time.process_time()
        if profiler is not None:
            profiler.enable()
        families = model.update(result, now)
        if profiler is not None:
            profiler.disable()
        updated = time.process_time()
        cache.publish(families)  # as the daemon does after each update
        cache.prepare_gzip()
        publishes.append(time.process_time() - updated)
        seconds.append(updated - started)
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(r"exporter/(metrics|memory)", 30)
    return seconds, publishes, kept_bytes(model)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.model_cycle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_common_arguments(parser)
    parser.add_argument("--databases", type=int, default=None, help="default 50 (5 --quick)")
    parser.add_argument("--cycles", type=int, default=None, help="default 10 (3 --quick)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the model")
    parser.add_argument("--steps", action="store_true", help="print the CPU of each step")
    args = parser.parse_args(argv)
    databases = args.databases or (5 if args.quick else Fleet.databases)
    fleet = replace(Fleet(), databases=databases)
    spent: dict[str, float] | None = {} if args.steps else None
    seconds, publishes, kept = run(
        fleet, args.cycles or (3 if args.quick else 10), args.profile, spent
    )
    result: dict[str, Any] = {
        "databases": fleet.databases,
        "cycles": len(seconds),
        "median_ms": statistics.median(seconds) * 1000,
        "min_ms": min(seconds) * 1000,
        "max_ms": max(seconds) * 1000,
        "publish_median_ms": statistics.median(publishes) * 1000,
        "line_caches_mb": kept / 1e6,
    }
    print(
        "8. Model cycle: MetricsModel.update alone with the fleet's snapshots, in process\n"
        f"model update at {fleet.databases} databases: median {result['median_ms']:.0f} ms, "
        f"min {result['min_ms']:.0f} ms, max {result['max_ms']:.0f} ms "
        f"over {result['cycles']} cycles; publish with gzip median "
        f"{result['publish_median_ms']:.0f} ms; line caches {result['line_caches_mb']:.1f} MB"
    )
    if spent is not None:
        for name in STEPS:
            print(f"  {name:<28} {spent.get(name, 0.0) / len(seconds) * 1000:7.1f} ms")
        result["steps_ms"] = {name: spent.get(name, 0.0) / len(seconds) * 1000 for name in STEPS}
    report.save(args, "model_cycle", result)
    return result


if __name__ == "__main__":
    main()
