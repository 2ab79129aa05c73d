"""Each job kind's memory, in the strategy its declaration names, held side by side: one
``JobHistory`` per ``history`` kind, one ``NewestFinished`` per ``newest_finished`` kind, and each
kind's duration histograms. The model asks here, by kind, and never picks a strategy itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..exposition.families import HistogramState
from ..kinds import AnyKind
from ..kinds.declaration import HISTORY
from .history import BoundedCollections, CollectionHistory, JobHistory
from .newest_finished import NewestFinished, RememberedJob

HistogramKey = tuple[str, str, str]
"""(cluster, database, final state)"""

Memory = JobHistory | NewestFinished


class KindMemories:
    """The memory of every kind seen so far, made on first use, bounded alike."""

    def __init__(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds
        self._memories: dict[str, Memory] = {}
        self._kinds: dict[str, AnyKind] = {}
        self.durations: dict[str, dict[HistogramKey, HistogramState]] = {}
        """Per kind name, the duration histograms by (cluster, database, final state)."""

    def configure(self, max_collections: int, retention_seconds: float) -> None:
        self.max_collections = max_collections
        self.retention_seconds = retention_seconds
        for memory in self._memories.values():
            memory.configure(max_collections, retention_seconds)

    def of(self, kind: AnyKind) -> Memory:
        """The memory of ``kind``, in its declared strategy."""
        memory = self._memories.get(kind.name)
        if memory is None:
            if kind.memory == HISTORY:
                memory = JobHistory(self.max_collections, self.retention_seconds, kind)
            else:
                memory = NewestFinished(self.max_collections, self.retention_seconds)
            self._memories[kind.name] = memory
            self._kinds[kind.name] = kind
        return memory

    def named(self, name: str) -> Memory | None:
        return self._memories.get(name)

    def histories(self) -> Iterable[tuple[AnyKind, JobHistory]]:
        for name, memory in self._memories.items():
            if isinstance(memory, JobHistory):
                yield self._kinds[name], memory

    def newest_finished(self) -> Iterable[tuple[AnyKind, NewestFinished]]:
        for name, memory in self._memories.items():
            if isinstance(memory, NewestFinished):
                yield self._kinds[name], memory

    def all(
        self,
    ) -> Iterable[BoundedCollections[CollectionHistory] | BoundedCollections[RememberedJob]]:
        return self._memories.values()

    def histogram(self, kind: str, key: HistogramKey, buckets: tuple[float, ...]) -> HistogramState:
        return self.durations.setdefault(kind, {}).setdefault(key, HistogramState(buckets))

    def prune(self, now: float, watched: set[tuple[str, str, str]]) -> None:
        """Forget what belongs to targets no longer watched, then by age and number."""
        for name, memory in self._memories.items():
            memory.prune(now, {key[:2] for key in watched if key[2] == name})

    def keep_durations(self, kept: set[tuple[str, str, str]]) -> None:
        """Drop the histograms of targets (cluster, database, kind) no longer kept."""
        self.durations = {
            name: {key: value for key, value in histograms.items() if (*key[:2], name) in kept}
            for name, histograms in self.durations.items()
        }

    def collections_of(self, cluster: str, database: str) -> set[str]:
        return set().union(
            *(memory.collections_of(cluster, database) for memory in self._memories.values())
        )

    @property
    def tracked(self) -> int:
        """Collections whose newest success and failure are remembered (``history`` kinds)."""
        return sum(len(memory) for _kind, memory in self.histories())

    @property
    def forgotten(self) -> Counter[str]:
        """Collections forgotten by reason, every kind's memory counting its own."""
        total: Counter[str] = Counter()
        for memory in self._memories.values():
            total += memory.forgotten
        return total
