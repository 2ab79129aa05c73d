"""State files of versions 1 and 2, still read: the refresh and import memories sat in sections
of their own, each kind's declaration names them (``Legacy``: ``collections``, ``imports``,
``refresh_seen``, ``imports_seen``, ``refresh_durations``, ``import_durations``), and version 1
wrote most entries as positional lists.

Each version 1 entry is turned into the keyed form of its shape (``upgraded``), so every version
passes the same checks (``reading.Reader``); a version 2 entry is keyed already. The next save
writes version 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..kinds import KINDS
from .reading import Entry, KindMemory, Reader, as_list, keyed


def legacy_kinds(reader: Reader, document: dict[str, Any]) -> dict[str, KindMemory]:
    """Every declared kind's memory from the sections its ``Legacy`` names."""
    kinds: dict[str, KindMemory] = {}
    for kind in KINDS:
        legacy = kind.legacy
        if not legacy.memory:
            continue
        sections = (legacy.memory, legacy.seen, legacy.durations)
        memory = reader.kind_memory(kind, document, sections=sections)
        if memory:
            kinds[kind.name] = memory
    return kinds


def upgraded(shape: str, item: Any) -> Entry:
    """A version 1 entry of ``shape`` as the fields of the keyed form."""
    return _V1[shape](item)


def _columns(*names: str) -> Callable[[Any], Entry]:
    """A version 1 entry that was a list of exactly these fields, in this order."""

    def upgrade(item: Any) -> Entry:
        if not isinstance(item, list) or len(item) != len(names):
            raise ValueError(f"expected a list of {len(names)} fields")
        return dict(zip(names, item, strict=True))

    return upgrade


def _v1_seen(item: Any) -> Entry:
    """Version 1 listed seen refresh jobs as [collection, job id] pairs, imports as job ids."""
    entry = _columns("cluster", "database", "jobs")(item)
    jobs = as_list(entry.pop("jobs"))
    entry["job_ids"] = [
        _columns("collection", "job_id")(job)["job_id"] if isinstance(job, list) else job
        for job in jobs
    ]
    return entry


def _v1_newest_finished(item: Any) -> Entry:
    entry = keyed(item)
    cluster, database, collection = entry["key"]
    details = entry["details"]
    return {
        "cluster": cluster,
        "database": database,
        "collection": collection,
        "last_listed": entry["last_listed"],
        "order": _columns("time", "id")(entry["order"]),
        "job": _columns("job_id", "collection", "state", "progress_ratio", "reason")(entry["job"]),
        "details": None if details is None else _V1_DETAILS(details),
    }


_V1_DETAILS = _columns(
    "state",
    "imported_rows",
    "total_rows",
    "file_size_bytes",
    "create_time",
    "complete_time",
    "progress_ratio",
    "reason",
)
_V1: dict[str, Callable[[Any], Entry]] = {
    "history": _columns(
        "cluster",
        "database",
        "collection",
        "last_success",
        "last_failure",
        "last_listed",
        "failure_job_id",
        "failure_reason",
    ),
    "newest_finished": _v1_newest_finished,
    "seen": _v1_seen,
    "histogram": _columns("cluster", "database", "state", "buckets", "sum", "count"),
    "watched": _columns("cluster", "database", "kind"),
    "removed": _columns("cluster", "database", "kind", "cause", "at"),
    "gone": _columns("cluster", "database", "collection", "at"),
}
"""How each shape of entry was laid out in version 1, as the fields of the keyed form."""
