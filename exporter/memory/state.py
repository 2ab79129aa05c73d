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
``state.json.too-large.bak``, ``state.json.v3.bak``, ``state.json.unreadable.bak``).

Every restored value is checked, entry by entry: names are strings, times finite and plausible
(from 2015 to a day ahead), counts non-negative integers, a histogram's buckets within its count
and its sum finite and non-negative. A bad entry costs only itself and is counted by section
(``SavedState.dropped``); before, one negative bucket count was served as it was (and the
OpenMetrics parser refused the whole page), and one unreadable collection cost the whole file.

Version 2 writes every entry as an object keyed by field name. Version 1 wrote most of them as
positional lists, so an entry with a field added was one an older exporter could not unpack, and
dropped; now a field this exporter does not know is ignored, a field it knows but that is absent
takes its default when it has one (a time that may be null, a reason that may be empty), and an
entry without a required field (a name, ``last_listed``) is dropped alone and counted. A version 1
file is still read, each entry turned into the keyed form and checked the same way (``_V1``);
the next save writes version 2. A version 3 file (a newer exporter's) is kept aside, not read.
So a new field goes in without changing ``VERSION`` (older exporters ignore it, and this reader
gives it a default when a file lacks it); ``VERSION`` goes up only for a change an older reader
would misread.

Sections came later within version 1, and a file without one reads as an empty section (an older
exporter ignores the key): ``imports``, each collection's newest finished import
(``imports.py``; its ``details[]`` files are not kept: no remembered series reads them);
``watched``, the targets this exporter watched, so a restart with a config that no longer names
one says it was removed (``removals.py``); ``removed``, the removal markers not yet expired; and
``gone``, the collections confirmed gone upstream whose old jobs the server may still list
(``evidence.py``), so a restart does not bring their failures back.

    {"version": 2, "written_at": 1732358400.0,
     "collections": [{"cluster": "prod", "database": "default", "collection": "ext_books",
                      "last_success": 1732350000.0, "last_failure": null,
                      "last_listed": 1732358400.0, "failure_job_id": "", "failure_reason": ""}],
     "imports": [{"cluster": "prod", "database": "default", "collection": "books",
                  "last_listed": 1732358400.0,
                  "order": {"time": 1732340000.0, "id": "00000000000000004487..."},
                  "job": {"job_id": "4487...", "collection": "books", "state": "Failed",
                          "progress_ratio": 0.3, "reason": "row count mismatch"},
                  "details": {"state": "Failed", "imported_rows": 7, "total_rows": 100,
                              "file_size_bytes": 4096, "create_time": 1732340000.0,
                              "complete_time": null, "progress_ratio": 0.3,
                              "reason": "row ..."}}],
     "refresh_seen": [{"cluster": "prod", "database": "default",
                       "collections": [{"collection": "ext_books", "job_ids": ["4495..."]}]}],
     "imports_seen": [{"cluster": "prod", "database": "default", "job_ids": ["4487..."]}],
     "refresh_durations": [{"cluster": "prod", "database": "default",
                            "state": "RefreshCompleted", "buckets": [0, 3, ...],
                            "sum": 900.0, "count": 5}],
     "import_durations": [],
     "watched": [{"cluster": "prod", "database": "default", "kind": "refresh"}],
     "removed": [{"cluster": "staging", "database": "default", "kind": "refresh",
                  "cause": "config", "at": 1732358000.0}],
     "gone": [{"cluster": "prod", "database": "default", "collection": "ext_old",
               "at": 1732357000.0}]}
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

VERSION = 2
"""The format this exporter writes; it reads this one and every older one (1)."""
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
        "collections": [_collection_entry(key, entry) for key, entry in state.collections],
        "imports": [_import_entry(key, entry) for key, entry in state.imports],
        "refresh_seen": [
            {**_database(key), "collections": _seen_by_collection(jobs)}
            for key, jobs in sorted(state.refresh_seen.items())
        ],
        "imports_seen": [
            {**_database(key), "job_ids": sorted(jobs)}
            for key, jobs in sorted(state.imports_seen.items())
        ],
        "refresh_durations": _histograms(state.refresh_durations),
        "import_durations": _histograms(state.import_durations),
        "watched": [_target(key) for key in sorted(state.watched)],
        "removed": [
            {**_target(removal.key), "cause": removal.cause, "at": removal.at}
            for removal in state.removed
        ],
        "gone": [{**_collection(key), "at": at} for key, at in state.gone],
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
    if version not in (1, VERSION) or isinstance(version, bool) or not isinstance(document, dict):
        raise StateError(
            f"{path} is not a state file of version 1 to {VERSION}", aside="unreadable"
        )
    reader = _Reader(bounds, now, upgrade=version == 1)
    return SavedState(
        collections=reader.entries(document, "collections", reader.collection),
        imports=reader.entries(document, "imports", reader.remembered_import),
        refresh_seen=dict(reader.entries(document, "refresh_seen", reader.refresh_seen)),
        imports_seen=dict(reader.entries(document, "imports_seen", reader.imports_seen)),
        refresh_durations=dict(
            reader.entries(document, "refresh_durations", reader.histogram, "histogram")
        ),
        import_durations=dict(
            reader.entries(document, "import_durations", reader.histogram, "histogram")
        ),
        watched=set(reader.entries(document, "watched", reader.target)),
        removed=reader.entries(document, "removed", reader.removal),
        gone=reader.entries(document, "gone", reader.gone),
        dropped=dict(reader.dropped),
    )


Entry = dict[str, Any]


class _Reader:
    """Reads a loaded document's sections entry by entry; a bad entry is dropped and counted.

    Every entry is read in the keyed form of version 2; ``upgrade`` turns a version 1 entry
    into it first (``_V1``), so both versions pass the same checks."""

    def __init__(self, bounds: tuple[float, ...], now: float | None, upgrade: bool) -> None:
        self.bounds = bounds
        self.latest = (time.time() if now is None else now) + LATEST_PLAUSIBLE_AHEAD_SECONDS
        self.upgrade = upgrade
        self.dropped: Counter[str] = Counter()

    def entries(
        self,
        document: dict[str, Any],
        section: str,
        read: Callable[[Entry], T],
        shape: str | None = None,
    ) -> list[T]:
        """The entries of ``section`` that can be read; ``shape`` names their version 1 form
        when it is not the section's own name."""
        items = document.get(section, [])
        if not isinstance(items, list):
            self.dropped[section] += 1
            return []
        upgrade = _V1[shape or section] if self.upgrade else _keyed
        out = []
        for item in items:
            try:
                out.append(read(upgrade(item)))
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

    def collection(self, entry: Entry) -> tuple[CollectionKey, CollectionHistory]:
        return (
            _collection_key(entry),
            CollectionHistory(
                last_success=self.time(entry.get("last_success")),
                last_failure=self.time(entry.get("last_failure")),
                last_listed=self.required_time(entry["last_listed"]),
                failure_job_id=_text(entry.get("failure_job_id", "")),
                failure_reason=_text(entry.get("failure_reason", "")),
            ),
        )

    def refresh_seen(self, entry: Entry) -> tuple[DatabaseKey, set[tuple[str, str]]]:
        seen: set[tuple[str, str]] = set()
        for item in _list(entry["collections"]):
            collection = _keyed(item)
            name = _text(collection["collection"])
            seen.update((name, _identifier(job)) for job in _list(collection["job_ids"]))
        return (_text(entry["cluster"]), _text(entry["database"])), seen

    def imports_seen(self, entry: Entry) -> tuple[DatabaseKey, set[str]]:
        jobs = {_identifier(job) for job in _list(entry["job_ids"])}
        return (_text(entry["cluster"]), _text(entry["database"])), jobs

    def histogram(self, entry: Entry) -> tuple[HistogramKey, HistogramState]:
        counts, total = entry["buckets"], entry["sum"]
        if not isinstance(counts, list) or len(counts) != len(self.bounds):
            raise ValueError("the buckets changed, or are not a list")
        buckets = [_required_count(number) for number in counts]
        observed = _required_count(entry["count"])
        if sum(buckets) > observed:
            raise ValueError("the buckets hold more observations than the count")
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise ValueError("a sum is not a number")
        if not 0.0 <= float(total) < math.inf:  # NaN fails too
            raise ValueError("a sum is not finite and non-negative")
        key = (_text(entry["cluster"]), _text(entry["database"]), _text(entry["state"]))
        return key, HistogramState(self.bounds, buckets, float(total), observed)

    def target(self, entry: Entry) -> TargetKey:
        return (_text(entry["cluster"]), _text(entry["database"]), _text(entry["kind"]))

    def removal(self, entry: Entry) -> RemovedTarget:
        return RemovedTarget(
            self.target(entry), _text(entry["cause"]), self.required_time(entry["at"])
        )

    def gone(self, entry: Entry) -> tuple[CollectionKey, float]:
        return _collection_key(entry), self.required_time(entry["at"])

    def remembered_import(self, entry: Entry) -> tuple[CollectionKey, RememberedImport]:
        order, listed = _keyed(entry["order"]), _keyed(entry["job"])
        job = ImportJob(
            _identifier(listed["job_id"]),
            _text(listed["collection"]),
            _text(listed["state"]),
            _ratio(listed["progress_ratio"]),
            _text(listed.get("reason", "")),
        )
        details = None
        described = entry.get("details")
        if described is not None:
            described = _keyed(described)
            details = ImportJobDetails(
                job_id=job.job_id,
                state=_text(described["state"]),
                imported_rows=_count(described.get("imported_rows")),
                total_rows=_count(described.get("total_rows")),
                file_size_bytes=_count(described.get("file_size_bytes")),
                create_time=self.time(described.get("create_time")),
                complete_time=self.time(described.get("complete_time")),
                collection=job.collection,
                progress_ratio=_ratio(described.get("progress_ratio", 0.0)),
                reason=_text(described.get("reason", "")),
            )
        return (
            _collection_key(entry),
            RememberedImport(
                job,
                details,
                (self.required_time(order["time"]), _identifier(order["id"])),
                self.required_time(entry["last_listed"]),
            ),
        )


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _keyed(item: Any) -> Entry:
    """A version 2 entry: an object keyed by field name (unknown fields are not looked at)."""
    if not isinstance(item, dict):
        raise TypeError("an entry is not an object")
    return item


def _columns(*names: str) -> Callable[[Any], Entry]:
    """A version 1 entry that was a list of exactly these fields, in this order."""

    def upgrade(item: Any) -> Entry:
        if not isinstance(item, list) or len(item) != len(names):
            raise ValueError(f"expected a list of {len(names)} fields")
        return dict(zip(names, item, strict=True))

    return upgrade


def _v1_refresh_seen(item: Any) -> Entry:
    """Version 1 listed each seen job as a [collection, job id] pair."""
    entry = _columns("cluster", "database", "jobs")(item)
    pairs = [_columns("collection", "job_id")(pair) for pair in _list(entry.pop("jobs"))]
    by_collection: dict[Any, list[Any]] = {}
    for pair in pairs:
        by_collection.setdefault(_text(pair["collection"]), []).append(pair["job_id"])
    entry["collections"] = [
        {"collection": name, "job_ids": job_ids} for name, job_ids in by_collection.items()
    ]
    return entry


def _v1_import(item: Any) -> Entry:
    entry = _keyed(item)
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
    "collections": _columns(
        "cluster",
        "database",
        "collection",
        "last_success",
        "last_failure",
        "last_listed",
        "failure_job_id",
        "failure_reason",
    ),
    "imports": _v1_import,
    "refresh_seen": _v1_refresh_seen,
    "imports_seen": _columns("cluster", "database", "job_ids"),
    "histogram": _columns("cluster", "database", "state", "buckets", "sum", "count"),
    "watched": _columns("cluster", "database", "kind"),
    "removed": _columns("cluster", "database", "kind", "cause", "at"),
    "gone": _columns("cluster", "database", "collection", "at"),
}
"""How each section's entries were laid out in version 1, as the fields of version 2."""


