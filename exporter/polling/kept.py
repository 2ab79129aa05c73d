"""What of one list answer is kept: at most ``max_listed_jobs`` jobs of at most
``max_listed_collections`` collections per target and poll, whatever the server lists.

The server decides how much it lists; the exporter decides how much it keeps. Without this
step a database listing 500,000 imports held every one of them (1.1 GB at the peak) and gave
each listed collection its own count series (2.25 million samples), although only
``max_tracked_jobs`` of them could ever get per-job series. Pages are folded in one at a time
(``ListingKeeper.add``), so what is held while a long list is read is the jobs kept so far plus
one page, never the whole answer.

Under both caps everything is kept, exactly as listed. Over them:

- **Collections** are taken in the order the server lists them (the refresh list is newest
  first); which job is newer is the kind's ``ordering.listed``; the jobs of a collection past the cap are not kept and not counted in its series.
  Every kept collection's counts (``counts``) cover all its listed jobs, kept or not, so
  ``milvus_refresh_jobs`` / ``milvus_import_jobs`` stay exact for the collections shown.
- **Jobs** are kept in this order, newest first within each step: unfinished jobs; each
  collection's newest finished job when it failed; its newest finished job when it succeeded;
  the newest job of each other finished state (an older failure behind a newer success); then
  the older finished jobs. A failure therefore never makes way for a success that is older, and
  a collection's older finished jobs are never kept without its newest one (which would make an
  old failure look like the newest, and page).

What is not kept is counted by the cap that left it out (``unkept``):
``milvus_jobs_exporter_unkept_jobs{limit="max_listed_jobs"|"max_listed_collections"}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..kinds import AnyKind
from ..kinds.declaration import Job
from ..upstream.client import Listing

JOBS_LIMIT = "max_listed_jobs"
COLLECTIONS_LIMIT = "max_listed_collections"
LIMITS = (JOBS_LIMIT, COLLECTIONS_LIMIT)
"""The ``limit`` label values: each names the config key that left jobs out."""

J = TypeVar("J", bound=Job)
JobKey = tuple[str, object]
"""(collection, job id): a record listed twice (a page boundary moved) counts once."""


@dataclass(frozen=True)
class KeepLimits:
    """Per target and poll: jobs kept, and collections whose jobs are kept and counted."""

    jobs: int
    collections: int


@dataclass(frozen=True)
class Kept(Generic[J]):
    """The kept part of one list answer.

    ``counts`` maps each kept collection to its listed jobs by state (all of them, kept or
    not); ``unkept`` maps a limit (``LIMITS``) to the listed jobs it left out."""

    jobs: tuple[J, ...]
    counts: Mapping[str, Mapping[str, int]]
    unkept: Mapping[str, int]
    skipped: tuple[tuple[str, int, str], ...] = ()

    @property
    def unkept_count(self) -> int:
        return sum(self.unkept.values())


@dataclass(slots=True)
class _Collection:
    states: Counter[str] = field(default_factory=Counter)
    newest: dict[str, tuple[Any, JobKey]] = field(default_factory=dict)
    """Per finished state, the newest job ever listed in this answer (kept or not)."""

    def newest_finished(self) -> JobKey | None:
        if not self.newest:
            return None
        return max(self.newest.values(), key=lambda item: item[0])[1]


class ListingKeeper(Generic[J]):
    """Folds the pages of one list answer into what is kept (see the module docstring)."""

    def __init__(self, limits: KeepLimits, kind: AnyKind) -> None:
        """What differs between kinds here comes from ``kind``: which job is newer (its
        ``ordering.listed``; only jobs of one kind are ever compared) and which state is a
        success."""
        self._limits = limits
        self._recency = kind.ordering.listed
        self._succeeded = kind.states.succeeded
        self._jobs: dict[JobKey, J] = {}
        self._collections: dict[str, _Collection] = {}
        self._unkept: Counter[str] = Counter()
        self._skipped: Counter[str] = Counter()
        self._first_message: dict[str, str] = {}
        self._newest_known = False
        """Each collection's newest finished jobs are followed (``_know_newest``)."""
        self._trim_above = 2 * limits.jobs
        self.leaves_out = False
        """Something listed so far was skipped, or left out by a cap."""

    @property
    def held(self) -> int:
        """Jobs held right now: at most twice the cap, plus nothing of the pages already read."""
        return len(self._jobs)

    def holds(self, job: J) -> bool:
        """Whether this very job is held right now (not one listed twice, nor left out)."""
        return self._jobs.get((job.collection, job.job_id)) is job

    def add(self, listing: Listing[J]) -> None:
        """Take one page in whole (``take`` each job, then ``end_page``)."""
        self.add_skipped(listing.skipped)
        for job in listing.jobs:
            self.take(job)
        self.end_page()

    def add_skipped(self, skipped: Iterable[tuple[str, int, str]]) -> None:
        """Count a page's skipped records (reason, count, first message)."""
        for reason, count, message in skipped:
            self._skipped[reason] += count
            self._first_message.setdefault(reason, message)
            self.leaves_out = True

    def has_room(self, count: int) -> bool:
        """Whether ``count`` more jobs, each of a new collection, could be taken without a trim
        or a collection left out: then what is held follows the page, not each job."""
        return (
            len(self._jobs) + count <= self._trim_above
            and len(self._collections) + count <= self._limits.collections
        )

    def take(self, job: J) -> bool:
        """Take one job in, as it is read; trim to the job cap whenever twice the cap is held.
        Whether the job is held now (a job left out can be let go at once). Called for every
        record of every changed page: kept to one call."""
        key: JobKey = (job.collection, job.job_id)
        jobs = self._jobs
        if key in jobs:
            return False
        entry = self._collections.get(job.collection)
        if entry is None:
            if len(self._collections) >= self._limits.collections:
                self._unkept[COLLECTIONS_LIMIT] += 1
                self.leaves_out = True
                return False
            entry = self._collections[job.collection] = _Collection()
        states = entry.states
        states[job.state] = states.get(job.state, 0) + 1
        if self._newest_known and job.finished:
            self._note_newest(entry, job, key)
        jobs[key] = job
        if len(jobs) > self._trim_above:
            self._trim()
            return jobs.get(key) is job
        return True

    def end_page(self) -> None:
        """A page is taken in: trim to the job cap."""
        if len(self._jobs) > self._limits.jobs:
            self._trim()

    def result(self) -> Kept[J]:
        self._trim()
        self._drop_finished_without_their_newest()
        return Kept(
            jobs=tuple(self._jobs.values()),
            counts={name: dict(entry.states) for name, entry in self._collections.items()},
            unkept={limit: self._unkept[limit] for limit in LIMITS},
            skipped=tuple(
                (reason, self._skipped[reason], self._first_message[reason])
                for reason in sorted(self._skipped)
            ),
        )

    def _note_newest(self, entry: _Collection, job: J, key: JobKey) -> None:
        recency = self._recency(job)
        best = entry.newest.get(job.state)
        if best is None or recency > best[0]:
            entry.newest[job.state] = (recency, key)

    def _know_newest(self) -> None:
        """Find each collection's newest finished jobs, and follow them from now on. Only the
        caps need them (a trim, and what it may leave headless), so an answer under both caps,
        the usual one, never asks: every job it listed is still held, in the order listed."""
        if self._newest_known:
            return
        self._newest_known = True
        for key, job in self._jobs.items():
            if job.finished:
                self._note_newest(self._collections[job.collection], job, key)

    def _trim(self) -> None:
        excess = len(self._jobs) - self._limits.jobs
        if excess <= 0:
            return
        self._know_newest()
        ranked = sorted(self._jobs, key=lambda key: self._recency(self._jobs[key]))
        ranked.reverse()  # newest first; the sort by step below keeps that order within a step
        newest = {name: entry.newest_finished() for name, entry in self._collections.items()}
        ranked.sort(key=lambda key: self._step(key, newest))
        for key in ranked[self._limits.jobs :]:
            del self._jobs[key]
        self._unkept[JOBS_LIMIT] += excess
        self.leaves_out = True

    def _step(self, key: JobKey, newest: Mapping[str, JobKey | None]) -> int:
        """0 unfinished; 1 the collection's newest finished, failed; 2 the same, succeeded;
        3 the newest of another finished state; 4 an older finished job."""
        job = self._jobs[key]
        if not job.finished:
            return 0
        if newest.get(job.collection) == key:
            return 1 if job.state != self._succeeded else 2
        entry = self._collections[job.collection]
        return 3 if entry.newest[job.state][1] == key else 4

    def _drop_finished_without_their_newest(self) -> None:
        """A collection whose newest finished job was left out keeps none of its finished
        jobs: an older one would pass for the newest (an old failure would page). Without a
        trim no job was left out by the job cap: none is headless."""
        if not self._newest_known:
            return
        headless = set()
        for name, entry in self._collections.items():
            newest = entry.newest_finished()
            if newest is not None and newest not in self._jobs:
                headless.add(name)
        if not headless:
            return
        for key in [key for key, job in self._jobs.items() if job.finished and key[0] in headless]:
            del self._jobs[key]
            self._unkept[JOBS_LIMIT] += 1
            self.leaves_out = True


def keep_listed(limits: KeepLimits, kind: AnyKind, pages: Iterable[Listing[J]]) -> Kept[J]:
    """Fold every page of a list answer (one for an unpaged answer) into what is kept."""
    keeper: ListingKeeper[J] = ListingKeeper(limits, kind)
    for page in pages:
        keeper.add(page)
    return keeper.result()
