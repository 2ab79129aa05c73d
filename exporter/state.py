"""The exporter's memory on disk, so a restart forgets nothing the server has forgotten already.

The server keeps finished jobs for about a day. Without this file a restarted exporter knew only
what the server still listed: a failure never followed by a success, or the last success of a
collection idle for more than a day, was gone, and the alerts on them resolved for good. The
file holds what the model cannot get back from the server: each collection's newest success and
failure (``history.py``), each collection's newest finished import (``import_memory.py``), which
finished jobs the duration histograms have already counted, and the histograms themselves.

Writes are atomic (a temporary file in the same directory, flushed and renamed over the old
one), so a crash mid-write leaves the previous file. A missing file is a first start; a file that
cannot be read (truncated, edited, another version) is logged once and ignored, never fatal.

``imports`` came later within version 1: a file without it reads as no remembered imports (and
an older exporter ignores the key), and one entry that cannot be read is left out on its own, so
a bad import entry never costs the refresh history. An import's ``details[]`` files are not kept:
no remembered series reads them.

``watched``, ``removed`` and ``gone`` came later still, the same way (a file without them reads
as none, an older exporter ignores them): the targets this exporter watched, so a restart with a
config that no longer names one says it was removed (``removals.py``); the removal markers not
yet expired; and the collections confirmed gone upstream whose old jobs the server may still list
(``evidence.py``), so a restart does not bring their failures back.

    {"version": 1, "written_at": 1732358400.0,
     "collections": [["prod", "default", "ext_books", 1732350000.0, null, 1732358400.0, "", ""]],
     "refresh_seen": [["prod", "default", [["ext_books", "4495..."]]]],
     "imports_seen": [["prod", "default", ["4487..."]]],
     "imports": [{"key": ["prod", "default", "books"], "last_listed": 1732358400.0,
                  "order": [1732340000.0, "00000000000000004487..."],
                  "job": ["4487...", "books", "Failed", 0.3, "row count mismatch"],
                  "details": ["Failed", 7, 100, 4096, 1732340000.0, null, 0.3, "row ..."]}],
     "refresh_durations": [["prod", "default", "RefreshCompleted", [0, 3, ...], 900.0, 5]],
     "import_durations": [],
     "watched": [["prod", "default", "refresh"], ["prod", "default", "import"]],
     "removed": [["staging", "default", "refresh", "config", 1732358000.0]],
     "gone": [["prod", "default", "ext_old", 1732357000.0]]}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .families import HistogramState
from .history import CollectionHistory, CollectionKey
from .import_memory import RememberedImport
from .records import ImportJob, ImportJobDetails
from .removals import RemovedTarget

VERSION = 1

DatabaseKey = tuple[str, str]
HistogramKey = tuple[str, str, str]
TargetKey = tuple[str, str, str]


class StateError(Exception):
    """The state file exists but cannot be used; the message says why, in one line."""


@dataclass
class SavedState:
    """Everything the model remembers that the server may no longer know."""

    collections: list[tuple[CollectionKey, CollectionHistory]] = field(default_factory=list)
    imports: list[tuple[CollectionKey, RememberedImport]] = field(default_factory=list)
    refresh_seen: dict[DatabaseKey, set[tuple[str, str]]] = field(default_factory=dict)
    imports_seen: dict[DatabaseKey, set[str]] = field(default_factory=dict)
    refresh_durations: dict[HistogramKey, HistogramState] = field(default_factory=dict)
    import_durations: dict[HistogramKey, HistogramState] = field(default_factory=dict)
    watched: set[TargetKey] = field(default_factory=set)
    removed: list[RemovedTarget] = field(default_factory=list)
    gone: list[tuple[CollectionKey, float]] = field(default_factory=list)


def save_state(path: str | os.PathLike[str], state: SavedState, now: float) -> None:
    """Write ``state`` to ``path`` atomically; raises ``OSError`` when the disk says no."""
    target = Path(path)
    document = {
        "version": VERSION,
        "written_at": now,
        "collections": [
            [
                *key,
                entry.last_success,
                entry.last_failure,
                entry.last_listed,
                entry.failure_job_id,
                entry.failure_reason,
            ]
            for key, entry in state.collections
        ],
        "imports": [_import_document(key, entry) for key, entry in state.imports],
        "refresh_seen": [
            [cluster, database, sorted([list(seen) for seen in jobs])]
            for (cluster, database), jobs in sorted(state.refresh_seen.items())
        ],
        "imports_seen": [
            [cluster, database, sorted(jobs)]
            for (cluster, database), jobs in sorted(state.imports_seen.items())
        ],
        "refresh_durations": _histograms(state.refresh_durations),
        "import_durations": _histograms(state.import_durations),
        "watched": sorted([list(key) for key in state.watched]),
        "removed": [[*removal.key, removal.cause, removal.at] for removal in state.removed],
        "gone": [[*key, at] for key, at in state.gone],
    }
    data = json.dumps(document, separators=(",", ":")).encode()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def load_state(path: str | os.PathLike[str], bounds: tuple[float, ...]) -> SavedState | None:
    """The state saved at ``path``; None if there is none yet. Raises ``StateError`` for a file
    that cannot be used (it is then ignored by the caller, not deleted)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise StateError(f"{path} is not a version {VERSION} state file")
        return SavedState(
            collections=[_collection(item) for item in document["collections"]],
            imports=_imports(document.get("imports", [])),
            refresh_seen={
                (str(cluster), str(database)): {(str(c), str(j)) for c, j in jobs}
                for cluster, database, jobs in document["refresh_seen"]
            },
            imports_seen={
                (str(cluster), str(database)): {str(job) for job in jobs}
                for cluster, database, jobs in document["imports_seen"]
            },
            refresh_durations=_read_histograms(document["refresh_durations"], bounds),
            import_durations=_read_histograms(document["import_durations"], bounds),
            watched={_key(item) for item in document.get("watched", [])},
            removed=[_removal(item) for item in document.get("removed", [])],
            gone=[(_key(item[:3]), _finite(item[3])) for item in document.get("gone", [])],
        )
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise StateError(f"{path} cannot be read ({reason})") from None


