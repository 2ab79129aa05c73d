"""Targets removed on purpose, said out loud for an hour.

When the operator removes a target from the config (a cluster, a database, a kind; a rename is a
removal plus an addition) or the cluster's database discovery no longer lists its database, its
open job alerts may resolve: that is evidence, not a loss of sight. So that nobody has to guess
which it was, the exporter logs ``targets.removed`` once and exports, for
``REMOVED_TARGET_MARKER_SECONDS``, the time of the removal with its cause::

    milvus_jobs_exporter_target_removed_timestamp_seconds{milvus_cluster="prod",database="sales",kind="refresh",cause="config"} 1.7323584e+09

A target added back while its marker is live loses the marker at once. Markers that have not
expired are kept in the state file, so a restart neither drops nor repeats them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from ..exposition import catalogue as m
from ..exposition.families import MetricFamily

REMOVED_TARGET_MARKER_SECONDS = 3600.0
"""How long a removed target's marker is exported: long enough for any rule's lookback and
``for:`` to see it, short enough that a removal is news, not furniture."""

TargetKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class RemovedTarget:
    """One target removed at ``at`` (Unix time) because of ``cause`` (``config`` or ``dropped``)."""

    key: TargetKey
    cause: str
    at: float


class RemovedTargets:
    """The live markers, one per removed target (the newest removal wins)."""

    def __init__(self) -> None:
        self._markers: dict[TargetKey, RemovedTarget] = {}

    def mark(self, removal: RemovedTarget) -> None:
        self._markers[removal.key] = removal

    def readded(self, keys: Iterable[TargetKey]) -> None:
        """Targets watched again: their markers go at once."""
        for key in keys:
            self._markers.pop(key, None)

    def live(self, now: float) -> list[RemovedTarget]:
        """The markers not yet expired at ``now`` (expired ones are dropped)."""
        self._markers = {
            key: removal
            for key, removal in self._markers.items()
            if removal.at + REMOVED_TARGET_MARKER_SECONDS > now
        }
        return [self._markers[key] for key in sorted(self._markers)]

    def items(self) -> list[RemovedTarget]:
        """Every marker (expired ones included until the next ``live``), for the state file."""
        return [self._markers[key] for key in sorted(self._markers)]

    def restore(self, removals: Iterable[RemovedTarget]) -> None:
        for removal in removals:
            self._markers.setdefault(removal.key, removal)

    def family(self, now: float) -> MetricFamily:
        family = m.TARGET_REMOVED.family()
        for removal in self.live(now):
            cluster, database, kind = removal.key
            labels = (
                ("milvus_cluster", cluster),
                ("database", database),
                ("kind", kind),
                ("cause", removal.cause),
            )
            family.add(labels, removal.at)
        return family


def log_lines(removals: Iterable[RemovedTarget]) -> list[dict[str, object]]:
    """One ``targets.removed`` line per (cluster, database, cause), with its kinds."""

    def group_key(removal: RemovedTarget) -> tuple[str, str, str]:
        return (removal.key[0], removal.key[1], removal.cause)

    lines: list[dict[str, object]] = []
    for (cluster, database, cause), group in groupby(sorted(removals, key=group_key), group_key):
        kinds = sorted(removal.key[2] for removal in group)
        lines.append({"cluster": cluster, "database": database, "kinds": kinds, "cause": cause})
    return lines
