"""Listed records the last list of a target already read: their jobs are reused, not re-read.

At fleet scale nearly every listed record is the same as in the last round (a finished job's
record never changes again), and reading one costs a frozen record and its validation each
round: 150,000 of them per round at 50 databases. ``RecordReuse`` wraps a kind's parser for
one list of one target: a record whose fingerprint (a hash of its field names, values and
their types, as decoded) matches one of the target's last list gives back that list's job
object itself, so the model can tell an unchanged job by identity (``job is previous``) and
keep what it made of it. Any change to a field (state, progress, reason, a count, a field
added or gone, a value of another type) changes the fingerprint, and the record is read anew.

Only records read without error are remembered, only those of the target's latest good list
(a job no longer listed is forgotten with that list), and only the jobs kept of it
(``kept.py``): a list of 500,000 imports of which the caps keep 10,000 must not hold the other
490,000 from one round to the next, nor while it is read, past the page being folded in.
Reading a record again could only differ by the clock (a time more than a day ahead of it is
refused), and the clock only moves on, so a record read without error once stays readable. A
record whose values cannot be hashed (a nested object or list) is read every time. A page
whose bytes are unchanged is not even decoded (``upstream/listing.py: KnownPages``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..upstream.listing import KnownPages, RecordParser, SeenPage
from .kept import KeepLimits, Kept
from .targets import TargetKey

J = TypeVar("J")


def fingerprint(record: dict[str, Any]) -> int:
    """A hash of the record's field names, values and their types, in their order (``1``,
    ``1.0``, ``true`` and ``"1"`` differ: a reader may take one and refuse another);
    ``TypeError`` for a value that cannot be hashed."""
    values = tuple(record.values())
    return hash((tuple(record), values, tuple(map(type, values))))


class RecordReuse(Generic[J]):
    """A kind's parser for one list of one target, giving back the jobs of the last list."""

    def __init__(self, parse: RecordParser[J], previous: dict[int, J]) -> None:
        self._parse = parse
        self._previous = previous
        self.read: dict[int, J] = {}
        """The kept jobs of this list by fingerprint: the next list's ``previous``."""
        self._page: list[tuple[int, J]] = []
        self.fresh: list[J] = []
        """The jobs read anew (not given back) since the last ``settle_page``: only they can
        say something new (``OddityLog``); a job given back was looked at when it was read."""
        self.parsed = 0
        self.reused = 0

    def __call__(self, record: Any, now: float, shared: dict[str, str]) -> J:
        if type(record) is not dict:
            return self._read(record, now, shared)
        try:
            key = fingerprint(record)
        except TypeError:  # a value that cannot be hashed: read it every time
            self.parsed += 1
            return self._read(record, now, shared)
        job = self._previous.get(key)
        if job is None:
            self.parsed += 1
            job = self._read(record, now, shared)  # a RecordError is not remembered
        else:
            self.reused += 1
        self._page.append((key, job))
        return job

    def _read(self, record: Any, now: float, shared: dict[str, str]) -> J:
        job = self._parse(record, now, shared)
        self.fresh.append(job)
        return job

    def let_go(self, job: J) -> None:
        """The job just read was left out (``ListingKeeper.take``): not remembered."""
        if self._page and self._page[-1][1] is job:
            self._page.pop()

    def settle_page(self, held: Callable[[J], bool]) -> None:
        """The page read since the last call was folded in: remember the jobs ``held``."""
        page, self._page = self._page, []
        self.fresh = []
        for key, job in page:
            if held(job):
                self.read[key] = job

    def reuse_all(self) -> None:
        """Every page was given again whole: so is every job of the last list."""
        self.read = self._previous
        self.reused += len(self._previous)

    def carry(self, jobs: Iterable[J], held: Callable[[J], bool]) -> None:
        """A page given again whole (its bytes unchanged): its jobs keep their fingerprints."""
        ids = {id(job) for job in jobs if held(job)}
        for key, job in self._previous.items():
            if id(job) in ids:
                self.read[key] = job
                self.reused += 1

    def finish(self, kept: Iterable[J]) -> None:
        """The list is read: keep only what was kept in the end."""
        ids = {id(job) for job in kept}
        self.read = {key: job for key, job in self.read.items() if id(job) in ids}


@dataclass(frozen=True, slots=True)
class _LastList:
    """What a target's last good list left for the next one to reuse."""

    jobs: dict[int, Any]
    """Its kept jobs by record fingerprint."""
    pages: tuple[SeenPage, ...] = ()
    """Its pages by digest, when nothing of it was skipped or left out (else none)."""
    kept: Kept[Any] | None = None
    """What was kept of it, with ``pages``."""


class ParsedRecords:
    """What each target's last good list read as, for the next list of the target to reuse:
    its pages' bytes (an unchanged answer is not even decoded) and its records (an unchanged
    record is not read again). Thread-safe: the pool's workers each list a different target,
    the poll loop prunes."""

    def __init__(self, limits: KeepLimits | None = None, secrets: tuple[str, ...] = ()) -> None:
        """``limits`` and ``secrets``: what was kept of a list, and what was scrubbed from it,
        depend on them (``same_reading``)."""
        self.limits = limits
        self.secrets = secrets
        self._lock = threading.Lock()
        self._lists: dict[TargetKey, _LastList] = {}
        self.parsed = 0
        """Records read (not reused) since start: what a test can watch."""
        self.reused = 0
        """Records whose job was given back, one by one or with their whole page."""

    def same_reading(self, other: ParsedRecords) -> bool:
        """Whether a list read with ``other``'s limits and secrets is kept and scrubbed as with
        these: then what these remember serves it (a reload that changed neither)."""
        return self.limits == other.limits and self.secrets == other.secrets

    def reader(self, key: TargetKey, parse: RecordParser[J]) -> RecordReuse[J]:
        with self._lock:
            last = self._lists.get(key)
        return RecordReuse(parse, {} if last is None else last.jobs)

    def pages(self, key: TargetKey) -> KnownPages:
        """The known pages of the target's last list, for its next one."""
        with self._lock:
            last = self._lists.get(key)
        return KnownPages(() if last is None else last.pages)

    def last_kept(self, key: TargetKey) -> Kept[Any] | None:
        with self._lock:
            last = self._lists.get(key)
        return None if last is None else last.kept

    def keep(
        self, key: TargetKey, reuse: RecordReuse[Any], known: KnownPages, kept: Kept[Any]
    ) -> None:
        """The list was read in full: it replaces the target's last one. Its pages are
        remembered only when every record was read and kept: then, and only then, the same
        bytes mean the same ``kept``."""
        whole = not kept.skipped and not kept.unkept_count and not known.forgotten
        with self._lock:
            self._lists[key] = _LastList(
                reuse.read,
                tuple(known.pages) if whole else (),
                kept if whole else None,
            )
            self.parsed += reuse.parsed
            self.reused += reuse.reused

    def retain(self, keys: Iterable[TargetKey]) -> None:
        """Forget the targets no longer polled."""
        wanted = set(keys)
        with self._lock:
            for key in [key for key in self._lists if key not in wanted]:
                del self._lists[key]
