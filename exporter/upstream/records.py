"""Typed job records, parsed liberally from what real servers send.

Real answers vary: ``jobId`` is an int64 that arrives as a JSON number (refresh) or a string of
digits (import), sometimes ``job-xxxx`` on the Zilliz Cloud control plane; ``progress`` may be a
number or a numeric string; times are epoch milliseconds with 0 meaning "not set". Anything that
cannot be read raises ``RecordError``, whose bounded ``reason`` says which field was wrong, so the
caller can skip that one record and count it instead of exporting nonsense.

A time must be plausible as epoch milliseconds: from 2015 (before Milvus 2) up to a day ahead of
the exporter's clock. A ``startTime`` sent in seconds (``1732358400``) would otherwise read as a
date in January 1970 and make every duration 55 years long.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

REFRESH_STATES = ("RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed")
REFRESH_FINISHED_STATES = frozenset({"RefreshCompleted", "RefreshFailed"})
IMPORT_STATES = ("Pending", "Importing", "Completed", "Failed")
IMPORT_EXTRA_STATES = frozenset({"InProgress", "Uncommitted", "Committing", "None"})
IMPORT_FINISHED_STATES = frozenset({"Completed", "Failed"})
MAX_STATE_LENGTH = 64
MAX_REASON_LENGTH = 200
MAX_NAME_LENGTH = 255
MAX_FILE_NAME_LENGTH = 1024
MAX_SOURCE_LENGTH = 4096
MAX_EPOCH_MILLIS = 2**63  # int64 milliseconds, as the server stores them
EARLIEST_PLAUSIBLE_TIME = 1_420_070_400.0  # 2015-01-01T00:00:00Z
LATEST_PLAUSIBLE_AHEAD_SECONDS = 86_400.0

_UNSAFE_STATE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


RECORD_ERROR_REASONS = (
    "not_an_object",
    "bad_job_id",
    "bad_collection",
    "bad_state",
    "bad_progress",
    "bad_time",
    "bad_count",
    "bad_file_name",
)


class OversizedInteger:
    """An integer literal longer than Python will read (``sys.get_int_max_str_digits()``, 4300
    digits by default), kept as its length: the one field holding it fails its record, where
    ``json.loads`` would have failed the whole answer (and the target with it)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"OversizedInteger(digits={self.digits})"


def read_json_integer(text: str) -> int | OversizedInteger:
    """``parse_int`` for ``json.loads``: an ``int``, or an ``OversizedInteger`` when too long."""
    try:
        return int(text)
    except ValueError:
        return OversizedInteger(len(text.lstrip("-")))