def _collection(item: Any) -> tuple[CollectionKey, CollectionHistory]:
    cluster, database, collection, success, failure, listed, job_id, reason = item
    return (
        (str(cluster), str(database), str(collection)),
        CollectionHistory(
            last_success=_time(success),
            last_failure=_time(failure),
            last_listed=float(listed),
            failure_job_id=str(job_id),
            failure_reason=str(reason),
        ),
    )


def _import_document(key: CollectionKey, entry: RememberedImport) -> dict[str, Any]:
    job, details = entry.job, entry.details
    return {
        "key": list(key),
        "last_listed": entry.last_listed,
        "order": list(entry.order),
        "job": [job.job_id, job.collection, job.state, job.progress_ratio, job.reason],
        "details": None
        if details is None
        else [
            details.state,
            details.imported_rows,
            details.total_rows,
            details.file_size_bytes,
            details.create_time,
            details.complete_time,
            details.progress_ratio,
            details.reason,
        ],
    }


def _imports(items: Any) -> list[tuple[CollectionKey, RememberedImport]]:
    if not isinstance(items, list):
        return []
    remembered = []
    for item in items:
        try:
            remembered.append(_remembered_import(item))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return remembered


def _remembered_import(item: Any) -> tuple[CollectionKey, RememberedImport]:
    cluster, database, collection = (str(part) for part in item["key"])
    order_time, order_id = item["order"]
    job_id, job_collection, state, progress, reason = item["job"]
    job = ImportJob(str(job_id), str(job_collection), str(state), _ratio(progress), str(reason))
    details = None
    if item["details"] is not None:
        (d_state, imported, total, size, created, completed, d_progress, d_reason) = item["details"]
        details = ImportJobDetails(
            job_id=job.job_id,
            state=str(d_state),
            imported_rows=_count(imported),
            total_rows=_count(total),
            file_size_bytes=_count(size),
            create_time=_time(created),
            complete_time=_time(completed),
            collection=job.collection,
            progress_ratio=_ratio(d_progress),
            reason=str(d_reason),
        )
    last_listed = _time(item["last_listed"])
    first = _time(order_time)
    if last_listed is None or first is None:
        raise ValueError("an import entry lacks a time")
    return (
        (cluster, database, collection),
        RememberedImport(job, details, (first, str(order_id)), last_listed),
    )


def _key(item: Any) -> tuple[str, str, str]:
    first, second, third = item
    return (str(first), str(second), str(third))


def _removal(item: Any) -> RemovedTarget:
    cluster, database, kind, cause, at = item
    return RemovedTarget(_key((cluster, database, kind)), str(cause), _finite(at))


def _finite(value: Any) -> float:
    number = _time(value)
    if number is None:
        raise ValueError("a time is missing")
    return number


def _ratio(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("a progress ratio is outside 0..1")
    return number


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a count is not a non-negative integer")
    return value


def _time(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("a time is not a finite number")
    return number


def _histograms(histograms: dict[HistogramKey, HistogramState]) -> list[list[Any]]:
    return [
        [*key, list(histogram.counts), histogram.total, histogram.count]
        for key, histogram in sorted(histograms.items())
    ]


def _read_histograms(items: Any, bounds: tuple[float, ...]) -> dict[HistogramKey, HistogramState]:
    histograms: dict[HistogramKey, HistogramState] = {}
    for cluster, database, state, counts, total, count in items:
        if len(counts) != len(bounds):  # the buckets changed: start those counts afresh
            continue
        histograms[(str(cluster), str(database), str(state))] = HistogramState(
            bounds, [int(number) for number in counts], float(total), int(count)
        )
    return histograms
