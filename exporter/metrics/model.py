"""From poll snapshots to metric families: the rules of what is exported.

No I/O and no threads: ``MetricsModel.update`` takes one ``CycleResult`` and the time, and returns
the complete list of families for that moment. It keeps only what the rules need across cycles:
the last good snapshot of each target (its series keep their last values for as long as the
target is down, so an outage pages as an outage and resolves no job alert), the newest success
and failure of every collection (``history.py``), the newest finished import of every collection
(``import_memory.py``), counters, histogram buckets and which finished
jobs were already counted. ``saved_state`` / ``restore`` carry the memory across a restart.

A collection's series stop only on evidence: a later job of it, the collection or its database
confirmed gone by ``collections/list`` (``evidence.py``: its jobs are left out of every series
and its memory is forgotten, counted ``dropped``), or its target removed by the config or by
discovery (``watchlist.py``, ``removals.py``: a marker says so for an hour), besides the memory
bounds of ``history.py``. A target that fails, goes late or moves shard takes nothing away.

Sample output (abridged)::

    milvus_refresh_job_progress_ratio{milvus_cluster="prod",database="default",collection="ext_books",job_id="449503829274509311"} 0.42
    milvus_refresh_job_state{...,job_id="449503829274509311",state="RefreshInProgress"} 1.0
    milvus_refresh_jobs{milvus_cluster="prod",database="default",collection="ext_books",state="RefreshFailed"} 0.0
    milvus_jobs_exporter_target_up{milvus_cluster="prod",database="default",kind="refresh"} 1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ..exposition import catalogue as m
from ..exposition.families import HistogramState, MetricFamily, histogram_family
from ..memory.evidence import NEVER, CollectionEvidence, DatabaseKey
from ..memory.history import RefreshHistory
from ..memory.imports import ImportMemory
from ..memory.removals import RemovedTarget, RemovedTargets
from ..memory.state import SavedState
from ..polling.snapshots import CollectionsListing, CycleResult, Snapshot
from ..polling.targets import Target, TargetKey
from ..polling.watchlist import REMOVAL_CAUSES, Watchlist
from ..upstream.records import (
    IMPORT_STATES,
    REFRESH_STATES,
    ImportJob,
    ImportJobDetails,
    RefreshJob,
)
from .health import ExporterHealth, TargetRow
from .series import (
    CollectionCounts,
    Families,
    Tracked,
    collection_series,
    import_job_series,
    import_order,
    new_families,
    refresh_job_series,
    refresh_order,
    within_collection_limit,
    write_collection_counts,
)

J = TypeVar("J", RefreshJob, ImportJob)

REFRESH_DURATION_BUCKETS = (
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)


@dataclass
class _TargetState:
    target: Target
    up: bool = False
    reason: str = ""
    last_good: Snapshot | None = None
    last_success_time: float | None = None
    accounted_finished: set[tuple[str, str]] | None = None
    """Finished jobs already seen (collection, job id); None until the first good poll."""
    import_details: dict[str, ImportJobDetails] = field(default_factory=dict)
    """Latest ``import/describe`` answer per listed import job id."""
    accounted_imports: set[str] | None = None
    """Import jobs whose finish was already seen (or that were finished at the first poll)."""
    import_first_seen: dict[str, float] = field(default_factory=dict)
    """When each listed import job was first seen: what orders imports without a create time."""
    known_jobs: set[int | str] | None = None
    """Ids of the jobs of the last good poll; None before the first, whose jobs are not news."""
    collections: frozenset[str] = frozenset()
    """The collections with a job in the last good poll."""


class MetricsModel:
    """Keeps the cross-cycle state and builds the families for each cycle."""

    def __init__(
        self,
        max_tracked_jobs: int,
        poll_interval: float,
        *,
        max_tracked_collections: int = 10_000,
        collection_retention: float = 7 * 86_400.0,
    ) -> None:
        self.max_tracked_jobs = max_tracked_jobs
        self.max_tracked_collections = max_tracked_collections
        self.poll_interval = poll_interval
        self._targets: dict[TargetKey, _TargetState] = {}
        self._history = RefreshHistory(max_tracked_collections, collection_retention)
        self._imports = ImportMemory(max_tracked_collections, collection_retention)
        self._restored = SavedState()
        """Counted jobs from a state file, handed to each target when it first appears."""
        self._health = ExporterHealth()
        self._refresh_durations: dict[tuple[str, str, str], HistogramState] = {}
        self._import_durations: dict[tuple[str, str, str], HistogramState] = {}
        self._evidence = CollectionEvidence()
        self._removed_targets = RemovedTargets()
        self._awaiting: set[TargetKey] = set()
        """Targets watched before (by the previous run, per its state file) that have no state
        here yet: still configured, or waiting for their cluster's first discovery."""
        self.removed: list[RemovedTarget] = []
        """The targets removed by the last ``update`` or ``reconcile``, for the daemon's log."""
        self.untracked_jobs = 0
        self.untracked_collections = 0

    def configure(
        self,
        max_tracked_jobs: int,
        poll_interval: float,
        *,
        max_tracked_collections: int = 10_000,
        collection_retention: float = 7 * 86_400.0,
    ) -> None:
        """Apply a reloaded config's limits; state for removed targets goes at the next update."""
        self.max_tracked_jobs = max_tracked_jobs
        self.max_tracked_collections = max_tracked_collections
        self.poll_interval = poll_interval
        self._history.configure(max_tracked_collections, collection_retention)
        self._imports.configure(max_tracked_collections, collection_retention)

    def update(self, cycle: CycleResult, now: float) -> list[MetricFamily]:
        self.reconcile(cycle.targets, cycle.watchlist, now)
        self._adopt_targets(cycle.targets)
        for snapshot in cycle.snapshots:
            self._apply_snapshot(snapshot)
        for key, details in cycle.import_details:
            self._apply_import_details(key, details)
        for snapshot in cycle.snapshots:  # after the details: they decide which import is newest
            self._remember_newest_imports(snapshot)
        for listing in cycle.collection_lists:
            self._apply_collections_listing(listing)
        watched = set(self._targets) | self._awaiting
        self._history.prune(now, {key[:2] for key in watched if key[2] == "refresh"})
        self._imports.prune(now, {key[:2] for key in watched if key[2] == "import"})
        self._prune_evidence(watched)
        self._health.record_cycle(cycle, now)
        return self.families(now)

    def saved_state(self) -> SavedState:
        """What a restart must not forget (see ``state.py``)."""
        refresh_seen = dict(self._restored.refresh_seen)
        imports_seen = dict(self._restored.imports_seen)
        for (cluster, database, kind), state in self._targets.items():
            if kind == "refresh" and state.accounted_finished is not None:
                refresh_seen[(cluster, database)] = set(state.accounted_finished)
            elif kind == "import" and state.accounted_imports is not None:
                imports_seen[(cluster, database)] = set(state.accounted_imports)
        return SavedState(
            collections=self._history.items(),
            imports=self._imports.items(),
            refresh_seen=refresh_seen,
            imports_seen=imports_seen,
            refresh_durations=dict(self._refresh_durations),
            import_durations=dict(self._import_durations),
            watched=set(self._targets) | self._awaiting,
            removed=self._removed_targets.items(),
            gone=self._evidence.gone_items(),
        )

    def restore(self, saved: SavedState) -> None:
        """Take back what an earlier run remembered (call before the first ``update``, then
        ``reconcile`` with the new config's targets)."""
        self._history.restore(saved.collections)
        self._imports.restore(saved.imports)
        self._awaiting |= saved.watched
        self._removed_targets.restore(saved.removed)
        self._evidence.restore(saved.gone)
        self._restored = saved
        for key, histogram in saved.refresh_durations.items():
            self._refresh_durations.setdefault(key, histogram)
        for key, histogram in saved.import_durations.items():
            self._import_durations.setdefault(key, histogram)

    def discovery_status(self, cluster: str) -> tuple[bool | None, int, str, float | None]:
        """(last discovery ok, databases matched, reason, last success) of a pattern cluster."""
        return self._health.discovery(cluster)

    def target_status(self) -> list[_TargetState]:
        """For the landing page: every target with up/down and the last reason."""
        return list(self._targets.values())

    def reconcile(
        self, targets: Iterable[Target], watchlist: Watchlist | None, now: float
    ) -> list[RemovedTarget]:
        """Let go of the targets no longer among ``targets``, and say which were removed.

        A target the config no longer names, or whose database discovery no longer lists, gets
        a marker and loses its memory at once (counted ``dropped`` for the latter); one that
        moved to another shard (or, without a ``watchlist``, any other) goes silently; one still
        configured but not polled yet (its cluster not discovered since a restart) keeps its
        memory until discovery speaks.
        """
        current = {target.key for target in targets}
        awaiting = {key for key in self._awaiting if key in current}
        removed: list[RemovedTarget] = []
        for key in sorted((set(self._targets) | self._awaiting) - current):
            fate = "moved" if watchlist is None else watchlist.fate(key)
            if fate in ("watched", "pending"):
                if key not in self._targets:
                    awaiting.add(key)
                continue
            self._targets.pop(key, None)
            memory = self._history if key[2] == "refresh" else self._imports
            cluster, database, _kind = key
            memory.forget(
                [(cluster, database, name) for name in memory.collections_of(cluster, database)],
                "dropped" if fate == "dropped" else None,
            )
            if fate in REMOVAL_CAUSES:
                removal = RemovedTarget(key, fate, now)
                self._removed_targets.mark(removal)
                removed.append(removal)
        self._awaiting = awaiting
        self._removed_targets.readded(current)
        self.removed = removed
        return removed

    def _adopt_targets(self, targets: Iterable[Target]) -> None:
        """Give every current target its state; drop what belongs to targets no longer kept."""
        for target in targets:
            key = target.key
            self._awaiting.discard(key)
            state = self._targets.get(key)
            if state is None:
                self._targets[key] = _TargetState(
                    target,
                    accounted_finished=self._restored.refresh_seen.pop(key[:2], None)
                    if key[2] == "refresh"
                    else None,
                    accounted_imports=self._restored.imports_seen.pop(key[:2], None)
                    if key[2] == "import"
                    else None,
                )
            else:
                state.target = target
        self._health.forget(set(self._targets))
        kept = set(self._targets) | self._awaiting
        self._refresh_durations = {
            k: v for k, v in self._refresh_durations.items() if (k[0], k[1], "refresh") in kept
        }
        self._import_durations = {
            k: v for k, v in self._import_durations.items() if (k[0], k[1], "import") in kept
        }

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        state = self._targets.get(snapshot.target.key)
        if state is None:
            return
        state.up = snapshot.ok
        state.reason = snapshot.reason
        self._health.record_snapshot(snapshot)
        if not snapshot.ok:
            return
        state.last_good = snapshot
        state.last_success_time = snapshot.polled_at
        cluster, database, _kind = snapshot.target.key
        self._note_news(state, snapshot)
        if snapshot.target.kind == "refresh":
            self._observe_finished_refreshes(state, snapshot)
            visible = self._visible(cluster, database, snapshot.refresh_jobs)
            self._history.observe(cluster, database, visible, snapshot.polled_at)
        else:
            listed = {job.job_id for job in snapshot.import_jobs}
            state.import_details = {k: v for k, v in state.import_details.items() if k in listed}
            first_seen = {k: v for k, v in state.import_first_seen.items() if k in listed}
            for job_id in listed - first_seen.keys():
                first_seen[job_id] = snapshot.polled_at
            state.import_first_seen = first_seen
            finished = {job.job_id for job in snapshot.import_jobs if job.finished}
            if state.accounted_imports is None:
                state.accounted_imports = finished
            else:
                state.accounted_imports &= listed

    def _note_news(self, state: _TargetState, snapshot: Snapshot) -> None:
        """What a good poll teaches of each collection's age (``evidence.py``): its jobs' start
        times, and the time of the poll for a job seen for the first time since the first."""
        jobs: tuple[RefreshJob | ImportJob, ...] = snapshot.refresh_jobs or snapshot.import_jobs
        ids: set[int | str] = {job.job_id for job in jobs}
        known, state.known_jobs = state.known_jobs, ids
        state.collections = frozenset(job.collection for job in jobs)
        if known is not None and known >= ids:
            return  # nothing new: the usual poll
        newest: dict[str, float] = {}
        for job in jobs:
            if known is not None and job.job_id in known:
                continue
            at = job.start_time if isinstance(job, RefreshJob) else None
            if known is not None:
                at = max(at or NEVER, snapshot.polled_at)
            if at is not None and at > newest.get(job.collection, NEVER):
                newest[job.collection] = at
        self._evidence.saw(snapshot.target.key[:2], newest)

    def _visible(self, cluster: str, database: str, jobs: tuple[J, ...]) -> tuple[J, ...]:
        """The jobs not of a collection confirmed gone (all of them, nearly always)."""
        if not self._evidence.hides((cluster, database)):
            return jobs
        hidden = self._evidence.hidden
        return tuple(job for job in jobs if not hidden((cluster, database, job.collection)))

    def _gone(self, cluster: str, database: str) -> Callable[[str], bool] | None:
        """Whether a collection of the database is confirmed gone (None: none is)."""
        if not self._evidence.hides((cluster, database)):
            return None
        hidden = self._evidence.hidden
        return lambda collection: hidden((cluster, database, collection))

    def _apply_collections_listing(self, listing: CollectionsListing) -> None:
        """Forget the collections a list shows gone (counted ``dropped``); the ones it names
        count as listed, so a failure the server forgot stays for as long as they exist."""
        cluster, database = listing.cluster, listing.database
        states = [s for k, s in self._targets.items() if k[:2] == (cluster, database)]
        if not states:
            return  # no longer watched: removed while the list was on its way
        known = set().union(
            *(state.collections for state in states),
            self._history.collections_of(cluster, database),
            self._imports.collections_of(cluster, database),
        )
        gone = [(cluster, database, name) for name in self._evidence.apply(listing, known)]
        for memory in (self._history, self._imports):
            memory.forget(gone, "dropped")
            if listing.ok:
                memory.listed(cluster, database, listing.names, listing.listed_at)

    def _prune_evidence(self, watched: set[TargetKey]) -> None:
        """Keep the evidence of watched databases only, and a gone collection only while a
        last good poll still lists a job of it (unknown while a target has not answered)."""
        listed: dict[DatabaseKey, set[str] | None] = {key[:2]: None for key in watched}
        complete = {key[:2] for key in watched}
        for key, state in self._targets.items():
            if state.last_good is None:
                complete.discard(key[:2])
        for key in self._awaiting:  # not polled yet here: what it lists is not known
            complete.discard(key[:2])
        for database in complete:
            listed[database] = set()
        for key, state in self._targets.items():
            collections = listed.get(key[:2])
            if collections is not None:
                collections |= state.collections
        self._evidence.prune(listed, self._history.keys() | self._imports.keys())

    def _apply_import_details(self, key: TargetKey, details: ImportJobDetails) -> None:
        """Keep a job's details; observe its duration once, when the exporter sees it finish."""
        state = self._targets.get(key)
        if state is None or state.accounted_imports is None:
            return
        state.import_details[details.job_id] = details
        if details.create_time is not None and details.collection:
            self._evidence.saw(key[:2], {details.collection: details.create_time})
        if details.complete_time is None or details.create_time is None:
            return
        if details.job_id in state.accounted_imports:
            return
        state.accounted_imports.add(details.job_id)
        if details.complete_time >= details.create_time:
            histogram = self._import_durations.setdefault(
                (key[0], key[1], details.state), HistogramState(REFRESH_DURATION_BUCKETS)
            )
            histogram.observe(details.complete_time - details.create_time)

    def _remember_newest_imports(self, snapshot: Snapshot) -> None:
        state = self._targets.get(snapshot.target.key)
        if state is None or not snapshot.ok or snapshot.target.kind != "import":
            return
        order = import_order(state.import_details, state.import_first_seen)
        cluster, database, _kind = snapshot.target.key
        self._imports.observe(
            cluster,
            database,
            self._visible(cluster, database, snapshot.import_jobs),
            lambda job: order(job)[1:],
            state.import_details,
            snapshot.polled_at,
        )

    def _observe_finished_refreshes(self, state: _TargetState, snapshot: Snapshot) -> None:
        """Observe each refresh the exporter sees finish; the first good poll only sets a baseline."""
        finished = {
            (job.collection, str(job.job_id)): job for job in snapshot.refresh_jobs if job.finished
        }
        if state.accounted_finished is None:
            state.accounted_finished = set(finished)
            return
        cluster, database, _kind = snapshot.target.key
        for key, job in finished.items():
            if key in state.accounted_finished:
                continue
            if (
                job.start_time is not None
                and job.end_time is not None
                and job.end_time >= job.start_time
            ):
                histogram = self._refresh_durations.setdefault(
                    (cluster, database, job.state), HistogramState(REFRESH_DURATION_BUCKETS)
                )
                histogram.observe(job.end_time - job.start_time)
        state.accounted_finished = set(finished)

    def families(self, now: float) -> list[MetricFamily]:
        out = new_families((*m.REFRESH_METRICS, *m.IMPORT_METRICS))
        candidates: list[Tracked] = []
        refresh_counts: list[CollectionCounts] = []
        import_counts: list[CollectionCounts] = []
        listed_imports: set[tuple[str, str, str]] = set()
        for key, state in sorted(self._targets.items()):
            snapshot = state.last_good  # kept while the target is down: last known state
            if snapshot is None:
                continue
            cluster, database, _kind = key
            refreshes = self._visible(cluster, database, snapshot.refresh_jobs)
            imports = self._visible(cluster, database, snapshot.import_jobs)
            gone = self._gone(cluster, database)
            jobs: tuple[RefreshJob | ImportJob, ...] = refreshes or imports
            out[m.UNKNOWN_STATE_JOBS].add(
                (("milvus_cluster", key[0]), ("database", key[1]), ("kind", key[2])),
                float(sum(1 for job in jobs if not job.known_state)),
            )
            if state.target.kind == "refresh":
                candidates += collection_series(
                    refresh_counts, snapshot, refreshes, refresh_order, gone=gone
                )
            else:
                candidates += collection_series(
                    import_counts,
                    snapshot,
                    imports,
                    import_order(state.import_details, state.import_first_seen),
                    partial(self._imports.remembered, cluster, database),
                    gone=gone,
                )
                listed_imports.update((cluster, database, job.collection) for job in imports)
        self._write_collection_counts(out, refresh_counts, import_counts)
        candidates += self._unlisted_remembered_imports(listed_imports)
        self._finish_time_series(out)
        for item in self._apply_cardinality_guard(candidates):
            if isinstance(item.job, RefreshJob):
                refresh_job_series(out, item.key, item.job, item.polled_at)
            else:
                details = item.details
                if details is None and item.key in self._targets:
                    details = self._targets[item.key].import_details.get(item.job.job_id)
                import_job_series(out, item.key, item.job, details, item.polled_at)
        for metric, histograms in (
            (m.REFRESH_DURATION, self._refresh_durations),
            (m.IMPORT_DURATION, self._import_durations),
        ):
            out[metric] = histogram_family(
                metric.name,
                metric.help,
                [
                    ((("milvus_cluster", c), ("database", d), ("state", s)), h)
                    for (c, d, s), h in sorted(histograms.items())
                ],
            )
        rows = [
            TargetRow(
                key,
                state.up,
                state.reason,
                state.last_success_time,
                None if state.last_good is None else (state.last_good.unkept or {}),
            )
            for key, state in self._targets.items()
        ]
        return [
            *(out[metric] for metric in (*m.REFRESH_METRICS, *m.IMPORT_METRICS)),
            *self._health.families(
                rows,
                len(self._history),
                self._history.forgotten + self._imports.forgotten,
                self.untracked_jobs,
                self.untracked_collections,
            ),
            self._removed_targets.family(now),
            *self._evidence.families(),
        ]

    def _write_collection_counts(
        self,
        out: Families,
        refresh_counts: list[CollectionCounts],
        import_counts: list[CollectionCounts],
    ) -> None:
        """The per-collection count series, of at most ``max_tracked_collections`` collections
        of each kind; the rest are counted in ``untracked_collections``."""
        self.untracked_collections = 0
        for metric, rows, documented, succeeded in (
            (m.REFRESH_JOBS, refresh_counts, REFRESH_STATES, "RefreshCompleted"),
            (m.IMPORT_JOBS, import_counts, IMPORT_STATES, "Completed"),
        ):
            shown, left_out = within_collection_limit(rows, self.max_tracked_collections, succeeded)
            write_collection_counts(out[metric], shown, documented)
            self.untracked_collections += left_out

    def _unlisted_remembered_imports(self, listed: set[tuple[str, str, str]]) -> list[Tracked]:
        """The newest finished import of each collection the server no longer lists (or whose
        target has not answered since a restart): the failure it may be stays a failure."""
        return [
            Tracked(
                (cluster, database, "import"),
                entry.job,
                True,
                entry.order[0],
                entry.last_listed,
                entry.details,
            )
            for (cluster, database, collection), entry in self._imports.items()
            if (cluster, database, collection) not in listed
            and not self._evidence.hidden((cluster, database, collection))
        ]

    def _finish_time_series(self, out: Families) -> None:
        """Every remembered collection, whether its target answers right now or not: these
        are facts about the past that an outage does not change."""
        for (cluster, database, collection), entry in self._history.items():
            if self._evidence.hidden((cluster, database, collection)):
                continue
            labels = (
                ("milvus_cluster", cluster),
                ("database", database),
                ("collection", collection),
            )
            if entry.last_success is not None:
                out[m.REFRESH_LAST_SUCCESS].add(labels, entry.last_success)
            if entry.last_failure is not None:
                out[m.REFRESH_LAST_FAILURE].add(labels, entry.last_failure)
                out[m.REFRESH_LAST_FAILURE_INFO].add(
                    (
                        *labels,
                        ("job_id", entry.failure_job_id or "unknown"),
                        ("reason", entry.failure_reason or "unknown"),
                    ),
                    1.0,
                )

    def _apply_cardinality_guard(self, candidates: list[Tracked]) -> list[Tracked]:
        """Keep at most ``max_tracked_jobs``; leave out the oldest finished jobs first."""
        excess = len(candidates) - self.max_tracked_jobs
        if excess <= 0:
            self.untracked_jobs = 0
            return candidates
        self.untracked_jobs = excess
        finished = sorted(
            (item for item in candidates if item.finished), key=lambda item: item.age_key
        )
        unfinished = sorted(
            (item for item in candidates if not item.finished), key=lambda item: item.age_key
        )
        ordered_for_removal = finished + unfinished
        removed = {id(item) for item in ordered_for_removal[:excess]}
        return [item for item in candidates if id(item) not in removed]
