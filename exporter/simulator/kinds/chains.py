"""A database's seeded stream of jobs that overlap freely (imports, restores): one chain of
dice per database and kind, spread over the database's collections of the kind's family.

Each chain owns its own `random.Random`, seeded from the world seed, the kind and the database,
so the jobs of one database do not depend on when another one was looked at.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from dataclasses import dataclass

from .base import J, Settings, Stream
from .common import INFINITY


@dataclass
class DatabaseChain:
    """One database's sequence of jobs of one kind, extended lazily as time passes. Job ids are
    `id_base` plus a sequence number above `owner_bits` bits that hold the database's index."""

    database: str
    owner_index: int
    owner_bits: int
    rng: random.Random
    id_base: int
    collections: tuple[str, ...]
    mean_gap: float
    next_auto_at: float = INFINITY
    sequence: int = 0

    def next_job_id(self) -> int:
        job_id = self.id_base + (self.sequence << self.owner_bits) + self.owner_index
        self.sequence += 1
        return job_id

    def gap(self) -> float:
        """Seconds to the next automatic job (infinite when the chain makes none)."""
        if self.mean_gap == INFINITY:
            return INFINITY
        return self.rng.uniform(0.2, 1.8) * self.mean_gap


def new_database_chain(
    kind: str,
    seed: int,
    database: str,
    owner: tuple[int, int],
    id_base: int,
    collections: tuple[str, ...],
    jobs_per_window: tuple[int, float],
) -> DatabaseChain:
    """The chain of `kind` jobs of a database; `owner` is (its index, the bits kept for it),
    `jobs_per_window` how many jobs arrive, on average, in how many seconds."""
    owner_index, owner_bits = owner
    jobs, window = jobs_per_window
    if owner_index >= 1 << owner_bits:
        raise ValueError("too many databases for the job id scheme")
    return DatabaseChain(
        database=database,
        owner_index=owner_index,
        owner_bits=owner_bits,
        rng=random.Random(f"{seed}/{kind}/{database}"),
        id_base=id_base + random.Random(f"{seed}/{kind}-ids").randrange(1 << 30),
        collections=collections,
        mean_gap=window / jobs if jobs > 0 else INFINITY,
    )


class DatabaseStream(Stream[J]):
    """A database's jobs of one kind: a history of `history_jobs` spread over the `window`
    before the database appears, then (with automatic jobs on) new ones at the same rate."""

    def __init__(
        self, settings: Settings, chain: DatabaseChain, history_jobs: int, window: float
    ) -> None:
        self.settings = settings
        self.chain = chain
        self._history_jobs = history_jobs
        self._window = window

    @abstractmethod
    def invent(self, created_at: float) -> J:
        """An automatic job created at `created_at`, its fate rolled on the chain's dice."""

    def history(self, now: float) -> list[J]:
        chain, count = self.chain, self._history_jobs
        if count <= 0:
            return []
        created = sorted(now - chain.rng.uniform(0.0, self._window) for _ in range(count))
        jobs = [self.invent(t) for t in created]
        if self.settings.options.auto_refresh:
            chain.next_auto_at = now + chain.gap()
        return jobs

    def due(self, now: float) -> list[J]:
        chain = self.chain
        jobs: list[J] = []
        while chain.next_auto_at <= now:
            created = chain.next_auto_at
            jobs.append(self.invent(created))
            chain.next_auto_at = created + chain.gap()
        return jobs

    def next_auto_at(self) -> float:
        return self.chain.next_auto_at

    def drop_collection(self, collection: str) -> None:
        chain = self.chain
        if collection not in chain.collections:
            return
        chain.collections = tuple(name for name in chain.collections if name != collection)
        if not chain.collections:
            chain.next_auto_at = INFINITY
