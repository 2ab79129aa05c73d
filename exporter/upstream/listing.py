"""What a job list answer becomes: its readable jobs and the records skipped (``Listing``), read
one record at a time by a kind's parser (``RecordParser``), its pages merged, and the paging of
the Zilliz Cloud import list (``read_page``).

A listed record that cannot be read costs only that record: it is skipped and counted by
reason, and the rest of the answer is used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .errors import ApiError
from .records import RecordError

J = TypeVar("J")
RecordParser = Callable[[Any, float, dict[str, str]], J]
"""Reads one listed record: (record, now, shared) -> a job, or raises ``RecordError``. ``now``
bounds how far ahead a time may be; ``shared`` (one dict per answer) makes equal names one
string."""


def job_list_body(database: str, collection: str = "") -> dict[str, Any]:
    """``{"dbName": ..., "collectionName": ...}``: what every job list takes (collection optional)."""
    body: dict[str, Any] = {"dbName": database}
    if collection:
        body["collectionName"] = collection
    return body


@dataclass(frozen=True, slots=True)
class Listing(Generic[J]):
    """The readable jobs of a list answer, and the records that were skipped.

    ``skipped`` holds (reason, count, first message) per ``RecordError`` reason.
    """

    jobs: tuple[J, ...]
    skipped: tuple[tuple[str, int, str], ...] = ()

    @property
    def skipped_count(self) -> int:
        return sum(count for _reason, count, _message in self.skipped)


def records_of(data: Any) -> list[Any]:
    """``data.records``; an empty ``data`` means no jobs. Older servers put the list in ``data``."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ApiError("bad_response", "data is not an object")
    records = data.get("records")
    if records is None:
        return []
    if not isinstance(records, list):
        raise ApiError("bad_response", "data.records is not a list")
    return records


class JobTaker(Protocol):
    """Takes the jobs of a page as they are read, when the page may not be taken whole."""

    def fits(self, count: int) -> bool:
        """Whether a page of ``count`` records is to be taken whole, once it is read."""
        ...

    def take(self, job: Any) -> bool:
        """Take one job as it is read; whether the page's ``Listing`` must hold it too."""
        ...


def listing_of(
    records: list[Any], parse: Callable[..., J], *args: Any, taker: JobTaker | None = None
) -> Listing[J]:
    """Parse every record; skip (and count by reason) the ones that cannot be read.

    Each decoded record is let go once it is read: a page of 167,000 records held 60 MB of
    them next to the jobs made from them. With ``taker``, each job is handed over as it is
    read and the listing holds only the jobs ``taker`` asks it to: a job the caps leave out
    is let go at once, not with its page. A page that ``taker`` says fits is not handed over
    job by job: one call less per record."""
    take = None if taker is None or taker.fits(len(records)) else taker.take
    jobs: list[J] = []
    skipped: Counter[str] = Counter()
    first_message: dict[str, str] = {}
    for index, record in enumerate(records):
        records[index] = None
        try:
            job = parse(record, *args)
        except RecordError as error:
            skipped[error.reason] += 1
            first_message.setdefault(error.reason, str(error))
            continue
        if take is None or take(job):
            jobs.append(job)
    return Listing(
        tuple(jobs),
        tuple((reason, count, first_message[reason]) for reason, count in sorted(skipped.items())),
    )


def merge(listings: list[Listing[J]]) -> Listing[J]:
    if len(listings) == 1:
        return listings[0]
    counts: Counter[str] = Counter()
    first_message: dict[str, str] = {}
    for listing in listings:
        for reason, count, message in listing.skipped:
            counts[reason] += count
            first_message.setdefault(reason, message)
    return Listing(
        tuple(job for listing in listings for job in listing.jobs),
        tuple((reason, counts[reason], first_message[reason]) for reason in sorted(counts)),
    )


def read_page(
    data: Any, parse: RecordParser[J], now: float, paged: bool, taker: JobTaker | None = None
) -> tuple[Listing[J], tuple[int, int, int] | None]:
    """One page of jobs (handed to ``taker`` as they are read, ``listing_of``), and
    (current page, page count, page size) when ``paged`` and the answer says it is one page
    of several."""
    shared: dict[str, str] = {}  # one copy of each collection name and state per page
    jobs = listing_of(records_of(data), parse, now, shared, taker=taker)
    if not paged or not isinstance(data, dict) or not {"count", "pageSize"} <= data.keys():
        return jobs, None
    fields = (data["count"], data["pageSize"], data.get("currentPage") or 1)
    if any(isinstance(field, bool) for field in fields):  # int(True) would read as 1
        raise ApiError("bad_response", "paging fields are not numbers")
    try:
        count, page_size, current = (int(field) for field in fields)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise ApiError("bad_response", "paging fields are not numbers") from None
    if page_size <= 0:
        return jobs, None
    pages = max(0, -(-count // page_size))  # ceiling without a float to overflow
    # A current page below 1 would make the caller walk from there: read it as the first page.
    return jobs, (max(current, 1), pages, page_size)


@dataclass(slots=True)
class SeenPage:
    """One page of a list as it was read: a digest of its bytes, and what they read as."""

    digest: bytes
    read: Any = None
    hit: bool = False
    """The bytes were the same as the same page's of the last list: ``read`` is that one's."""


class KnownPages:
    """The pages of a target's last list, by a digest of their bytes (``MilvusClient.call``):
    a page whose bytes are the same as last time is neither decoded nor read again, its
    listing (the very same job objects) is used. At fleet scale most answers are: a database
    whose jobs all finished lists the same bytes every round."""

    def __init__(self, previous: Sequence[SeenPage] = ()) -> None:
        self._previous = previous
        self.pages: list[SeenPage] = []
        """This list's pages so far, in order."""
        self.forgotten = False
        """What the pages read as is no longer held (``forget``)."""

    def arrived(self, digest: bytes) -> bool:
        """The next page's bytes arrived: whether they are the same as last time."""
        index = len(self.pages)
        before = self._previous[index] if index < len(self._previous) else None
        hit = before is not None and before.digest == digest
        self.pages.append(SeenPage(digest, before.read if hit and before else None, hit))
        return hit

    def read_as(self, read: Any) -> Any:
        """The newest page read as ``read``: held for the next list, unless forgotten."""
        if not self.forgotten:
            self.pages[-1].read = read
        return read

    def forget(self) -> None:
        """This list cannot be remembered (its caps left jobs out): let go of what its pages
        read as. Held to the end, a list of 500,000 imports in 3 pages kept every one of its
        jobs until the last page was read, next to the 10,000 the caps keep."""
        self.forgotten = True
        for page in self.pages:
            page.read = None

    @property
    def all_seen(self) -> bool:
        """Every page was the same as last time, and there were as many."""
        return len(self.pages) == len(self._previous) and all(page.hit for page in self.pages)