def _collection_key(entry: Entry) -> CollectionKey:
    return (_text(entry["cluster"]), _text(entry["database"]), _text(entry["collection"]))


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


def _database(key: DatabaseKey) -> Entry:
    return {"cluster": key[0], "database": key[1]}


def _collection(key: CollectionKey) -> Entry:
    return {"cluster": key[0], "database": key[1], "collection": key[2]}


def _target(key: TargetKey) -> Entry:
    return {"cluster": key[0], "database": key[1], "kind": key[2]}


def _seen_by_collection(jobs: set[tuple[str, str]]) -> list[Entry]:
    """Seen refresh jobs grouped by collection: each name written once, not once per job."""
    by_collection: dict[str, list[str]] = {}
    for collection, job_id in sorted(jobs):
        by_collection.setdefault(collection, []).append(job_id)
    return [{"collection": name, "job_ids": ids} for name, ids in by_collection.items()]


def _collection_entry(key: CollectionKey, entry: CollectionHistory) -> Entry:
    return {
        **_collection(key),
        "last_success": entry.last_success,
        "last_failure": entry.last_failure,
        "last_listed": entry.last_listed,
        "failure_job_id": entry.failure_job_id,
        "failure_reason": entry.failure_reason,
    }


def _import_entry(key: CollectionKey, entry: RememberedImport) -> Entry:
    job, details = entry.job, entry.details
    return {
        **_collection(key),
        "last_listed": entry.last_listed,
        "order": {"time": entry.order[0], "id": entry.order[1]},
        "job": {
            "job_id": job.job_id,
            "collection": job.collection,
            "state": job.state,
            "progress_ratio": job.progress_ratio,
            "reason": job.reason,
        },
        "details": None
        if details is None
        else {
            "state": details.state,
            "imported_rows": details.imported_rows,
            "total_rows": details.total_rows,
            "file_size_bytes": details.file_size_bytes,
            "create_time": details.create_time,
            "complete_time": details.complete_time,
            "progress_ratio": details.progress_ratio,
            "reason": details.reason,
        },
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


def _histograms(histograms: dict[HistogramKey, HistogramState]) -> list[Entry]:
    return [
        {
            "cluster": cluster,
            "database": database,
            "state": state,
            "buckets": list(histogram.counts),
            "sum": histogram.total,
            "count": histogram.count,
        }
        for (cluster, database, state), histogram in sorted(histograms.items())
    ]
