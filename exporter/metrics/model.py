"""From poll snapshots to metric families: the rules of what is exported.

No I/O and no threads: ``MetricsModel.update`` takes one ``CycleResult`` and the time, and returns
the complete list of families for that moment. It names no job kind: what a target's jobs mean
(their states, their order, their series, their memory) comes from its kind's declaration. It
keeps only what the rules need across cycles: the last good snapshot of each target (its series
keep their last values for as long as the target is down, so an outage pages as an outage and
resolves no job alert), each kind's memory in its declared strategy (``memory/memories.py``: the
newest success and failure of every collection, or its newest finished job), counters, histogram
buckets and which finished jobs were already counted. ``saved_state`` / ``restore`` carry the
memory across a restart.

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
from itertools import compress
from operator import attrgetter, is_not
from typing import Any

from ..exposition import catalogue as m
from ..exposition.families import MetricFamily, histogram_family
from ..kinds import KINDS, AnyKind, UnknownKind
from ..kinds.declaration import DURATION_BUCKETS, Job
from ..memory.evidence import NEVER, CollectionEvidence, DatabaseKey
from ..memory.history import CollectionHistory
from ..memory.memories import KindMemories
from ..memory.newest_finished import NewestFinished
from ..memory.removals import RemovedTarget, RemovedTargets
from ..memory.state import KindMemory, SavedState
from ..polling.snapshots import CollectionsListing, CycleResult, Snapshot
from ..polling.targets import Target, TargetKey
from ..polling.watchlist import REMOVAL_CAUSES, Watchlist
from .health import ExporterHealth, TargetRow
from .series import (
    CollectionCounts,
    Families,
    RenderedJobs,
    RenderedRows,
    Tracked,
    collection_series,
    job_newest,
    job_order,
    new_families,
    within_collection_limit,
    write_count_row,
)

_JOB_ID = attrgetter("job_id")
_COLLECTION = attrgetter("collection")

REFRESH_DURATION_BUCKETS = DURATION_BUCKETS
"""The duration histograms' buckets (every kind's, ``kinds.declaration.DURATION_BUCKETS``)."""


@dataclass
class _TargetState:
    target: Target
    up: bool = False
    reason: str = ""
    last_good: Snapshot | None = None
    last_success_time: float | None = None
    accounted: set[str] | None = None
    """Finished jobs (by id) whose duration was counted, or that were finished already at the
    first good poll; None until the first good poll."""
    details: dict[str, Any] = field(default_factory=dict)
    """The latest follow-up answer (``import/describe``) per listed job id."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """When each listed job was first seen: what orders jobs whose records carry no time."""
    listed: dict[str, Job] = field(default_factory=dict)
    """The jobs of the last good poll by id (what a follow-up answer is about)."""
    known_jobs: set[str] | None = None
    """Ids of the jobs of the last good poll; None before the first, whose jobs are not news."""
    collections: frozenset[str] = frozenset()
    """The collections with a job in the last good poll."""
    same_jobs: bool = False
    """The last good poll's jobs are the very ones of the good poll before it (the poller gives
    back the same ``Kept`` for an unchanged list: ``polling/reuse.py``)."""
    details_version: int = 0
    """Counts the changes to ``details``: what was made of them is stale once it moves."""
    remembered: tuple[object, int, tuple[str, ...]] | None = None
    """(jobs, details version, collections remembered) of the last jobs its kind's memory took
    in: the same again only touch those collections (``history.py: touch``)."""
    timed_from: tuple[object, int] | None = None
    """(jobs, details version) the durations were last looked for in."""
    details_news: set[str] = field(default_factory=set)
    """The collections of the listed finished jobs whose details changed since its kind's
    memory last took the jobs in: only those, and those whose finished jobs changed, are decided
    again (``newest_finished.py``)."""
    series: _SeriesMemo | None = None
    """What ``families`` made of the last good poll, for the same poll again."""


@dataclass(frozen=True, slots=True)
class _SeriesMemo:
    """A target's count rows and job candidates (``collection_series``) for the inputs they
    were made of; the candidates without the poll time, which each cycle stamps anew."""

    jobs: object
    counts: object
    details_version: int
    first_seen: object
    remembered: tuple[object, ...]
    rows: tuple[CollectionCounts, ...]
    candidates: tuple[tuple[Job, bool, float, Any], ...]
    unknown_states: int
    collections: tuple[str, ...]
    rows_from: object
    """What ``rows`` are made of with the target key: the snapshot's counts when it has them
    and no collection is gone, else the rows themselves (``RenderedRows`` compares it)."""
    jobs_written: tuple[Job, ...]
    """The candidates' jobs, and their details (``details_written``: a listed job's from the
    target's follow-up answers), as ``RenderedJobs.write_group`` takes them."""
    details_written: tuple[Any, ...]


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
        self._memories = KindMemories(max_tracked_collections, collection_retention)
        self._restored = SavedState()
        """Counted jobs from a state file, handed to each target when it first appears."""
        self._health = ExporterHealth()
        self._evidence = CollectionEvidence()
        self._removed_targets = RemovedTargets()
        self._awaiting: set[TargetKey] = set()
        """Targets watched before (by the previous run, per its state file) that have no state
        here yet: still configured, or waiting for their cluster's first discovery."""
        self.removed: list[RemovedTarget] = []
        """The targets removed by the last ``update`` or ``reconcile``, for the daemon's log."""
        self.untracked_jobs = 0
        self.untracked_collections = 0
        self.rendered_jobs = RenderedJobs()
        """The sample lines of each tracked job, kept for the next cycle (``series.py``)."""
        self.rendered_counts = RenderedRows()
        self.rendered_history = RenderedRows()

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
        self._memories.configure(max_tracked_collections, collection_retention)

    def update(self, cycle: CycleResult, now: float) -> list[MetricFamily]:
        self.reconcile(cycle.targets, cycle.watchlist, now)
        self._adopt_targets(cycle.targets)
        for snapshot in cycle.snapshots:
            self._apply_snapshot(snapshot)
        for key, details in cycle.follow_ups:
            self._apply_details(key, details)
        for snapshot in cycle.snapshots:  # after the details: they may time a job and order it
            self._observe_durations(snapshot)
            self._remember(snapshot)
        if cycle.collection_lists:
            by_database: dict[DatabaseKey, list[_TargetState]] = {}
            for key, state in self._targets.items():
                by_database.setdefault(key[:2], []).append(state)
            for listing in cycle.collection_lists:
                states = by_database.get((listing.cluster, listing.database), [])
                self._apply_collections_listing(listing, states)
        watched = set(self._targets) | self._awaiting
        self._memories.prune(now, watched)
        self._prune_evidence(watched)
        self._health.record_cycle(cycle, now)
        return self.families(now)

    def saved_state(self) -> SavedState:
        """What a restart must not forget (see ``state.py``)."""
        kinds: dict[str, KindMemory] = {}
        for name, restored in self._restored.kinds.items():
            if restored.seen:
                kinds[name] = KindMemory(seen=dict(restored.seen))
        for kind, history in self._memories.histories():
            kinds.setdefault(kind.name, KindMemory()).history = history.items()
        for kind, newest in self._memories.newest_finished():
            kinds.setdefault(kind.name, KindMemory()).newest_finished = newest.items()
        for (cluster, database, name), state in self._targets.items():
            if state.accounted is not None:
                kinds.setdefault(name, KindMemory()).seen[(cluster, database)] = set(
                    state.accounted
                )
        for name, histograms in self._memories.durations.items():
            if histograms:
                kinds.setdefault(name, KindMemory()).durations = dict(histograms)
        return SavedState(
            kinds=kinds,
            watched=set(self._targets) | self._awaiting,
            removed=self._removed_targets.items(),
            gone=self._evidence.gone_items(),
            unknown_kinds=dict(self._restored.unknown_kinds),
        )

    def restore(self, saved: SavedState) -> None:
        """Take back what an earlier run remembered (call before the first ``update``, then
        ``reconcile`` with the new config's targets)."""
        for name, memory in saved.kinds.items():
            kind = _declared(name)
            if kind is None:
                continue
            remembered = self._memories.of(kind)
            if isinstance(remembered, NewestFinished):
                remembered.restore(memory.newest_finished)
            else:
                remembered.restore(memory.history)
            for key, histogram in memory.durations.items():
                self._memories.durations.setdefault(name, {}).setdefault(key, histogram)
        self._awaiting |= saved.watched
        self._removed_targets.restore(saved.removed)
        self._evidence.restore(saved.gone)
        self._restored = saved

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
            cluster, database, name = key
            memory = self._memories.named(name)
            if memory is not None:
                memory.forget(
                    [(cluster, database, c) for c in memory.collections_of(cluster, database)],
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
                restored = self._restored.kinds.get(key[2])
                seen = None if restored is None else restored.seen.pop(key[:2], None)
                self._targets[key] = _TargetState(target, accounted=seen)
            else:
                state.target = target
        self._health.forget(set(self._targets))
        self._memories.keep_durations(set(self._targets) | self._awaiting)

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        state = self._targets.get(snapshot.target.key)
        if state is None:
            return
        state.up = snapshot.ok
        state.reason = snapshot.reason
        self._health.record_snapshot(snapshot)
        if not snapshot.ok:
            return
        last = state.last_good
        state.last_good = snapshot
        state.last_success_time = snapshot.polled_at
        state.same_jobs = last is not None and last.jobs is snapshot.jobs
        if state.same_jobs and state.accounted is not None:
            # The same jobs: nothing below would change (``reuse.py``) but for a follow-up
            # answer about a job no longer listed, which goes as it would have.
            listed_ids = state.listed
            if any(job_id not in listed_ids for job_id in state.details):
                state.details = {k: v for k, v in state.details.items() if k in listed_ids}
                state.details_version += 1
            return
        jobs = snapshot.jobs
        moved_on = None if last is None else _moved_on(state.listed, last.jobs, jobs)
        if moved_on is not None and state.accounted is not None:
            # The same ids in the same places, some of them changed (a running job's
            # progress): no news, no new first sighting, nothing more or less to account.
            state.listed = moved_on
            if not state.details.keys() <= moved_on.keys():
                state.details = {k: v for k, v in state.details.items() if k in moved_on}
                state.details_version += 1
            return
        listed = dict(zip(map(str, map(_JOB_ID, jobs)), jobs, strict=True))
        self._note_news(state, snapshot, listed.keys())
        state.listed = listed
        if not state.details.keys() <= listed.keys():
            state.details = {k: v for k, v in state.details.items() if k in listed}
            state.details_version += 1
        if state.first_seen.keys() != listed.keys():  # else the very same: its memos hold
            first_seen = {k: v for k, v in state.first_seen.items() if k in listed}
            for job_id in listed.keys() - first_seen.keys():
                first_seen[job_id] = snapshot.polled_at
            state.first_seen = first_seen
        if state.accounted is None:  # the first good poll sets a baseline: its jobs are not news
            state.accounted = {job_id for job_id, job in listed.items() if job.finished}
        else:
            state.accounted &= listed.keys()

    def _note_news(self, state: _TargetState, snapshot: Snapshot, listed: Iterable[str]) -> None:
        """What a good poll teaches of each collection's age (``evidence.py``): its jobs' start
        times, and the time of the poll for a job seen for the first time since the first
        (``listed``: the ids of its jobs)."""
        jobs = snapshot.jobs
        ids = set(listed)
        known, state.known_jobs = state.known_jobs, ids
        state.collections = frozenset(map(_COLLECTION, jobs))
        if known is not None and known >= ids:
            return  # nothing new: the usual poll
        started = snapshot.target.job_kind.times.started
        newest: dict[str, float] = {}
        for job in jobs:
            if known is not None and str(job.job_id) in known:
                continue
            at = started(job, None)
            if known is not None:
                at = max(at or NEVER, snapshot.polled_at)
            if at is not None and at > newest.get(job.collection, NEVER):
                newest[job.collection] = at
        self._evidence.saw(snapshot.target.key[:2], newest)

    def _visible(self, cluster: str, database: str, jobs: tuple[Job, ...]) -> tuple[Job, ...]:
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

    def _apply_collections_listing(
        self, listing: CollectionsListing, states: list[_TargetState]
    ) -> None:
        """Forget the collections a list shows gone (counted ``dropped``); the ones it names
        count as listed, so a failure the server forgot stays for as long as they exist
        (``states``: those of the database's targets)."""
        cluster, database = listing.cluster, listing.database
        if not states:
            return  # no longer watched: removed while the list was on its way
        known = set().union(
            *(state.collections for state in states),
            self._memories.collections_of(cluster, database),
        )
        gone = [(cluster, database, name) for name in self._evidence.apply(listing, known)]
        for memory in self._memories.all():
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
        self._evidence.prune(listed, lambda database: self._memories.collections_of(*database))

    def _apply_details(self, key: TargetKey, details: Any) -> None:
        """Keep a follow-up answer for its job; what it says of the job's start is evidence."""
        state = self._targets.get(key)
        if state is None or state.accounted is None:
            return
        kind = state.target.job_kind
        follow_up = kind.follow_up
        if follow_up is None:
            return
        job_id = follow_up.job_id(details)
        if follow_up.kept is not None:
            details = follow_up.kept(details)
        state.details[job_id] = details
        state.details_version += 1
        job = state.listed.get(job_id)
        if job is not None and (job.finished or self._twins(state)):
            state.details_news.add(job.collection)  # only finished jobs' details are read there
        started = None if job is None else kind.times.started(job, details)
        if job is not None and started is not None and job.collection:
            self._evidence.saw(key[:2], {job.collection: started})

    @staticmethod
    def _twins(state: _TargetState) -> bool:
        """Whether the last good poll listed an id twice (then which of them a memory reads
        is not the job ``listed`` holds)."""
        return state.last_good is None or len(state.listed) != len(state.last_good.jobs)

    def _observe_durations(self, snapshot: Snapshot) -> None:
        """Observe each job the exporter sees finish, once, when its kind can time it
        (``Series.observed``: a refresh from its own times, an import from its details)."""
        state = self._targets.get(snapshot.target.key)
        if state is None or not snapshot.ok or state.accounted is None:
            return
        timed_from = (snapshot.jobs, state.details_version)
        if state.timed_from is not None and (
            state.timed_from[0] is timed_from[0] and state.timed_from[1] == timed_from[1]
        ):
            return  # the very same jobs and details: none is timed now that was not before
        state.timed_from = timed_from
        listed = state.listed
        pending = listed.keys() - state.accounted
        if not pending:
            return
        kind = state.target.job_kind
        observed = kind.series.observed
        timed = [
            (job_id, times)
            for job_id in pending
            if (times := observed(listed[job_id], state.details.get(job_id))) is not None
        ]
        if len(timed) > 1:  # observed in list order, as the sums always added them up
            position = {job_id: index for index, job_id in enumerate(listed)}
            timed.sort(key=lambda item: position[item[0]])
        cluster, database, name = snapshot.target.key
        for job_id, (final_state, seconds) in timed:
            state.accounted.add(job_id)
            if seconds >= 0:
                key = (cluster, database, final_state)
                self._memories.histogram(name, key, kind.series.buckets).observe(seconds)

    def _remember(self, snapshot: Snapshot) -> None:
        """Take a good poll into its kind's memory (only what is not confirmed gone)."""
        state = self._targets.get(snapshot.target.key)
        if state is None or not snapshot.ok:
            return
        kind = state.target.job_kind
        cluster, database, _name = snapshot.target.key
        visible = self._visible(cluster, database, snapshot.jobs)
        memory = self._memories.of(kind)
        taken = state.remembered
        if (
            taken is not None
            and taken[0] is visible
            and taken[1] == state.details_version
            and memory.touch(cluster, database, taken[2], snapshot.polled_at)
        ):
            return  # the very same jobs and details again: only their collections were listed
        if isinstance(memory, NewestFinished):
            newest = job_newest(kind, state.details, state.first_seen)
            memory.observe(
                cluster,
                database,
                visible,
                newest,
                state.details,
                snapshot.polled_at,
                None if taken is None else state.details_news,
            )
        else:
            memory.observe(cluster, database, visible, snapshot.polled_at)
        state.details_news = set()
        collections = (
            state.collections
            if visible is snapshot.jobs
            else dict.fromkeys(map(_COLLECTION, visible))
        )
        present = memory.present(cluster, database, collections)
        state.remembered = (visible, state.details_version, present)

    def families(self, now: float) -> list[MetricFamily]:
        kinds = {kind.name: kind for kind in KINDS}
        metrics = _ordered((*(metric for kind in KINDS for metric in kind.series.metrics),))
        out = new_families((*metrics, m.UNKNOWN_STATE_JOBS))
        self.rendered_jobs.next_cycle(out)
        self.rendered_counts.next_cycle()
        groups: list[tuple[TargetKey, AnyKind, _SeriesMemo, float]] = []
        counts: dict[str, list[tuple[TargetKey, _SeriesMemo]]] = {name: [] for name in kinds}
        listed: set[tuple[str, str, str, str]] = set()
        for key, state in sorted(self._targets.items()):
            snapshot = state.last_good  # kept while the target is down: last known state
            kind = kinds.get(key[2])
            if snapshot is None or kind is None:
                continue
            cluster, database, name = key
            memo = self._collection_series(state, kind, snapshot)
            out[m.UNKNOWN_STATE_JOBS].add(
                (("milvus_cluster", cluster), ("database", database), ("kind", name)),
                float(memo.unknown_states),
            )
            if isinstance(self._memories.of(kind), NewestFinished):
                listed.update((cluster, database, name, c) for c in memo.collections)
            counts[name].append((key, memo))
            groups.append((key, kind, memo, snapshot.polled_at))
        self._write_collection_counts(out, kinds, counts)
        unlisted = self._unlisted_remembered(kinds, listed)
        self._write_history(out)
        tracked = sum(len(group[2].jobs_written) for group in groups) + len(unlisted)
        if tracked <= self.max_tracked_jobs:
            self.untracked_jobs = 0
            for key, kind, memo, polled_at in groups:
                self.rendered_jobs.write_group(
                    out, kind, (key, 0), memo.jobs_written, memo.details_written, polled_at
                )
            self._write_jobs(out, kinds, unlisted, first=1)
        else:
            candidates = [
                Tracked(key, job, finished, age, polled_at, details)
                for key, _kind, memo, polled_at in groups
                for (job, finished, age, _), details in zip(
                    memo.candidates, memo.details_written, strict=True
                )
            ]
            candidates += unlisted
            self._write_jobs(out, kinds, self._apply_cardinality_guard(candidates), first=0)
        self.rendered_jobs.end_cycle()
        for name, kind in kinds.items():
            histograms = self._memories.durations.get(name, {})
            metric = kind.series.durations
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
            *(out[metric] for metric in _ordered((*metrics, m.UNKNOWN_STATE_JOBS))),
            *self._health.families(
                rows,
                self._memories.tracked,
                self._memories.forgotten,
                self.untracked_jobs,
                self.untracked_collections,
            ),
            self._removed_targets.family(now),
            *self._evidence.families(),
        ]

    def _write_jobs(
        self, out: Families, kinds: dict[str, AnyKind], items: list[Tracked], first: int
    ) -> None:
        """Per-job series of ``items``, each run of one target and poll time as one group
        (``RenderedJobs.write_group``), numbered per target from ``first``."""
        numbered: dict[TargetKey, int] = {}
        start = 0
        for end in range(1, len(items) + 1):
            item = items[start]
            if end < len(items) and (items[end].key, items[end].polled_at) == (
                item.key,
                item.polled_at,
            ):
                continue
            run = items[start:end]
            target = self._targets.get(item.key)
            known = {} if target is None else target.details
            number = numbered[item.key] = numbered.get(item.key, first - 1) + 1
            self.rendered_jobs.write_group(
                out,
                kinds[item.key[2]],
                (item.key, number),
                tuple(each.job for each in run),
                tuple(
                    known.get(str(each.job.job_id)) if each.details is None else each.details
                    for each in run
                ),
                item.polled_at,
            )
            start = end

    def _collection_series(
        self, state: _TargetState, kind: AnyKind, snapshot: Snapshot
    ) -> _SeriesMemo:
        """``collection_series`` of a target's last good poll, made again only when what it is
        made of changed: the jobs (the same objects), their counts, details, first sightings,
        what is confirmed gone and, for a ``newest_finished`` kind, what it remembers."""
        cluster, database, _name = snapshot.target.key
        gone = self._gone(cluster, database)
        memory = self._memories.of(kind)
        remember = (
            partial(memory.remembered, cluster, database)
            if isinstance(memory, NewestFinished)
            else None
        )
        memo = state.series
        if (
            memo is not None
            and gone is None
            and memo.jobs is snapshot.jobs
            and memo.counts is snapshot.collection_counts
            and memo.details_version == state.details_version
            and memo.first_seen is state.first_seen
            and (
                remember is None
                or all(
                    remember(c) is was
                    for c, was in zip(memo.collections, memo.remembered, strict=True)
                )
            )
        ):
            return memo
        jobs = self._visible(cluster, database, snapshot.jobs)
        rows: list[CollectionCounts] = []
        made = collection_series(
            rows,
            snapshot,
            jobs,
            job_order(kind, state.details, state.first_seen),
            remember,
            gone=gone,
            newest_of=job_newest(kind, state.details, state.first_seen),
        )
        collections = tuple(sorted({job.collection for job in jobs}))
        known = state.details
        memo = _SeriesMemo(
            jobs=snapshot.jobs,
            counts=snapshot.collection_counts,
            details_version=state.details_version,
            first_seen=state.first_seen,
            remembered=()
            if remember is None
            else tuple(remember(collection) for collection in collections),
            rows=tuple(rows),
            candidates=tuple(
                (item.job, item.finished, item.age_key, item.details) for item in made
            ),
            unknown_states=sum(1 for job in jobs if not job.known_state),
            collections=collections,
            rows_from=tuple(rows)
            if snapshot.collection_counts is None or gone is not None
            else snapshot.collection_counts,
            jobs_written=tuple(item.job for item in made),
            details_written=tuple(
                known.get(str(item.job.job_id)) if item.details is None else item.details
                for item in made
            ),
        )
        state.series = None if gone is not None else memo
        return memo

    def _write_collection_counts(
        self,
        out: Families,
        kinds: dict[str, AnyKind],
        counts: dict[str, list[tuple[TargetKey, _SeriesMemo]]],
    ) -> None:
        """The per-collection count series, of at most ``max_tracked_collections`` collections
        of each kind; the rest are counted in ``untracked_collections``. Under the limit, a
        target's rows are written again in one piece while what they are made of is equal."""
        self.untracked_collections = 0
        for name, made in counts.items():
            states = kinds[name].states
            families = (out[kinds[name].series.counts],)
            if sum(len(memo.rows) for _key, memo in made) <= self.max_tracked_collections:
                for key, memo in made:
                    self.rendered_counts.write(
                        key,
                        memo.rows_from,
                        families,
                        partial(_count_rows, families[0], memo.rows, states.documented),
                    )
                continue
            rows = [row for _key, memo in made for row in memo.rows]
            shown, left_out = within_collection_limit(
                rows, self.max_tracked_collections, states.succeeded
            )
            for row in shown:
                self.rendered_counts.write(
                    (row.key, row.collection),
                    row.states,
                    families,
                    partial(write_count_row, families[0], row, states.documented),
                )
            self.untracked_collections += left_out

    def _unlisted_remembered(
        self, kinds: dict[str, AnyKind], listed: set[tuple[str, str, str, str]]
    ) -> list[Tracked]:
        """The newest finished job of each collection the server no longer lists (or whose
        target has not answered since a restart): the failure it may be stays a failure."""
        return [
            Tracked(
                (cluster, database, kind.name),
                entry.job,
                True,
                entry.order[0],
                entry.last_listed,
                entry.details,
            )
            for kind, memory in self._memories.newest_finished()
            if kind.name in kinds
            for (cluster, database, collection), entry in memory.items()
            if (cluster, database, kind.name, collection) not in listed
            and not self._evidence.hidden((cluster, database, collection))
        ]

    def _write_history(self, out: Families) -> None:
        """Every remembered collection of a ``history`` kind, whether its target answers right
        now or not: these are facts about the past that an outage does not change. A
        collection's lines are rendered again only when its history changed."""
        self.rendered_history.next_cycle()
        for kind, history in self._memories.histories():
            series = kind.series.history
            if series is None or series.last_success not in out:
                continue
            families = (
                out[series.last_success],
                out[series.last_failure],
                out[series.failure_info],
            )
            for (cluster, database, collection), entry in history.items():
                if self._evidence.hidden((cluster, database, collection)):
                    continue
                self.rendered_history.write(
                    (kind.name, cluster, database, collection),
                    (
                        entry.last_success,
                        entry.last_failure,
                        entry.failure_job_id,
                        entry.failure_reason,
                    ),
                    families,
                    partial(_history_lines, families, (cluster, database, collection), entry),
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


def _count_rows(
    family: MetricFamily, rows: tuple[CollectionCounts, ...], documented: tuple[str, ...]
) -> None:
    for row in rows:
        write_count_row(family, row, documented)


def _history_lines(
    families: tuple[MetricFamily, MetricFamily, MetricFamily],
    key: tuple[str, str, str],
    entry: CollectionHistory,
) -> None:
    """A collection's last success, last failure and failure info samples (those it has)."""
    last_success, last_failure, failure_info = families
    cluster, database, collection = key
    labels = (("milvus_cluster", cluster), ("database", database), ("collection", collection))
    if entry.last_success is not None:
        last_success.add(labels, entry.last_success)
    if entry.last_failure is not None:
        last_failure.add(labels, entry.last_failure)
        failure_info.add(
            (
                *labels,
                ("job_id", entry.failure_job_id or "unknown"),
                ("reason", entry.failure_reason or "unknown"),
            ),
            1.0,
        )


def _declared(name: str) -> AnyKind | None:
    try:
        return KINDS.named(name)
    except UnknownKind:
        return None


def _moved_on(
    listed: dict[str, Job], before: tuple[Job, ...], now: tuple[Job, ...]
) -> dict[str, Job] | None:
    """The jobs by id of ``now`` when it holds the same ids of the same collections in the
    same places as ``before`` (whose jobs by id are ``listed``), none twice; else None."""
    if len(now) != len(before) or len(listed) != len(before):
        return None
    moved = dict(listed)
    for index in compress(range(len(now)), map(is_not, now, before)):
        job, was = now[index], before[index]
        job_id = str(job.job_id)
        if job_id != str(was.job_id) or job.collection != was.collection:
            return None
        moved[job_id] = job
    return moved


_POSITION = {metric: index for index, metric in enumerate(m.CATALOGUE)}


def _ordered(metrics: tuple[m.Metric, ...]) -> tuple[m.Metric, ...]:
    """The catalogue's order (the order on /metrics); a kind's metric the catalogue does not
    declare (a test's) after the declared ones, in the order given."""
    unique = tuple(dict.fromkeys(metrics))
    return tuple(
        sorted(
            unique, key=lambda metric: (_POSITION.get(metric, len(_POSITION)), unique.index(metric))
        )
    )
