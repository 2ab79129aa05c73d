"""CPU of the model per poll cycle at the fleet of issue 23, in process: no HTTP, no threads.

    python -m benchmarks.render_cycle [--databases 50] [--rounds 12] [--profile FILE]

The snapshots are built as the poller hands them over (``polling/reuse.py``, ``lists.py``): an
unchanged list gives back the same ``Kept``, an unchanged record the same job object. Per
database: 200 external collections x 10 refreshes of history (a list that never changes) and
1,000 imports over 200 plain collections, 8 of them running with a progress that moves every
round (a new list, new objects for those 8 only, and an ``import/describe`` answer for each).
The first round describes every import (the warm-up of ``benchmarks.fleet``); each database's
``collections/list`` comes every 20th round (``discovery_interval`` 300 s at a 15 s interval).

Prints the median CPU (``time.process_time``) of ``MetricsModel.update`` per round, and of its
``families`` part, over the rounds after the first two; and what the model keeps of the lines
it wrote (``RenderedJobs`` / ``RenderedRows``).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from exporter.config.loader import ClusterConfig
from exporter.daemon import tune_garbage_collection
from exporter.exposition.cache import ExpositionCache
from exporter.kinds import KINDS
from exporter.metrics.model import MetricsModel
from exporter.polling.kept import KeepLimits, Kept, keep_listed
from exporter.polling.snapshots import CollectionsListing, CycleResult, Snapshot
from exporter.polling.targets import Target
from exporter.upstream.listing import Listing
from exporter.upstream.records import ImportJob, ImportJobDetails, RefreshJob

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

T0 = 1_700_000_000.0
INTERVAL = 15.0
LIMITS = KeepLimits(20_000, 10_000)
LIST_EVERY = 20


@dataclass
class _Database:
    refresh: Target
    imports: Target
    refresh_kept: Kept[Any]
    import_jobs: list[ImportJob]


def _refreshes(fleet: Fleet, number: int) -> list[RefreshJob]:
    """Newest first, as the server sorts them (the shapes of ``fleet_upstream``)."""
    jobs = []
    for age in range(fleet.history):
        for collection in range(fleet.collections):
            sequence = (number * fleet.collections + collection) * fleet.history + age
            failed = (collection + age) % REFRESH_FAILS_EVERY == 0
            started = T0 - (age + 1) * 2 * HOUR - collection
            jobs.append(
                RefreshJob(
                    REFRESH_ID_BASE + sequence,
                    external_collection(collection),
                    "RefreshFailed" if failed else "RefreshCompleted",
                    0.37 if failed else 1.0,
                    started,
                    started + 300 + collection % 60,
                    REFRESH_FAILURE if failed else "",
                    external_source=f'{{"type":"volume","path":"volume://lake/{number}/{collection}"}}',
                )
            )
    return jobs


def _import(fleet: Fleet, number: int, index: int, round_: int) -> ImportJob:
    running = fleet.is_running(index)
    failed = not running and index % IMPORT_FAILS_EVERY == 1
    state = "Importing" if running else "Failed" if failed else "Completed"
    progress = 10 + (index + round_) % 89 if running else 0 if failed else 100
    return ImportJob(
        str(IMPORT_ID_BASE + number * fleet.imports + index),
        import_collection(index % fleet.collections),
        state,
        progress / 100,
        IMPORT_FAILURE if failed else "",
    )


def _details(job: ImportJob, index: int) -> ImportJobDetails:
    running = job.state == "Importing"
    failed = job.state == "Failed"
    total = 1_000_000 + index * 1000
    created = T0 - 3 * HOUR + index * 10
    return ImportJobDetails(
        job_id=job.job_id,
        state=job.state,
        imported_rows=0 if failed else total if not running else int(total * job.progress_ratio),
        total_rows=0 if failed else total,
        file_size_bytes=64_000_000 + index,
        create_time=created,
        complete_time=None if running or failed else created + 600,
        collection=job.collection,
        progress_ratio=job.progress_ratio,
        reason=job.reason,
    )


class FleetRounds:
    """The rounds of one fleet, as the poller would hand them to the model."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        cluster = ClusterConfig(name="fleet", endpoint="http://127.0.0.1:1", token="t")
        refresh_kind = KINDS.named("refresh")
        self.import_kind = KINDS.named("import")
        self.databases = [
            _Database(
                Target(cluster, name, "refresh"),
                Target(cluster, name, "import"),
                keep_listed(LIMITS, refresh_kind, [Listing(tuple(_refreshes(fleet, number)))]),
                [_import(fleet, number, index, 0) for index in range(fleet.imports)],
            )
            for number, name in enumerate(database_names(fleet.databases))
        ]
        self.targets = tuple(t for db in self.databases for t in (db.refresh, db.imports))

    def round(self, number: int) -> CycleResult:
        at = T0 + number * INTERVAL
        snapshots: list[Snapshot] = []
        follow_ups: list[tuple[Any, Any]] = []
        listings: list[CollectionsListing] = []
        for db_number, db in enumerate(self.databases):
            kept = db.refresh_kept  # the same bytes: the same Kept (``lists.py``)
            snapshots.append(self._snapshot(db.refresh, at, kept))
            for index in range(len(db.import_jobs)):
                if self.fleet.is_running(index):
                    db.import_jobs[index] = _import(self.fleet, db_number, index, number)
            kept = keep_listed(LIMITS, self.import_kind, [Listing(tuple(db.import_jobs))])
            snapshots.append(self._snapshot(db.imports, at, kept))
            follow_ups += (
                (db.imports.key, _details(job, index))
                for index, job in enumerate(db.import_jobs)
                if number == 0 or job.state == "Importing"
            )
            if (number + db_number) % LIST_EVERY == 0:
                names = frozenset(
                    [external_collection(i) for i in range(self.fleet.collections)]
                    + [import_collection(i) for i in range(self.fleet.collections)]
                )
                listings.append(
                    CollectionsListing("fleet", db.refresh.database, at - 1, True, names)
                )
        return CycleResult(
            targets=self.targets,
            snapshots=tuple(snapshots),
            requests=(),
            started_at=at,
            seconds=10.0,
            follow_ups=tuple(follow_ups),
            collection_lists=tuple(listings),
        )

    @staticmethod
    def _snapshot(target: Target, at: float, kept: Kept[Any]) -> Snapshot:
        return Snapshot(
            target=target,
            polled_at=at,
            ok=True,
            jobs=kept.jobs,
            collection_counts=kept.counts,
            unkept=kept.unkept,
        )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_cycle")
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--profile", help="write a cProfile of the rounds after the first two")
    args = parser.parse_args(argv)
    fleet = replace(Fleet(), databases=args.databases)
    built = time.process_time()
    rounds = FleetRounds(fleet)
    print(f"built {len(rounds.targets)} targets in {time.process_time() - built:.1f} s CPU")
    model = MetricsModel(50_000, INTERVAL)
    cache = ExpositionCache()
    timed: dict[str, float] = {}
    families = model.families

    def timed_families(now: float) -> Any:
        started = time.process_time()
        out = families(now)
        timed["families"] = time.process_time() - started
        return out

    model.families = timed_families  # type: ignore[method-assign]
    parts: dict[str, float] = {}
    for owner, name in (
        (model, "_collection_series"),
        (model, "_write_collection_counts"),
        (model, "_write_history"),
        (model, "_unlisted_remembered"),
        (
            model.rendered_jobs,
            "write_group" if hasattr(model.rendered_jobs, "write_group") else "write",
        ),
    ):
        setattr(owner, name, _timed(getattr(owner, name), name, parts))
    per_part: dict[str, list[float]] = {}
    updates, renders, publishes = [], [], []
    profiler = None
    gc.collect()
    tune_garbage_collection()  # as ``serve`` runs
    for number in range(args.rounds):
        result = rounds.round(number)
        if number == 2 and args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.process_time()
        out = model.update(result, result.started_at)
        updated = time.process_time()
        cache.publish(out)
        published = time.process_time()
        if number >= 2:
            for name, seconds in parts.items():
                per_part.setdefault(name, []).append(seconds)
            updates.append(updated - started)
            renders.append(timed["families"])
            publishes.append(published - updated)
        print(
            f"round {number:2d}: update {1000 * (updated - started):7.1f} ms"
            f" (families {1000 * timed['families']:6.1f} ms), publish"
            f" {1000 * (published - updated):5.1f} ms, body"
            f" {cache.scrape().length / 1e6:.1f} MB",
            file=sys.stderr,
        )
        parts.clear()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        f"databases={args.databases} rounds={args.rounds - 2} (after 2):"
        f" update median {1000 * statistics.median(updates):.1f} ms,"
        f" families median {1000 * statistics.median(renders):.1f} ms,"
        f" publish median {1000 * statistics.median(publishes):.1f} ms;"
        f" tracked jobs kept {model.rendered_jobs.kept},"
        f" line caches {kept_bytes(model) / 1e6:.1f} MB"
    )
    print(
        "  of which (median ms): "
        + ", ".join(
            f"{name} {1000 * statistics.median(values):.1f}" for name, values in per_part.items()
        )
    )
    return 0


def _timed(method: Any, name: str, parts: dict[str, float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            parts[name] = parts.get(name, 0.0) + time.process_time() - started

    return timed


if __name__ == "__main__":
    raise SystemExit(main())
