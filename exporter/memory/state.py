"""The exporter's memory on disk, so a restart forgets nothing the server has forgotten already.

The server keeps finished jobs for about a day. Without this file a restarted exporter knew only
what the server still listed: a failure never followed by a success, or the last success of a
collection idle for more than a day, was gone, and the alerts on them resolved for good. The
file holds what the model cannot get back from the server: each collection's newest success and
failure (``history.py``), each collection's newest finished import (``import_memory.py``), which
finished jobs the duration histograms have already counted, and the histograms themselves.

Writes are atomic (a temporary file ``.state.json.XXXXXXXX.tmp`` in the same directory, flushed
and renamed over the old one), so a crash mid-write leaves the previous file; the temporary a
kill left behind is removed at the next start (``remove_leftovers``: only files named the way
``save_state`` names them, beside this state file). A state larger than the size limit is not
written (the previous file stays). A missing file is a first start. A file that cannot be used
is logged once and never fatal; when it would otherwise be lost to the next save (over the size
limit, a newer format, not a state file at all) it is first kept aside (``set_aside``:
``state.json.too-large.bak``, ``state.json.v2.bak``, ``state.json.unreadable.bak``).

Every restored value is checked, entry by entry: names are strings, times finite and plausible
(from 2015 to a day ahead), counts non-negative integers, a histogram's buckets within its count
and its sum finite and non-negative. A bad entry costs only itself and is counted by section
(``SavedState.dropped``); before, one negative bucket count was served as it was (and the
OpenMetrics parser refused the whole page), and one unreadable collection cost the whole file.

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

import errno
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..exposition.families import HistogramState
from ..upstream.records import (
    EARLIEST_PLAUSIBLE_TIME,
    LATEST_PLAUSIBLE_AHEAD_SECONDS,
    ImportJob,
    ImportJobDetails,
)
from .history import CollectionHistory, CollectionKey
from .imports import RememberedImport
from .removals import RemovedTarget

VERSION = 1
MAX_STATE_FILE_BYTES = 16 * 1024 * 1024
"""The default ``max_state_file_bytes``. Reading a state file costs about seven times its size
in memory for a moment (a 40 MiB file peaked at 296 MB), so 16 MiB stays within the shipped
manifest's 256 Mi; at the documented sizing (``max_tracked_collections`` 10,000, 50,000 jobs)
the file holds a few MB."""
TEMPORARY_SUFFIX = ".tmp"
_RANDOM_PART = r"[a-z0-9_]{8}"
"""What ``tempfile.mkstemp`` puts between our prefix and suffix."""
ASIDE_ATTEMPTS = 100

DatabaseKey = tuple[str, str]
HistogramKey = tuple[str, str, str]
TargetKey = tuple[str, str, str]
T = TypeVar("T")


class StateError(Exception):
    """The state file exists but cannot be used; the message says why, in one line.

    ``aside`` names the copy to keep it as (``state.json.<aside>.bak``) before anything could
    overwrite it, or is None to leave it where it is."""

    def __init__(self, message: str, aside: str | None = None, event: str = "state.unreadable"):
        super().__init__(message)
        self.aside = aside
        self.event = event


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
    dropped: dict[str, int] = field(default_factory=dict, compare=False)
    """Entries of a loaded file left out as unusable, by section."""


def save_state(
    path: str | os.PathLike[str],
    state: SavedState,
    now: float,
    max_bytes: int = MAX_STATE_FILE_BYTES,
) -> None:
    """Write ``state`` to ``path`` atomically; raises ``OSError`` when the disk says no, or
    when the state is larger than ``max_bytes`` (the next start would not read it)."""
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
    if len(data) > max_bytes:
        raise OSError(
            errno.EFBIG,
            f"the state ({len(data)} bytes) is larger than max_state_file_bytes ({max_bytes}); "
            "the previous file is kept",
        )
    del document
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent
    )
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


def remove_leftovers(path: str | os.PathLike[str]) -> int:
    """Remove the temporaries of saves that never finished (a kill, an OOM kill, a power cut)
    beside the state file at ``path``; only regular files named as ``save_state`` names them.
    Returns how many were removed."""
    target = Path(path)
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.{_RANDOM_PART}({re.escape(TEMPORARY_SUFFIX)})?"
    )
    removed = 0
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return 0
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def set_aside(path: str | os.PathLike[str], tag: str) -> Path | None:
    """Rename the state file to ``<name>.<tag>.bak`` (``<name>.<tag>.<n>.bak`` if that is taken),
    so that the next save cannot overwrite it; None if no free name or the rename failed."""
    target = Path(path)
    for attempt in range(1, ASIDE_ATTEMPTS + 1):
        suffix = f".{tag}.bak" if attempt == 1 else f".{tag}.{attempt}.bak"
        aside = target.with_name(target.name + suffix)
        if aside.exists() or aside.is_symlink():
            continue
        try:
            os.rename(target, aside)
        except OSError:
            return None
        return aside
    return None


def load_state(
    path: str | os.PathLike[str],
    bounds: tuple[float, ...],
    now: float | None = None,
    max_bytes: int = MAX_STATE_FILE_BYTES,
) -> SavedState | None:
    """The state saved at ``path``; None if there is none yet. Raises ``StateError`` for a file
    that cannot be used (it is then ignored, or kept aside, by the caller; never deleted).
    ``now`` (default the system clock) bounds how far ahead a restored time may be."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > max_bytes:
                raise StateError(
                    f"{path} holds {size} bytes, more than max_state_file_bytes ({max_bytes})",
                    aside="too-large",
                    event="state.too_large",
                )
            raw = file.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > max_bytes:  # it grew while it was read
        raise StateError(
            f"{path} holds more than max_state_file_bytes ({max_bytes})",
            aside="too-large",
            event="state.too_large",
        )
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise StateError(f"{path} cannot be read ({reason})", aside="unreadable") from None
    del raw
    version = document.get("version") if isinstance(document, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise StateError(
            f"{path} is a version {version} state file, newer than this exporter's {VERSION}",
            aside=f"v{version}",
            event="state.newer_format",
        )
    if version != VERSION or not isinstance(document, dict):
        raise StateError(f"{path} is not a version {VERSION} state file", aside="unreadable")
    reader = _Reader(bounds, now)
    return SavedState(
        collections=reader.entries(document, "collections", reader.collection),
        imports=reader.entries(document, "imports", reader.remembered_import),
        refresh_seen=dict(reader.entries(document, "refresh_seen", reader.refresh_seen)),
        imports_seen=dict(reader.entries(document, "imports_seen", reader.imports_seen)),
        refresh_durations=dict(reader.entries(document, "refresh_durations", reader.histogram)),
        import_durations=dict(reader.entries(document, "import_durations", reader.histogram)),
        watched=set(reader.entries(document, "watched", reader.key)),
        removed=reader.entries(document, "removed", reader.removal),
        gone=reader.entries(document, "gone", reader.gone),
        dropped=dict(reader.dropped),
    )


class _Reader:
    """Reads a loaded document's sections entry by entry; a bad entry is dropped and counted."""

    def __init__(self, bounds: tuple[float, ...], now: float | None) -> None:
        self.bounds = bounds
        self.latest = (time.time() if now is None else now) + LATEST_PLAUSIBLE_AHEAD_SECONDS
        self.dropped: Counter[str] = Counter()

    def entries(self, document: dict[str, Any], section: str, read: Callable[[Any], T]) -> list[T]:
        items = document.get(section, [])
        if not isinstance(items, list):
            self.dropped[section] += 1
            return []
        out = []
        for item in items:
            try:
                out.append(read(item))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
                self.dropped[section] += 1
        return out

    def time(self, value: Any) -> float | None:
        """An optional time: None, or finite and from 2015 to a day ahead."""
        if value is None:
            return None
        return self.required_time(value)

    def required_time(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("a time is not a number")
        number = float(value)
        if not EARLIEST_PLAUSIBLE_TIME <= number <= self.latest:  # NaN fails both
            raise ValueError("a time is not plausible")
        return number

    def collection(self, item: Any) -> tuple[CollectionKey, CollectionHistory]:
        cluster, database, collection, success, failure, listed, job_id, reason = item
        return (
            (_text(cluster), _text(database), _text(collection)),
            CollectionHistory(
                last_success=self.time(success),
                last_failure=self.time(failure),
                last_listed=self.required_time(listed),
                failure_job_id=_text(job_id),
                failure_reason=_text(reason),
            ),
        )

    def refresh_seen(self, item: Any) -> tuple[DatabaseKey, set[tuple[str, str]]]:
        cluster, database, jobs = item
        if not isinstance(jobs, list):
            raise TypeError("seen jobs are not a list")
        seen = set()
        for collection, job_id in jobs:
            seen.add((_text(collection), _identifier(job_id)))
        return (_text(cluster), _text(database)), seen

    def imports_seen(self, item: Any) -> tuple[DatabaseKey, set[str]]:
        cluster, database, jobs = item
        if not isinstance(jobs, list):
            raise TypeError("seen jobs are not a list")
        return (_text(cluster), _text(database)), {_identifier(job) for job in jobs}

    def histogram(self, item: Any) -> tuple[HistogramKey, HistogramState]:
        cluster, database, state, counts, total, count = item
        if not isinstance(counts, list) or len(counts) != len(self.bounds):
            raise ValueError("the buckets changed, or are not a list")
        buckets = [_required_count(number) for number in counts]
        observed = _required_count(count)
        if sum(buckets) > observed:
            raise ValueError("the buckets hold more observations than the count")
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise ValueError("a sum is not a number")
        if not 0.0 <= float(total) < math.inf:  # NaN fails too
            raise ValueError("a sum is not finite and non-negative")
        key = (_text(cluster), _text(database), _text(state))
        return key, HistogramState(self.bounds, buckets, float(total), observed)

    def key(self, item: Any) -> tuple[str, str, str]:
        """A target (cluster, database, kind) or a collection (cluster, database, name)."""
        first, second, third = item
        return (_text(first), _text(second), _text(third))

    def removal(self, item: Any) -> RemovedTarget:
        cluster, database, kind, cause, at = item
        return RemovedTarget(
            self.key((cluster, database, kind)), _text(cause), self.required_time(at)
        )

    def gone(self, item: Any) -> tuple[CollectionKey, float]:
        cluster, database, collection, at = item
        return self.key((cluster, database, collection)), self.required_time(at)

    def remembered_import(self, item: Any) -> tuple[CollectionKey, RememberedImport]:
        cluster, database, collection = (_text(part) for part in item["key"])
        order_time, order_id = item["order"]
        job_id, job_collection, state, progress, reason = item["job"]
        job = ImportJob(
            _identifier(job_id),
            _text(job_collection),
            _text(state),
            _ratio(progress),
            _text(reason),
        )
        details = None
        if item["details"] is not None:
            (d_state, imported, total, size, created, completed, d_progress, d_reason) = item[
                "details"
            ]
            details = ImportJobDetails(
                job_id=job.job_id,
                state=_text(d_state),
                imported_rows=_count(imported),
                total_rows=_count(total),
                file_size_bytes=_count(size),
                create_time=self.time(created),
                complete_time=self.time(completed),
                collection=job.collection,
                progress_ratio=_ratio(d_progress),
                reason=_text(d_reason),
            )
        return (
            (cluster, database, collection),
            RememberedImport(
                job,
                details,
                (self.required_time(order_time), _identifier(order_id)),
                self.required_time(item["last_listed"]),
            ),
        )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a name is not a string")
    return value


def _identifier(value: Any) -> str:
    """A job id: written as a string; a number (an older hand-edited file) is read as one."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError("a job id is not a string")
    return str(value)


def _required_count(value: Any) -> int:
    count = _count(value)
    if count is None:
        raise ValueError("a count is missing")
    return count


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


def _histograms(histograms: dict[HistogramKey, HistogramState]) -> list[list[Any]]:
    return [
        [*key, list(histogram.counts), histogram.total, histogram.count]
        for key, histogram in sorted(histograms.items())
    ]