class RecordError(ValueError):
    """A record that cannot be read; the message names the field, never the whole payload.

    ``reason`` is one of ``RECORD_ERROR_REASONS``: bounded, so it can be a metric label.
    """

    def __init__(self, message: str, reason: str = "not_an_object") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RefreshJob:
    """One external-collection refresh job as listed by the server."""

    job_id: int
    collection: str
    state: str
    progress_ratio: float
    start_time: float | None
    end_time: float | None
    reason: str = ""
    progress_out_of_range: bool = False
    external_source: str = ""
    """Where the collection's data is read from, as the server sent it: a JSON document on
    Zilliz Cloud, a URI such as ``s3://host/bucket/key/`` on a self-hosted Milvus."""

    @property
    def finished(self) -> bool:
        return self.state in REFRESH_FINISHED_STATES

    @property
    def known_state(self) -> bool:
        return self.state in REFRESH_STATES


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One bulk-import job as listed by the server (the list carries no times)."""

    job_id: str
    collection: str
    state: str
    progress_ratio: float
    reason: str = ""
    progress_out_of_range: bool = False

    @property
    def finished(self) -> bool:
        return self.state in IMPORT_FINISHED_STATES

    @property
    def known_state(self) -> bool:
        return self.state in IMPORT_STATES or self.state in IMPORT_EXTRA_STATES

    @property
    def order_key(self) -> tuple[int, str]:
        """Newer jobs have larger numeric ids; ``job-xxxx`` ids sort after by text."""
        return (int(self.job_id), "") if is_digits(self.job_id) else (-1, self.job_id)


def parse_refresh_job(
    record: Any, now: float | None = None, shared: dict[str, str] | None = None
) -> RefreshJob:
    """Read one ``records[]`` entry of the external-collection list or describe answer.

    ``now`` (Unix seconds, default the system clock) bounds how far ahead a time may be.
    ``shared``, given the same dict for every record of a list, makes equal collection names
    and sources one string: the JSON decoder makes a new one per record, and a collection's
    hundreds of jobs would each keep their own copy for as long as the snapshot lives.
    """
    if not isinstance(record, dict):
        raise RecordError(f"expected a job object, got {type(record).__name__}")
    latest = (time.time() if now is None else now) + LATEST_PLAUSIBLE_AHEAD_SECONDS
    progress, out_of_range = read_progress(record.get("progress"))
    return RefreshJob(
        job_id=read_int64(record.get("jobId"), "jobId"),
        collection=shared_text(read_name(record.get("collectionName"), "collectionName"), shared),
        state=read_state(record.get("state")),
        progress_ratio=progress,
        start_time=read_epoch_millis(record.get("startTime"), "startTime", latest),
        end_time=read_epoch_millis(record.get("endTime"), "endTime", latest),
        reason=read_reason(record.get("reason")),
        progress_out_of_range=out_of_range,
        external_source=shared_text(_source(record.get("externalSource")), shared),
    )


def shared_text(text: str, shared: dict[str, str] | None) -> str:
    """The first string equal to ``text`` seen in ``shared`` (``text`` itself when new)."""
    return text if shared is None else shared.setdefault(text, text)


def parse_import_job(record: Any, shared: dict[str, str] | None = None) -> ImportJob:
    """Read one ``records[]`` entry of the import list answer; ``shared`` as for
    ``parse_refresh_job`` (collection names and states)."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a job object, got {type(record).__name__}")
    progress, out_of_range = read_progress(record.get("progress"))
    return ImportJob(
        job_id=_import_job_id(record.get("jobId")),
        collection=shared_text(read_name(record.get("collectionName"), "collectionName"), shared),
        state=shared_text(read_state(record.get("state")), shared),
        progress_ratio=progress,
        reason=read_reason(record.get("reason")),
        progress_out_of_range=out_of_range,
    )


def sanitize_state(value: str) -> str:
    """Keep an unknown state as a bounded, label-safe token rather than dropping the job."""
    cleaned = _UNSAFE_STATE_CHARACTERS.sub("_", value.strip())[:MAX_STATE_LENGTH]
    return cleaned or "unknown"


def read_int64(value: Any, field: str, reason: str = "bad_job_id") -> int:
    if isinstance(value, bool):
        raise RecordError(f"{field} must be an integer, got a boolean", reason)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and is_digits(value.strip()):
        digits = value.strip().lstrip("0") or "0"
        if len(digits) > 19:  # also keeps int() away from its 4300-digit ValueError
            raise RecordError(f"{field} {describe_value(value)} is outside the int64 range", reason)
        number = int(digits)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise RecordError(f"{field} must be an int64, got {describe_value(value)}", reason)
    if not 0 <= number < 2**63:
        shown = str(number) if abs(number) < 10**30 else "with more than 30 digits"
        raise RecordError(f"{field} {shown} is outside the int64 range", reason)
    return number


def _import_job_id(value: Any) -> str:
    if isinstance(value, str) and value.strip() and len(value) <= MAX_NAME_LENGTH:
        text = value.strip()
        return str(int(text)) if is_digits(text) else text
    return str(read_int64(value, "jobId"))


def read_name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RecordError(
            f"{field} must be a string, got {describe_value(value)}", "bad_collection"
        )
    return value[:MAX_NAME_LENGTH]


