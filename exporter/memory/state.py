"""The exporter's memory on disk, so a restart forgets nothing the server has forgotten already.

The server keeps finished jobs for about a day. Without this file a restarted exporter knew only
what the server still listed: a failure never followed by a success, or the last success of a
collection idle for more than a day, was gone, and the alerts on them resolved for good. The
file holds what the model cannot get back from the server, for each job kind under its name
(``kinds``): its memory (each collection's newest success and failure for a ``history`` kind,
its newest finished job for a ``newest_finished`` one), which finished jobs its duration
histogram has already counted (``seen``), and the histograms themselves (``durations``).

Writes are atomic (a temporary file ``.state.json.XXXXXXXX.tmp`` in the same directory, flushed
and renamed over the old one), so a crash mid-write leaves the previous file; the temporary a
kill left behind is removed at the next start (``remove_leftovers``: only files named the way
``save_state`` names them, beside this state file). A state larger than the size limit is not
written (the previous file stays). A missing file is a first start. A file that cannot be used
is logged once and never fatal; when it would otherwise be lost to the next save (over the size
limit, a newer format, not a state file at all) it is first kept aside (``set_aside``:
``state.json.too-large.bak``, ``state.json.v4.bak``, ``state.json.unreadable.bak``).

Every restored value is checked, entry by entry (``kinds/saved.py``): names are strings, times
finite and plausible (from 2015 to a day ahead), counts non-negative integers, a histogram's
buckets its kind's, within its count and its sum finite and non-negative. A bad entry costs only
itself and is counted by section (``SavedState.dropped``).

Every entry is an object keyed by field name: a field this exporter does not know is ignored, a
field it knows but that is absent takes its default when it has one, and an entry without a
required field is dropped alone and counted. The memory of a kind this exporter does not declare
(a newer exporter's) is kept as it was read and written back unchanged.

Version 3 keeps each kind's memory under its name. Versions 1 and 2 kept the refresh and import
memories in sections of their own (``collections``, ``imports``, ``refresh_seen``, ...; each
kind's declaration names its ``Legacy`` sections): they are still read (``legacy.py``), and the
next save writes version 3. ``VERSION`` went up because a version 2 exporter reading a version 3
file would have found none of its sections, started empty and overwritten the file; now it
keeps the file aside (``state.json.v3.bak``). A new field or kind goes in without changing it.

Sections shared by every kind: ``watched``, the targets this exporter watched, so a restart with
a config that no longer names one says it was removed (``removals.py``); ``removed``, the
removal markers not yet expired; and ``gone``, the collections confirmed gone upstream whose old
jobs the server may still list (``evidence.py``), so a restart does not bring their failures
back.

    {"version": 3, "written_at": 1732358400.0,
     "kinds": {
       "refresh": {
         "history": [{"cluster": "prod", "database": "default", "collection": "ext_books",
                      "last_success": 1732350000.0, "last_failure": null,
                      "last_listed": 1732358400.0, "failure_job_id": "", "failure_reason": ""}],
         "seen": [{"cluster": "prod", "database": "default", "job_ids": ["4495..."]}],
         "durations": [{"cluster": "prod", "database": "default", "state": "RefreshCompleted",
                        "buckets": [0, 3, ...], "sum": 900.0, "count": 5}]},
       "import": {
         "newest_finished": [{"cluster": "prod", "database": "default", "collection": "books",
                              "last_listed": 1732358400.0,
                              "order": {"time": 1732340000.0, "id": "00000000000000004487..."},
                              "job": {"job_id": "4487...", "collection": "books",
                                      "state": "Failed", "progress_ratio": 0.3,
                                      "reason": "row count mismatch"},
                              "details": {"state": "Failed", "imported_rows": 7, ...}}],
         "seen": [], "durations": []}},
     "watched": [{"cluster": "prod", "database": "default", "kind": "refresh"}],
     "removed": [{"cluster": "staging", "database": "default", "kind": "refresh",
                  "cause": "config", "at": 1732358000.0}],
     "gone": [{"cluster": "prod", "database": "default", "collection": "ext_old",
               "at": 1732357000.0}]}
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..exposition.families import HistogramState
from ..kinds import AnyKind
from ..kinds.declaration import HISTORY
from .history import CollectionHistory, CollectionKey
from .legacy import legacy_kinds, upgraded
from .newest_finished import RememberedJob
from .reading import (
    Entry,
    HistogramKey,
    KindMemory,
    Reader,
    SavedState,
    TargetKey,
    declared,
)

__all__ = [
    "VERSION",
    "KindMemory",
    "SavedState",
    "StateError",
    "load_state",
    "remembered_counts",
    "remove_leftovers",
    "save_state",
    "set_aside",
]

VERSION = 3
"""The format this exporter writes; it reads this one and every older one (1, 2)."""
MAX_STATE_FILE_BYTES = 16 * 1024 * 1024
"""The default ``max_state_file_bytes``. Reading a state file costs about seven times its size
in memory for a moment (a 40 MiB file peaked at 296 MB), so 16 MiB stays within the shipped
manifest's 256 Mi; at the documented sizing (``max_tracked_collections`` 10,000, 50,000 jobs)
the file holds a few MB."""
TEMPORARY_SUFFIX = ".tmp"
_RANDOM_PART = r"[a-z0-9_]{8}"
"""What ``tempfile.mkstemp`` puts between our prefix and suffix."""
ASIDE_ATTEMPTS = 100


class StateError(Exception):
    """The state file exists but cannot be used; the message says why, in one line.

    ``aside`` names the copy to keep it as (``state.json.<aside>.bak``) before anything could
    overwrite it, or is None to leave it where it is."""

    def __init__(self, message: str, aside: str | None = None, event: str = "state.unreadable"):
        super().__init__(message)
        self.aside = aside
        self.event = event


def save_state(
    path: str | os.PathLike[str],
    state: SavedState,
    now: float,
    max_bytes: int = MAX_STATE_FILE_BYTES,
) -> None:
    """Write ``state`` to ``path`` atomically; raises ``OSError`` when the disk says no, or
    when the state is larger than ``max_bytes`` (the next start would not read it)."""
    target = Path(path)
    kinds: dict[str, Any] = dict(state.unknown_kinds)
    for name, memory in sorted(state.kinds.items()):
        kinds[name] = _kind_sections(declared(name), memory)
    document = {
        "version": VERSION,
        "written_at": now,
        "kinds": kinds,
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
    if (
        version not in (1, 2, VERSION)
        or isinstance(version, bool)
        or not isinstance(document, dict)
    ):
        raise StateError(
            f"{path} is not a state file of version 1 to {VERSION}", aside="unreadable"
        )
    reader = Reader(now, upgraded if version == 1 else None)
    if version == VERSION:
        kinds, unknown = reader.kinds(document.get("kinds", {}))
    else:
        kinds, unknown = legacy_kinds(reader, document), {}
    return SavedState(
        kinds=kinds,
        watched=set(reader.entries(document, "watched", reader.target)),
        removed=reader.entries(document, "removed", reader.removal),
        gone=reader.entries(document, "gone", reader.gone),
        unknown_kinds=unknown,
        dropped=dict(reader.dropped),
    )


def _collection(key: CollectionKey) -> Entry:
    return {"cluster": key[0], "database": key[1], "collection": key[2]}


def _target(key: TargetKey) -> Entry:
    return {"cluster": key[0], "database": key[1], "kind": key[2]}


def _kind_sections(kind: AnyKind | None, memory: KindMemory) -> Entry:
    """One kind's memory as its section of ``kinds``."""
    sections: Entry = {}
    if memory.history or (kind is not None and kind.memory == HISTORY):
        sections[HISTORY] = [_collection_entry(key, entry) for key, entry in memory.history]
    if kind is not None and kind.saved is not None:
        sections[kind.memory] = [
            _remembered_entry(kind, key, entry) for key, entry in memory.newest_finished
        ]
    sections["seen"] = [
        {"cluster": key[0], "database": key[1], "job_ids": sorted(jobs)}
        for key, jobs in sorted(memory.seen.items())
    ]
    sections["durations"] = _histograms(memory.durations)
    return sections


def _collection_entry(key: CollectionKey, entry: CollectionHistory) -> Entry:
    return {
        **_collection(key),
        "last_success": entry.last_success,
        "last_failure": entry.last_failure,
        "last_listed": entry.last_listed,
        "failure_job_id": entry.failure_job_id,
        "failure_reason": entry.failure_reason,
    }


def _remembered_entry(kind: AnyKind, key: CollectionKey, entry: RememberedJob) -> Entry:
    saved = kind.saved
    assert saved is not None
    details = None
    if entry.details is not None and saved.details is not None:
        details = saved.details(entry.details)
    return {
        **_collection(key),
        "last_listed": entry.last_listed,
        "order": {"time": entry.order[0], "id": entry.order[1]},
        "job": saved.job(entry.job),
        "details": details,
    }


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


def remembered_counts(state: SavedState) -> dict[str, int]:
    """Collections remembered per kind, for the log line of a restore."""
    return {
        name: len(memory.history) + len(memory.newest_finished)
        for name, memory in state.kinds.items()
    }
