"""Poll every target once per round, concurrently, never above the rate limit, never stalled.

A round ends when every target has reported or at its deadline (one poll interval, or the request
timeout if that is longer), whichever comes first; it is then published. Nothing in a round waits for a target that is late: a request still running at the
deadline carries on into the next round (the target is not polled again meanwhile, and its
answer counts when it comes), and the target is reported down now with reason ``deadline``. A
token that the server paused with ``Retry-After`` is not waited for either: its queued targets
are reported ``rate_limited`` at once and polled again in a later round.

Why rounds and not a clock per target: both need the same parts (a scheduler that honours the
limiter, a bounded pool, results handed over under a lock), but rounds publish as soon as the
last target has answered instead of on a fixed timer, so a failure reaches /metrics one poll
sooner, and "cycle" keeps one meaning for the cycle metrics and the landing page. The only parts
a deadline adds are the carry-over of late answers and the ``deadline`` reason.

Within a round a single scheduler (the caller's thread) hands requests to the worker pool only
when the limiter has a free slot for the request's (credential, API path) *now*, so workers never
sit waiting on the limiter while other credentials could use them. Temporary failures (timeouts,
resets, 5xx, 429) are retried with jittered exponential backoff when the retry fits in the round.
Every request is held to its own deadline by the watchdog however slowly its bytes arrive. The
poller produces immutable ``Snapshot``s; it never formats metrics.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import structlog

from ..config.loader import ClusterConfig, Config
from ..guards.redact import redact
from ..guards.watchdog import Watchdog
from ..upstream.client import (
    COLLECTIONS_LIST,
    DATABASES_LIST,
    ApiError,
    MilvusClient,
)
from ..upstream.ratelimit import SlidingWindowLimiter, Slot
from ..upstream.retry import retry_delay
from ..upstream.transport import new_session, tls_verify
from .budget import describe_budget, lists_fit, margin_seconds
from .collection_lists import CollectionListSchedule, collections_listed, list_failed
from .describes import DescribeSchedule
from .descriptors import upstream_budget
from .discovery import DiscoverySchedule, discovered, discovery_failed
from .kept import KeepLimits
from .lists import list_target
from .oddities import OddityLog
from .repeats import RepeatedLines
from .reuse import ParsedRecords
from .snapshots import ClusterRequest, CollectionsListing, CycleResult, DiscoveryOutcome, Snapshot
from .targets import Target, TargetKey, limiter_rate, targets_of
from .tasks import PollRound, PollTask, log_fields
from .watchlist import Watchlist

log = structlog.get_logger("exporter.polling.poller")

RATE_LIMITED_PAUSE_SECONDS = 1.0
STOP_CHECK_SECONDS = 0.25
LAST_IN_LINE = (True, math.inf)
"""The place of a target without due describes: its list goes after those with some."""


def _release(slot: Slot, _done: Future[None]) -> None:
    slot.release()


class Poller:
    """Owns the HTTP sessions, the limiter, the watchdog and the worker pool for one config.

    Only one thread calls ``poll_cycle`` at a time; workers hand their results back through
    ``_inbox`` under ``_lock``, which also guards the queues and the running tasks.
    """

    def __init__(
        self,
        config: Config,
        *,
        limiter: SlidingWindowLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        described_finished: dict[TargetKey, set[str]] | None = None,
        listed_databases: dict[str, tuple[str, ...]] | None = None,
        collection_lists: CollectionListSchedule | None = None,
        list_collections: bool = True,
        parsed_records: ParsedRecords | None = None,
        oddities: OddityLog | None = None,
    ) -> None:
        """``list_collections`` False: no ``collections/list`` (``check`` needs no evidence);
        ``parsed_records``: an earlier poller's (a reload), used when read and kept alike;
        ``oddities``: what an earlier poller said (a page it read is not noted again)."""
        self.config = config
        self._list_collections = list_collections
        self._discovery = DiscoverySchedule(config, listed_databases, clock)
        self._collection_lists = CollectionListSchedule(config, clock, collection_lists)
        self.targets = targets_of(config, self._discovery.listed)
        self.limiter = limiter or SlidingWindowLimiter(limiter_rate(config), clock=clock)
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._watchdog = Watchdog(clock=clock, name="poll-watchdog")
        budget = upstream_budget(config)
        if budget.limited:
            log.warning(
                "poll.descriptors_limited",
                fd_limit=budget.soft_limit,
                max_concurrent_requests=config.max_concurrent_requests,
                concurrent_requests=budget.concurrency,
                warning=budget.warning,
            )
        self._concurrency = budget.concurrency
        """Requests in flight at most: ``max_concurrent_requests``, or fewer when the
        descriptor limit would leave the HTTP server none (``descriptors.py``)."""
        self._sessions = {
            cluster.name: new_session(budget.pool_size) for cluster in config.clusters
        }
        self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="poll")
        self._closed = threading.Event()
        self._lock = threading.Condition()
        self._pending: dict[tuple[str, str], deque[PollTask]] = {}
        self._delayed: list[PollTask] = []
        self._running: dict[TargetKey, PollTask] = {}
        """List polls in flight, possibly started in an earlier round."""
        self._in_flight = 0
        self._late_rounds: dict[TargetKey, int] = {}
        self._round_deadline = math.inf
        self._inbox: list[Snapshot] = []
        self._inbox_requests: list[ClusterRequest] = []
        self._inbox_details: list[tuple[TargetKey, Any]] = []
        self.oddities = oddities or OddityLog()
        self._repeated_failures = RepeatedLines(clock=clock)
        self._repeated_unkept = RepeatedLines(clock=clock)
        self._describe_margin = margin_seconds(config)
        """No follow-up starts this close to a round's deadline (``budget.py``)."""
        self._round_seconds = self.poll_budget
        self._round_lists: Counter[tuple[str, str]] = Counter()
        """Lists of the current round by (credential, API path)."""
        self._describe_budgets: dict[tuple[str, str], int] = {}
        """Follow-ups the current round may still start, by (credential, API path)."""
        self._repeated_short = RepeatedLines(clock=clock)
        self._round_started = 0.0
        self._first_due: dict[TargetKey, tuple[bool, float]] = {}
        """Per target with due jobs, the place in line of its first at the round's start."""
        self._credentials: dict[TargetKey, str] = {}
        self._overloaded: set[str] = set()
        """Credentials whose lists alone need more than a round at the rate limit."""
        self._inbox_discoveries: list[tuple[DiscoveryOutcome, tuple[str, ...] | None]] = []
        self._inbox_collections: list[CollectionsListing] = []
        self._describes = DescribeSchedule(config.max_import_describes, described_finished)
        """The follow-ups of every kind that declares one (their job ids never collide: the
        schedule is per target, and a target is of one kind)."""
        self._keep_limits = KeepLimits(config.max_listed_jobs, config.max_listed_collections)
        self.parsed_records = ParsedRecords(self._keep_limits, config.secrets)
        if parsed_records is not None and parsed_records.same_reading(self.parsed_records):
            self.parsed_records = parsed_records
        """Each target's last listed jobs, reused for unchanged records (``reuse.py``)."""

    @property
    def listed_databases(self) -> dict[str, tuple[str, ...]]:
        """Each pattern cluster's last discovered databases, to hand to a reloaded config."""
        return dict(self._discovery.listed)

    @property
    def collection_lists(self) -> CollectionListSchedule:
        """When each database's collections are listed next, to hand to a reloaded config."""
        return self._collection_lists

    @property
    def watchlist(self) -> Watchlist:
        """What the config names across every shard, given discovery's last lists."""
        return Watchlist(self.config, dict(self._discovery.listed))

    @property
    def described_finished(self) -> dict[TargetKey, set[str]]:
        """Finished jobs already followed up, to hand to the poller of a reloaded config."""
        return self._describes.described_finished

    @property
    def poll_budget(self) -> float:
        """How long a round, and one poll of one target (all its pages), may take: the poll
        interval, or the request timeout if that is longer (a request gets its whole timeout)."""
        return max(self.config.poll_interval, self.config.request_timeout)

    def close(self) -> None:
        """Stop at once: requests in flight are cut by the watchdog, nothing new starts."""
        self._closed.set()
        with self._lock:
            self._lock.notify_all()
        self._watchdog.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for session in self._sessions.values():
            session.close()

    def poll_cycle(
        self, stop: threading.Event | None = None, deadline: float | None = None
    ) -> CycleResult:
        """Poll every target once; return when all have reported or at ``deadline`` (on the
        poller's clock; default ``poll_budget`` from now)."""
        started_wall = self._wall_clock()
        started = self._clock()
        current = PollRound(
            deadline=started + self.poll_budget if deadline is None else deadline,
            targets=self.targets,
            waiting={target.key for target in self.targets},
        )
        with self._lock:
            self._round_deadline = current.deadline
            self._round_seconds = current.deadline - started
            self._round_started = started
            self._credentials = {
                target.key: target.cluster.credential_id for target in self.targets
            }
            self._describe_budgets = {}
            carried = (
                set(self._running)
                | {task.target.key for queue in self._pending.values() for task in queue}
                | {task.target.key for task in self._delayed}
            )
            self.parsed_records.retain(target.key for target in self.targets)
            self._first_due = self._describes.first_in_line()
            for target in sorted(  # first the targets whose due describes waited longest
                self.targets, key=lambda target: self._first_due.get(target.key, LAST_IN_LINE)
            ):
                if target.key not in carried:  # a late poll from before still counts
                    self._queue(PollTask(target))
            self._queue_discoveries(started)
            watched = self.targets if self._list_collections else ()
            for target in self._collection_lists.due(started, watched):
                self._queue(PollTask(target, list_collections=True))
            self._count_lists()
            while True:
                self._absorb(current)
                now = self._clock()
                stopping = self._closed.is_set() or (stop is not None and stop.is_set())
                if stopping or now >= current.deadline or self._round_done(current):
                    break
                next_wake = self._dispatch(now, current)
                wait = next_wake - now if next_wake < math.inf else STOP_CHECK_SECONDS
                wait = min(wait, current.deadline - now, STOP_CHECK_SECONDS)
                self._lock.wait(timeout=max(0.001, wait))
            self._end_round(current)
            requests, self._inbox_requests = self._inbox_requests, []
            details, self._inbox_details = self._inbox_details, []
            backlog = self._describes.backlog(self._described_targets(), self._clock())
        return CycleResult(
            targets=current.targets,
            snapshots=tuple(current.snapshots),
            requests=tuple(requests),
            started_at=started_wall,
            seconds=self._clock() - started,
            follow_ups=tuple(details),
            late=tuple(current.late),
            discoveries=tuple(current.discoveries),
            targets_changed=current.targets != self.targets,
            discovery_clusters=self._discovery.clusters,
            collection_lists=tuple(current.collection_lists),
            watchlist=self.watchlist,
            describe_backlog=tuple(backlog),
        )

    def _count_lists(self) -> None:
        """Count the round's lists by token and path, and say when they alone need more than
        the round at the rate limit (called locked). Those that do not fit keep their place at
        the front of the queue for the next round (``_end_round``), so each target is listed
        at least every other round, oldest first; the warning repeats every ten minutes."""
        self._round_lists = Counter(
            key for key, queue in self._pending.items() for task in queue if task.is_list
        )
        rate = self.limiter.throughput
        self._overloaded = set()
        for (credential, api), lists in self._round_lists.items():
            if lists_fit(rate, self._round_seconds, lists):
                self._repeated_short.clear((credential, api))
                continue
            self._overloaded.add(credential)
            repeated = self._repeated_short.due((credential, api), "too_short")
            if repeated is None:
                continue
            log.warning(
                "poll.interval_too_short",
                api=api,
                lists=lists,
                seconds_needed=round(lists / rate, 1),
                round_seconds=round(self._round_seconds, 1),
                poll_interval=self.config.poll_interval,
                requests_per_second=rate,
                hint="the lists of one token and path take longer than a round at the rate "
                "limit: raise poll_interval, or split the targets over shards or tokens",
                **({"repeated": repeated} if repeated else {}),
            )

    def _held_until(self, credential: str, task: PollTask, now: float, current: PollRound) -> float:
        """Until when the describe ``task`` waits for the list of an older job (0: it may go;
        ``inf``: until that list answers; called locked).

        A target of ``credential`` not yet listed this round may have a due job that waited
        longer than ``task``'s (by its last listing). The describe then waits for that list, so
        the describes of every target go oldest first, while the lists (on paths of their own)
        take the slots they need first. A list started the describe margin ago no longer holds
        anything (a database that hangs, or whose list waits for a retry, must not stop the
        others' describes), and none
        does when the lists alone do not fit the round (``poll.interval_too_short``): some
        targets are then not listed this round at all, and the describes take what the rate
        limit leaves in the order the lists answer."""
        if credential in self._overloaded:
            return 0.0
        held = 0.0
        for key in current.waiting:
            first = self._first_due.get(key)
            if first is None or first >= task.place[:2]:
                continue
            if self._credentials.get(key) != credential:
                continue
            started = self._list_started(key)
            if started is None:
                return math.inf  # queued: it starts at the next slot of its path
            held = max(held, started + self._describe_margin)
        return held if held > now else 0.0

    def _list_started(self, key: TargetKey) -> float | None:
        """When the list of ``key`` running or waiting for a retry first started; None while
        it is queued (called locked)."""
        running = self._running.get(key)
        if running is not None:
            return running.started
        for task in self._delayed:
            if task.is_list and task.target.key == key:
                return task.started
        return None

    def _described_targets(self) -> list[TargetKey]:
        """The targets whose kind's follow-up is on (their describe backlog is reported)."""
        return [target.key for target in self.targets if self._follow_up_bound(target) > 0]

    def _follow_up_bound(self, target: Target) -> int:
        """The target's follow-ups per listing at most (its kind's ``per_round``); 0 if its
        kind declares none or its switch is off."""
        follow_up = target.job_kind.follow_up
        if follow_up is None or not getattr(self.config, follow_up.switch):
            return 0
        return int(getattr(self.config, follow_up.per_round))

    def _describe_budget(self, key: tuple[str, str]) -> int:
        """Follow-ups this round may still start on ``key`` (called locked; ``budget.py``)."""
        if key not in self._describe_budgets:
            self._describe_budgets[key] = describe_budget(
                self.limiter.throughput, self._round_seconds, self._describe_margin,
                self._round_lists[key],
            )  # fmt: skip
        return self._describe_budgets[key]

    def _round_done(self, current: PollRound) -> bool:
        """Every target reported and no follow-up is queued or running (called locked)."""
        return (
            not current.waiting and not self._pending and not self._delayed and not self._in_flight
        )

    def _absorb(self, current: PollRound) -> None:
        """Take finished polls into the round; queue their follow-ups (called locked)."""
        for outcome, listed in self._inbox_discoveries:
            current.discoveries.append(outcome)
            self._discovery.apply(outcome, listed)
            if outcome.ok:
                self.targets = targets_of(self.config, self._discovery.listed)
                self._describes.forget({target.key for target in self.targets})
        self._inbox_discoveries = []
        current.collection_lists += self._inbox_collections
        self._inbox_collections = []
        arrived, self._inbox = self._inbox, []
        for snapshot in arrived:
            current.waiting.discard(snapshot.target.key)
            self._late_rounds.pop(snapshot.target.key, None)
            current.snapshots.append(snapshot)
            self._queue_follow_ups(snapshot)

    def _end_round(self, current: PollRound) -> None:
        """Deal with the targets that have not answered in time (called locked).

        A late target keeps its place: a poll still running carries on, and one still queued
        (the rate limit allows fewer polls per round than there are targets) stays at the front
        of its queue, so every target is polled in turn and none starves. One late round is
        just late (the target keeps its last state, and counts in ``late``); a second one in a
        row reports it down with reason ``deadline``.
        """
        now = self._clock()
        for limit_key, queue in list(self._pending.items()):
            self._give_back(task for task in queue if task.is_bonus)
            kept = deque(task for task in queue if not task.is_bonus)  # lists, discoveries
            if kept:
                self._pending[limit_key] = kept
            else:
                del self._pending[limit_key]  # bonus requests never wait a round
        targets = {target.key: target for target in current.targets}
        for key in sorted(current.waiting):
            current.late.append(key)
            self._late_rounds[key] = self._late_rounds.get(key, 0) + 1
            if self._late_rounds[key] < 2:
                continue
            running = self._running.get(key)
            if running is not None:
                message = (
                    f"no answer for two rounds ({self.poll_budget:g}s each); the request has run "
                    f"{now - running.started:.1f}s and still counts when it ends"
                )
            else:
                message = (
                    f"not polled for two rounds ({self.poll_budget:g}s each): more targets per "
                    "token than requests_per_second allows in a poll_interval"
                )
            current.snapshots.append(
                self._failed(targets[key], running, ApiError("deadline", message))
            )

    def _give_back(self, tasks: Iterable[PollTask], after: float = 0.0) -> None:
        """Bonus requests dropped from a round: collection lists are due again (details are
        asked again after the next list anyway)."""
        for task in tasks:
            if task.list_collections:
                key = (task.target.cluster.name, task.target.database)
                self._collection_lists.retry(key, after)

    def _queue(self, task: PollTask) -> None:
        self._pending.setdefault(self._limit_key(task), deque()).append(task)

    def _limit_key(self, task: PollTask) -> tuple[str, str]:
        return (task.target.cluster.credential_id, task.api)

    def _dispatch(self, now: float, current: PollRound) -> float:
        """Start every request that may start now; return when the next one may (called locked)."""
        next_wake = math.inf
        still_delayed = []
        for task in self._delayed:
            if task.not_before <= now:
                self._queue(task)
            else:
                still_delayed.append(task)
                next_wake = min(next_wake, task.not_before)
        self._delayed = still_delayed
        progressed = True
        while progressed and self._pending:
            progressed = False
            started_level = math.inf  # a pass that starts a list starts nothing of lower priority
            for key in sorted(self._pending, key=lambda key: self._pending[key][0].priority):
                if self._in_flight >= self._concurrency:
                    return next_wake
                if self._pending[key][0].priority > started_level:
                    break
                queue = self._pending[key]
                if self.limiter.paused_for(key) > current.deadline - now:
                    self._defer(key, queue, now)  # Retry-After reaches past the round: don't wait
                    continue
                if queue[0].describe_job_id is not None:
                    held = self._held_until(key[0], queue[0], now, current)
                    if held > 0:  # an older job of a target not listed yet goes first
                        next_wake = min(next_wake, held)
                        continue
                if queue[0].is_bonus and (
                    now + self._describe_margin > current.deadline
                    or (queue[0].describe_job_id is not None and self._describe_budget(key) <= 0)
                ):
                    del self._pending[key]  # a bonus: never stretch the round for it
                    self._give_back(queue)  # follow-ups left keep their wait: first next round
                    continue
                slot, wait = self.limiter.take_or_wait(key)
                if slot is None:
                    next_wake = min(next_wake, now + wait)
                    continue
                task = queue.popleft()
                task.slot = slot
                started_level = min(started_level, task.priority)
                if task.describe_job_id is not None:
                    self._describe_budgets[key] -= 1
                if not queue:
                    del self._pending[key]
                self._in_flight += 1
                if task.is_list:
                    if task.attempts == 0:
                        task.started = now
                    self._running[task.target.key] = task
                progressed = True
                try:
                    future = self._executor.submit(self._run, task)
                except RuntimeError:  # closed meanwhile (shutdown): start nothing more
                    slot.release()
                    self._in_flight -= 1
                    self._running.pop(task.target.key, None)
                    return next_wake
                # the attempt is over (or cancelled at shutdown): an unsent slot counts from now
                future.add_done_callback(partial(_release, slot))
        return next_wake

    def _defer(self, key: tuple[str, str], queue: deque[PollTask], now: float) -> None:
        """Report the queued polls of a paused token and path as rate limited (called locked)."""
        del self._pending[key]
        paused = self.limiter.paused_for(key)
        self._give_back(queue, paused)
        for task in queue:
            if task.discover:  # tried again once the pause is over
                self._discovery.postpone(task.target.cluster.name, paused)
            elif task.is_list:
                error = ApiError(
                    "rate_limited",
                    f"deferred: the server asked this token to wait {paused:.0f}s (Retry-After)",
                )
                self._inbox.append(self._failed(task.target, task, error))

    def _run(self, task: PollTask) -> None:
        """Worker: one attempt at one target (or one describe), then report back."""
        if task.describe_job_id is not None:
            self._run_describe(task)
            return
        if task.discover:
            self._run_discovery(task)
            return
        if task.list_collections:
            self._run_collections_list(task)
            return
        target = task.target
        task.attempts += 1
        requests_seen: list[ClusterRequest] = []
        snapshot: Snapshot | None = None
        error: ApiError | None = None
        try:
            snapshot = self._poll_once(target, task, requests_seen)
        except ApiError as failure:
            error = failure
            if failure.reason == "rate_limited":
                self.limiter.pause(
                    self._limit_key(task), failure.retry_after or RATE_LIMITED_PAUSE_SECONDS
                )
        except Exception as failure:  # a bug must not take the daemon down; logged and counted
            log.exception("poll.internal_error", **log_fields(target))
            error = ApiError("internal", type(failure).__name__)
        with self._lock:
            self._in_flight -= 1
            self._running.pop(target.key, None)
            self._inbox_requests.extend(requests_seen)
            retry_at = None if error is None else self._retry_time(task, error)
            if error is not None and retry_at is not None:
                log.info(
                    "poll.retry", **log_fields(target), reason=error.reason, attempt=task.attempts
                )
                task.not_before = retry_at
                self._delayed.append(task)
            elif snapshot is not None:
                self._repeated_failures.clear(target.key)
                self._inbox.append(snapshot)
            elif error is not None:
                self._inbox.append(self._failed(target, task, error))
            self._lock.notify()

    def _queue_follow_ups(self, snapshot: Snapshot) -> None:
        """After a list of a kind with a follow-up (``import/describe``): follow up unfinished
        jobs, and finished ones once, at most its ``per_round`` per round, while its ``switch``
        is on (``describes.py``; called locked)."""
        if not snapshot.ok:
            return
        per_round = self._follow_up_bound(snapshot.target)
        if per_round <= 0:
            return
        due = self._describes.pick(snapshot.target.key, snapshot.jobs, self._clock(), per_round)
        if not due:
            return
        tasks = [
            PollTask(snapshot.target, describe_job_id=item.job_id, place=item.order) for item in due
        ]
        key = self._limit_key(tasks[0])
        queued = self._pending.get(key, deque())
        self._pending[key] = deque(  # oldest wait first, across every target of the token
            sorted((*queued, *tasks), key=lambda task: task.place)
        )

    def _run_describe(self, task: PollTask) -> None:
        """Worker: one follow-up of one listed job; a failure costs only its details."""
        requests_seen: list[ClusterRequest] = []
        details: Any = None
        job_id = task.describe_job_id or ""
        kind = task.target.job_kind
        follow_up = kind.follow_up
        assert follow_up is not None, "a follow-up of a kind that declares none"
        try:
            client = self._client(
                task.target.cluster, follow_up.api, requests_seen, self._clock(), task.slot
            )
            details = client.describe(follow_up.api, follow_up.body(job_id), follow_up.read)
        except ApiError as error:
            log.debug(
                f"{kind.name}.describe_failed",
                **log_fields(task.target),
                job_id=job_id,
                reason=error.reason,
            )
        except Exception:  # a bug must not take the daemon down
            log.exception(
                f"{kind.name}.describe_internal_error", **log_fields(task.target), job_id=job_id
            )
        with self._lock:
            self._in_flight -= 1
            self._inbox_requests.extend(requests_seen)
            if details is not None:
                self._inbox_details.append((task.target.key, details))
            finished = details is not None and follow_up.final(details)
            self._describes.tried(task.target.key, job_id, finished, self._clock())
            self._lock.notify()

    def _queue_discoveries(self, now: float) -> None:
        """Ask every due pattern cluster for its databases (called locked)."""
        queued = (
            task.target.cluster.name
            for queue in self._pending.values()
            for task in queue
            if task.discover
        )
        for cluster in self._discovery.due(now, queued):
            self._queue(PollTask(Target(cluster, "", "discovery"), discover=True))

    def _run_discovery(self, task: PollTask) -> None:
        """Worker: list a cluster's databases; a failure keeps the last known list."""
        cluster = task.target.cluster
        requests_seen: list[ClusterRequest] = []
        listed: tuple[str, ...] | None = None
        try:
            client = self._client(cluster, DATABASES_LIST, requests_seen, self._clock(), task.slot)
            listed = client.list_databases()
            outcome = discovered(
                cluster, self._wall_clock(), listed, self.config.max_discovered_databases
            )
        except Exception as failure:  # an ApiError, or a bug that must not take the daemon down
            outcome = discovery_failed(cluster, self._wall_clock(), failure, self.config.secrets)
        with self._lock:
            self._in_flight -= 1
            self._inbox_requests.extend(requests_seen)
            self._inbox_discoveries.append((outcome, listed))
            self._lock.notify()

    def _run_collections_list(self, task: PollTask) -> None:
        """Worker: list a database's collections; a failure is only counted (no evidence)."""
        target = task.target
        requests_seen: list[ClusterRequest] = []
        message = ""
        at = self._wall_clock()  # the list says nothing of what is created after it is sent
        try:
            client = self._client(
                target.cluster, COLLECTIONS_LIST, requests_seen, self._clock(), task.slot
            )
            outcome = collections_listed(target, at, client.list_collections(target.database))
        except Exception as failure:  # an ApiError, or a bug that must not take the daemon down
            outcome, message = list_failed(target, at, failure, self.config.secrets)
            if isinstance(failure, ApiError) and failure.reason == "rate_limited":
                pause = failure.retry_after or RATE_LIMITED_PAUSE_SECONDS
                self.limiter.pause(self._limit_key(task), pause)
        with self._lock:
            self._in_flight -= 1
            self._inbox_requests.extend(requests_seen)
            self._inbox_collections.append(outcome)
            self._collection_lists.done(target.cluster, outcome, message)
            self._lock.notify()

    def _client(
        self,
        cluster: ClusterConfig,
        preacquired_api: str,
        requests_seen: list[ClusterRequest],
        started: float,
        preacquired: Slot | None = None,
    ) -> MilvusClient:
        """A client whose first request to ``preacquired_api`` uses the slot the scheduler took
        (``preacquired``), and whose every request (pages included) ends within the poll budget
        from ``started``."""
        deadline = started + self.poll_budget
        first_request = True

        def gate(api: str) -> Slot | None:
            nonlocal first_request
            if first_request and api == preacquired_api:
                first_request = False  # the scheduler already took this slot
                return preacquired
            return self._acquire((cluster.credential_id, api), deadline)

        return MilvusClient(
            cluster.endpoint,
            cluster.token,
            self._sessions[cluster.name],
            self.config.request_timeout,
            gate=gate,
            observe=lambda record: requests_seen.append(ClusterRequest(cluster.name, record)),
            max_response_bytes=self.config.max_response_bytes,
            verify=tls_verify(cluster),
            clock=self._clock,
            wall_clock=self._wall_clock,
            watchdog=self._watchdog,
            secrets=self.config.secrets,
            deadline=deadline,
            max_import_pages=self.config.max_import_pages,
            max_listing_bytes=self.config.max_listing_bytes,
        )

    def _acquire(self, key: tuple[str, str], deadline: float) -> Slot:
        """Wait for a rate-limit slot for a follow-up page, but never past the poll's deadline."""
        while True:
            slot, wait = self.limiter.take_or_wait(key)
            if slot is not None:
                return slot
            if self._clock() + wait > deadline:
                raise ApiError("deadline", "no rate-limit slot left before the poll's deadline")
            if self._closed.wait(wait):
                raise ApiError("deadline", "the exporter is stopping")

    def _poll_once(
        self, target: Target, task: PollTask, requests_seen: list[ClusterRequest]
    ) -> Snapshot:
        """One list of the target's kind, as its declaration says (``lists.py``)."""
        client = self._client(target.cluster, target.api, requests_seen, self._clock(), task.slot)
        polled_at = self._wall_clock()
        kept = list_target(client, target, self._keep_limits, self.oddities, self.parsed_records)
        self.oddities.note_clock_skew(target.cluster.name, client.clock_skew)
        seconds = self._clock() - task.started
        self._say_unkept(target, kept.unkept)
        log.debug(
            "poll.finished",
            **log_fields(target),
            jobs=len(kept.jobs),
            skipped=sum(count for _reason, count, _message in kept.skipped),
            unkept=kept.unkept_count,
            ms=round(seconds * 1000),
        )
        return Snapshot(
            target=target,
            polled_at=polled_at,
            ok=True,
            jobs=kept.jobs,
            seconds=seconds,
            attempts=task.attempts,
            skipped_records=kept.skipped,
            collection_counts=kept.counts,
            unkept=kept.unkept,
        )

    def _say_unkept(self, target: Target, unkept: Mapping[str, int]) -> None:
        """Listed jobs left out by a cap: a warning when it starts, then every ten minutes."""
        if not any(unkept.values()):
            self._repeated_unkept.clear(target.key)
            return
        repeated = self._repeated_unkept.due(target.key, "unkept")
        if repeated is None:
            return
        log.warning(
            "poll.jobs_not_kept",
            **log_fields(target),
            **{f"over_{limit}": count for limit, count in unkept.items()},
            max_listed_jobs=self.config.max_listed_jobs,
            max_listed_collections=self.config.max_listed_collections,
            **({"repeated": repeated} if repeated else {}),
        )

    def _retry_time(self, task: PollTask, error: ApiError) -> float | None:
        """When to try again, if the retry can still finish within the current round (called
        locked: the round's deadline is read)."""
        delay = retry_delay(error, task.attempts, self.config.max_retries, self._rng)
        if delay is None:
            return None
        retry_at = self._clock() + delay
        if retry_at + self.config.request_timeout > self._round_deadline:
            return None  # a retry that could outlast the round would only end as a deadline
        return retry_at

    def _failed(self, target: Target, task: PollTask | None, error: ApiError) -> Snapshot:
        """A failed poll, logged the first time and then only every ten minutes while it
        repeats (``repeats.py``); the counters on /metrics count every one."""
        message = redact(error.message, *self.config.secrets)
        repeated = self._repeated_failures.due(target.key, error.reason)
        if repeated is not None:
            log.warning(
                "poll.failed",
                **log_fields(target),
                reason=error.reason,
                error=message,
                attempts=task.attempts if task else 0,
                **({"repeated": repeated} if repeated else {}),
            )
        return Snapshot(
            target=target,
            polled_at=self._wall_clock(),
            ok=False,
            reason=error.reason,
            message=message,
            seconds=self._clock() - task.started if task and task.started else 0.0,
            attempts=task.attempts if task else 0,
        )
