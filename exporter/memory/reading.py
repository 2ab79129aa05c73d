"""Reading a loaded state file, entry by entry, into what the model takes back: each kind's memory
(``KindMemory``) and the sections every kind shares (``SavedState``). A bad entry is dropped and
counted by section; the fields of every entry are checked by ``kinds/saved.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..exposition.families import HistogramState
from ..kinds import KINDS, AnyKind
from ..kinds.declaration import HISTORY
from ..kinds.saved import SavedFields
from .history import CollectionHistory, CollectionKey
from .newest_finished import RememberedJob
from .removals import RemovedTarget

DatabaseKey = tuple[str, str]
HistogramKey = tuple[str, str, str]
TargetKey = tuple[str, str, str]
T = TypeVar("T")
Entry = dict[str, Any]


@dataclass
class KindMemory:
    """What a restart must not forget of one kind: its memory (``history`` or
    ``newest_finished``, as the kind declares), the finished jobs its histogram has counted by
    database, and its duration histograms."""

    history: list[tuple[CollectionKey, CollectionHistory]] = field(default_factory=list)
    newest_finished: list[tuple[CollectionKey, RememberedJob]] = field(default_factory=list)
    seen: dict[DatabaseKey, set[str]] = field(default_factory=dict)
    durations: dict[HistogramKey, HistogramState] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.history or self.newest_finished or self.seen or self.durations)


@dataclass
class SavedState:
    """Everything the model remembers that the server may no longer know."""

    kinds: dict[str, KindMemory] = field(default_factory=dict)
    watched: set[TargetKey] = field(default_factory=set)
    removed: list[RemovedTarget] = field(default_factory=list)
    gone: list[tuple[CollectionKey, float]] = field(default_factory=list)
    unknown_kinds: dict[str, Any] = field(default_factory=dict)
    """The memory of kinds this exporter does not declare, as read: written back unchanged."""
    dropped: dict[str, int] = field(default_factory=dict, compare=False)
    """Entries of a loaded file left out as unusable, by section."""

    def of(self, kind: str) -> KindMemory:
        """The memory of ``kind`` (empty if none was saved)."""
        return self.kinds.get(kind) or KindMemory()


Upgrade = Callable[[str, Any], Entry]
"""Turns an entry of a version 1 section (by the section's shape) into the keyed form."""


class Reader:
    """Reads a loaded document's sections entry by entry; a bad entry is dropped and counted.

    Every entry is read in the keyed form; ``upgrade`` (version 1) turns an entry of the older
    positional form into it first, so every version passes the same checks."""

    def __init__(self, now: float | None, upgrade: Upgrade | None = None) -> None:
        self.fields = SavedFields(now)
        self.upgrade = upgrade
        self.dropped: Counter[str] = Counter()

    def entries(
        self,
        document: dict[str, Any],
        section: str,
        read: Callable[[Entry], T],
        shape: str | None = None,
        counted_as: str | None = None,
    ) -> list[T]:
        """The entries of ``section`` that can be read; ``shape`` names their version 1 form
        when it is not the section's own name; ``counted_as`` where a bad one is counted."""
        items = document.get(section, [])
        where = counted_as or section
        if not isinstance(items, list):
            self.dropped[where] += 1
            return []
        out = []
        for item in items:
            try:
                entry = self.upgrade(shape or section, item) if self.upgrade else keyed(item)
                out.append(read(entry))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
                self.dropped[where] += 1
        return out

    def kinds(self, sections: Any) -> tuple[dict[str, KindMemory], dict[str, Any]]:
        """Version 3's ``kinds``: each declared kind's memory read, the others kept as read."""
        if not isinstance(sections, dict):
            self.dropped["kinds"] += 1
            return {}, {}
        kinds: dict[str, KindMemory] = {}
        unknown: dict[str, Any] = {}
        for name, section in sections.items():
            kind = declared(name)
            if kind is None:
                unknown[name] = section
                continue
            if not isinstance(section, dict):
                self.dropped[f"kinds.{name}"] += 1
                continue
            memory = self.kind_memory(kind, section, f"kinds.{name}.")
            if memory:
                kinds[name] = memory
        return kinds, unknown

    def kind_memory(
        self,
        kind: AnyKind,
        document: dict[str, Any],
        prefix: str = "",
        sections: tuple[str, str, str] = ("", "seen", "durations"),
    ) -> KindMemory:
        """One kind's memory from the ``sections`` (memory, seen, durations) of ``document``
        (the memory's section is named after its strategy unless given)."""
        memory_section, seen, durations = sections
        memory_section = memory_section or kind.memory
        memory = KindMemory()

        def counted(section: str) -> str:
            return prefix + section

        if kind.memory == HISTORY:
            memory.history = self.entries(
                document, memory_section, self.collection, HISTORY, counted(memory_section)
            )
        else:
            memory.newest_finished = self.entries(
                document,
                memory_section,
                lambda entry: self.remembered(kind, entry),
                "newest_finished",
                counted(memory_section),
            )
        if seen:
            memory.seen = dict(self.entries(document, seen, self.seen, "seen", counted(seen)))
        if durations:
            memory.durations = dict(
                self.entries(
                    document,
                    durations,
                    lambda entry: self.histogram(kind.series.buckets, entry),
                    "histogram",
                    counted(durations),
                )
            )
        return memory

    def collection(self, entry: Entry) -> tuple[CollectionKey, CollectionHistory]:
        fields = self.fields
        return (
            _collection_key(entry),
            CollectionHistory(
                last_success=fields.time(entry.get("last_success")),
                last_failure=fields.time(entry.get("last_failure")),
                last_listed=fields.required_time(entry["last_listed"]),
                failure_job_id=fields.text(entry.get("failure_job_id", "")),
                failure_reason=fields.text(entry.get("failure_reason", "")),
            ),
        )

    def seen(self, entry: Entry) -> tuple[DatabaseKey, set[str]]:
        """Job ids by database; version 2's refresh entries grouped them by collection."""
        fields = self.fields
        if "job_ids" in entry:
            jobs = {fields.identifier(job) for job in as_list(entry["job_ids"])}
        else:
            jobs = set()
            for item in as_list(entry["collections"]):
                jobs.update(fields.identifier(job) for job in as_list(keyed(item)["job_ids"]))
        return (fields.text(entry["cluster"]), fields.text(entry["database"])), jobs

    def histogram(
        self, bounds: tuple[float, ...], entry: Entry
    ) -> tuple[HistogramKey, HistogramState]:
        fields = self.fields
        counts, total = entry["buckets"], entry["sum"]
        if not isinstance(counts, list) or len(counts) != len(bounds):
            raise ValueError("the buckets changed, or are not a list")
        buckets = [fields.required_count(number) for number in counts]
        observed = fields.required_count(entry["count"])
        if sum(buckets) > observed:
            raise ValueError("the buckets hold more observations than the count")
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise ValueError("a sum is not a number")
        if not 0.0 <= float(total) < math.inf:  # NaN fails too
            raise ValueError("a sum is not finite and non-negative")
        key = (
            fields.text(entry["cluster"]),
            fields.text(entry["database"]),
            fields.text(entry["state"]),
        )
        return key, HistogramState(bounds, buckets, float(total), observed)

    def target(self, entry: Entry) -> TargetKey:
        fields = self.fields
        return (
            fields.text(entry["cluster"]),
            fields.text(entry["database"]),
            fields.text(entry["kind"]),
        )

    def removal(self, entry: Entry) -> RemovedTarget:
        return RemovedTarget(
            self.target(entry),
            self.fields.text(entry["cause"]),
            self.fields.required_time(entry["at"]),
        )

    def gone(self, entry: Entry) -> tuple[CollectionKey, float]:
        return _collection_key(entry), self.fields.required_time(entry["at"])

    def remembered(self, kind: AnyKind, entry: Entry) -> tuple[CollectionKey, RememberedJob]:
        saved = kind.saved
        assert saved is not None  # a newest_finished kind declares its saved form
        fields = self.fields
        order = keyed(entry["order"])
        job = saved.read_job(keyed(entry["job"]), fields)
        details = None
        described = entry.get("details")
        if described is not None and saved.read_details is not None:
            details = saved.read_details(keyed(described), job, fields)
        return (
            _collection_key(entry),
            RememberedJob(
                job,
                details,
                (fields.required_time(order["time"]), fields.identifier(order["id"])),
                fields.required_time(entry["last_listed"]),
            ),
        )


def declared(name: str) -> AnyKind | None:
    try:
        return KINDS.named(name)
    except KeyError:
        return None


def as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def keyed(item: Any) -> Entry:
    """An entry: an object keyed by field name (unknown fields are not looked at)."""
    if not isinstance(item, dict):
        raise TypeError("an entry is not an object")
    return item


def _collection_key(entry: Entry) -> CollectionKey:
    fields = SavedFields()
    return (
        fields.text(entry["cluster"]),
        fields.text(entry["database"]),
        fields.text(entry["collection"]),
    )