def read_state(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(
            f"state must be a non-empty string, got {describe_value(value)}", "bad_state"
        )
    return sanitize_state(value)


def read_progress(value: Any) -> tuple[float, bool]:
    """Percent 0..100 -> ratio 0..1, clamped; the flag says whether clamping happened."""
    if value is None:
        return 0.0, False
    if isinstance(value, bool):
        raise RecordError("progress must be a number, got a boolean", "bad_progress")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RecordError(
                f"progress must be a number, got {describe_value(value)}", "bad_progress"
            ) from None
    if not isinstance(value, (int, float)) or value != value:
        raise RecordError(f"progress must be a number, got {describe_value(value)}", "bad_progress")
    # Clamp before float(): an int beyond 1e308 (JSON allows it) would overflow the conversion.
    clamped = float(min(max(value, 0), 100))
    return clamped / 100.0, clamped != value


def read_epoch_millis(value: Any, field: str, latest: float) -> float | None:
    """Epoch milliseconds -> seconds; 0, missing or null means "not set"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} must be epoch milliseconds, got a boolean", "bad_time")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise RecordError(
                f"{field} must be epoch milliseconds, got {describe_value(value)}", "bad_time"
            ) from None
    if not isinstance(value, (int, float)) or value < 0:
        raise RecordError(
            f"{field} must be epoch milliseconds, got {describe_value(value)}", "bad_time"
        )
    if value >= MAX_EPOCH_MILLIS or not math.isfinite(value):
        # Checked before any float conversion, which overflows for ints beyond 1e308.
        raise RecordError(f"{field} is not a plausible time in epoch milliseconds", "bad_time")
    if not value:
        return None
    seconds = value / 1000.0
    if not EARLIEST_PLAUSIBLE_TIME <= seconds <= latest:
        raise RecordError(
            f"{field} {value} is not a plausible time in epoch milliseconds "
            "(before 2015, or more than a day ahead: seconds instead of milliseconds?)",
            "bad_time",
        )
    return seconds


def read_reason(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except (ValueError, RecursionError):  # an int over 4300 digits, or nesting too deep
            text = f"a {type(value).__name__} that cannot be shown"
    return " ".join(text.split())[:MAX_REASON_LENGTH]


def _source(value: Any) -> str:
    """``externalSource`` is shown to people, never exported: anything but a string is left out
    rather than costing the whole record, and a very long one is cut."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= MAX_SOURCE_LENGTH else value[: MAX_SOURCE_LENGTH - 3] + "..."


def is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``"²"``, which ``int()`` refuses."""
    return text.isascii() and text.isdigit()


def describe_value(value: Any) -> str:
    if isinstance(value, OversizedInteger):
        return f"an integer of {value.digits} digits"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


@dataclass(frozen=True, slots=True)
class ImportFileDetails:
    """One entry of an import job's ``details[]``: a file (or a set of files read together).

    ``file_name`` is kept as the server sent it: a self-hosted Milvus names the files of a task
    as a bracketed list (``"[s3://bucket/a.parquet]"``), and taking that text apart would only
    guess at names that may themselves contain brackets or commas. ``state`` is a task state
    there (``Pending``, ``InProgress``, ``Completed``, ``Failed``, ``Retry``), and a failed
    file carries the job's reason. ``progress_ratio`` is None when the entry has no progress.
    """

    file_name: str
    state: str
    progress_ratio: float | None
    imported_rows: int | None
    total_rows: int | None
    file_size_bytes: int | None
    complete_time: float | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ImportJobDetails:
    """What ``import/describe`` adds to a listed import job: rows, bytes, times and files.

    Times are RFC 3339 strings upstream (``completeTime`` empty until the job is done, and never
    set for a failed job); here they are epoch seconds or None, and None stays None: a failed
    import has no completion time and nothing here invents one.

    ``files`` are the ``details[]`` entries that could be read; an entry that cannot be read
    costs only itself and is counted in ``skipped_files`` as (reason, count, first message), the
    way a ``Listing`` counts skipped jobs, so one bad file never hides the job or its other files.
    """

    job_id: str
    state: str
    imported_rows: int | None
    total_rows: int | None
    file_size_bytes: int | None
    create_time: float | None
    complete_time: float | None
    collection: str = ""
    progress_ratio: float = 0.0
    reason: str = ""
    files: tuple[ImportFileDetails, ...] = ()
    skipped_files: tuple[tuple[str, int, str], ...] = ()


def parse_import_details(record: Any) -> ImportJobDetails:
    """Read an ``import/describe`` answer's ``data`` object.

    A job-level field that cannot be read raises ``RecordError``; a bad ``details[]`` entry is
    skipped and counted instead. A missing ``collectionName`` reads as empty: the daemon only
    needs the rows, bytes and times, and must not lose them to a field it does not use.

    Until pre-import ends (progress up to 40, 50 for V3 jobs) a real server answers rows 0 of 0,
    ``fileSize`` 0 and ``details: []``: its tasks, which the counts are sums over, do not exist
    yet. Those zeros are not counts, so they read as unknown (None), and nothing divides by a
    total or reports a size before there is one (``pre_import``).
    """
    if not isinstance(record, dict):
        raise RecordError(f"expected a job object, got {type(record).__name__}")
    collection = record.get("collectionName")
    progress, _out_of_range = read_progress(record.get("progress"))
    files, skipped = _file_entries(record.get("details"))
    counts = tuple(
        read_count(record.get(field), field) for field in ("importedRows", "totalRows", "fileSize")
    )
    if pre_import(record.get("details"), counts):
        counts = (None, None, None)
    imported_rows, total_rows, file_size = counts
    return ImportJobDetails(
        job_id=_import_job_id(record.get("jobId")),
        state=read_state(record.get("state")),
        imported_rows=imported_rows,
        total_rows=total_rows,
        file_size_bytes=file_size,
        create_time=read_rfc3339(record.get("createTime"), "createTime"),
        complete_time=read_rfc3339(record.get("completeTime"), "completeTime"),
        collection="" if collection is None else read_name(collection, "collectionName"),
        progress_ratio=progress,
        reason=read_reason(record.get("reason")),
        files=files,
        skipped_files=skipped,
    )


def pre_import(details: Any, counts: tuple[int | None, ...]) -> bool:
    """Whether an ``import/describe`` answer comes from before its tasks exist: no file
    described (``details: []``) and every count 0 or absent. A finished import of an empty file still
    describes the file, so its zeros stay counts."""
    return isinstance(details, list) and not details and all(not count for count in counts)


def parse_import_file_details(entry: Any) -> ImportFileDetails:
    """Read one ``details[]`` entry of an ``import/describe`` answer.

    Missing fields read as unknown (None, or empty text); a field of the wrong kind raises
    ``RecordError`` naming it.
    """
    if not isinstance(entry, dict):
        raise RecordError(f"expected a file object, got {type(entry).__name__}")
    progress = entry.get("progress")
    return ImportFileDetails(
        file_name=_file_name(entry.get("fileName")),
        state=read_state(entry["state"]) if entry.get("state") not in (None, "") else "",
        progress_ratio=None if progress is None else read_progress(progress)[0],
        imported_rows=read_count(entry.get("importedRows"), "importedRows"),
        total_rows=read_count(entry.get("totalRows"), "totalRows"),
        file_size_bytes=read_count(entry.get("fileSize"), "fileSize"),
        complete_time=read_rfc3339(entry.get("completeTime"), "completeTime"),
        reason=read_reason(entry.get("reason")),
    )


def _file_entries(
    details: Any,
) -> tuple[tuple[ImportFileDetails, ...], tuple[tuple[str, int, str], ...]]:
    """The readable entries of ``details[]``, and (reason, count, first message) of the rest."""
    if details is None:
        return (), ()
    if not isinstance(details, list):
        message = f"details must be a list, got {describe_value(details)}"
        return (), (("not_an_object", 1, message),)
    files: list[ImportFileDetails] = []
    counts: dict[str, int] = {}
    first_message: dict[str, str] = {}
    for entry in details:
        try:
            files.append(parse_import_file_details(entry))
        except RecordError as error:
            counts[error.reason] = counts.get(error.reason, 0) + 1
            first_message.setdefault(error.reason, str(error))
    skipped = tuple((reason, counts[reason], first_message[reason]) for reason in sorted(counts))
    return tuple(files), skipped


def _file_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(
            f"fileName must be a string, got {describe_value(value)}", "bad_file_name"
        )
    if len(value) <= MAX_FILE_NAME_LENGTH:
        return value
    return value[: MAX_FILE_NAME_LENGTH - 3] + "..."


def read_count(value: Any, field: str) -> int | None:
    """A non-negative integer (number or string of digits); missing means unknown."""
    if value is None or value == "":
        return None
    return read_int64(value, field, "bad_count")


def read_rfc3339(value: Any, field: str) -> float | None:
    """``2024-04-11T10:00:00Z`` (or with an offset) -> epoch seconds; empty means not set."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise RecordError(
            f"{field} must be an RFC 3339 time, got {describe_value(value)}", "bad_time"
        )
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(
            f"{field} must be an RFC 3339 time, got {describe_value(value)}", "bad_time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    return seconds if seconds > 0 else None
