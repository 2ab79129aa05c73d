"""The typed Milvus REST v2 job API client.

One place decides what an answer means: HTTP status first (401/403 auth, but 403 on a describe
``forbidden``: a token that may list jobs without the privilege to describe them; 408
``server_timeout``; 429 rate limited; other non-200 ``http_<status>``), then the JSON envelope
(``code`` 0, or 200 on older Milvus, is success; 1800/1400/1401 auth; 8/1807 rate limited;
10001 ``server_timeout``; anything else ``api_<code>``). Every failure is an ``ApiError`` with a
bounded ``reason`` that is safe as a metric label.

Every request is held to its timeout as a whole (``transport.watched``), not per read, and no
page of a poll starts after the poll's own deadline. A listed record that cannot be read costs only that
record: it is skipped and counted in the ``Listing`` by reason, and the rest of the answer is used.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import math
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import requests
import urllib3.exceptions

from .. import __version__
from ..guards.redact import Scrubber
from ..guards.watchdog import Watchdog
from .records import (
    ImportJob,
    ImportJobDetails,
    RecordError,
    RefreshJob,
    parse_import_details,
    parse_import_job,
    parse_refresh_job,
    read_json_integer,
)
from .resolver import ResolutionError
from .transport import BearerAuth, watched

USER_AGENT = f"milvus-jobs-exporter/{__version__}"
T = TypeVar("T")

REFRESH_LIST = "external_collection/list"
REFRESH_DESCRIBE = "external_collection/describe"
REFRESH_TRIGGER = "external_collection/refresh"
IMPORT_LIST = "import/list"
IMPORT_DESCRIBE = "import/describe"
DATABASES_LIST = "databases/list"
COLLECTIONS_LIST = "collections/list"
API_PREFIX = "/v2/vectordb/jobs/"
API_PATHS = {
    DATABASES_LIST: "/v2/vectordb/databases/list",
    COLLECTIONS_LIST: "/v2/vectordb/collections/list",
}
"""APIs outside /v2/vectordb/jobs/ (the ``api`` label stays the short name)."""

SUCCESS_CODES = frozenset({0, 200})
AUTH_CODES = frozenset({1800, 1400, 1401})
RATE_LIMIT_CODES = frozenset({8, 1807})
MAX_IMPORT_PAGES = 100
MAX_LISTING_BYTES = 64 * 1024 * 1024
MAX_RETRY_AFTER = 300.0
MAX_TRUSTED_SERVER_AHEAD_SECONDS = 7 * 86_400.0
"""How far ahead of this host a server's ``Date`` is believed when judging its job times: a host
whose clock is behind must not skip every record, but a server's clock is not taken on faith
for ever either."""
SERVER_TIMEOUT_CODE = 10001
"""A request that outlived its ``Request-Timeout`` on the server (HTTP 408 on Milvus 3)."""
DESCRIBE_SUFFIX = "/describe"
TEMPORARY_REASONS = frozenset(
    {"timeout", "server_timeout", "dns", "connect", "reset", "rate_limited", "too_large"}
)
_NUMERIC_CODE = re.compile(r"-?[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts "²"


class ApiError(Exception):
    """A failed API call. ``reason`` is bounded (a label); ``message`` is for humans and logs."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    @property
    def temporary(self) -> bool:
        """Worth retrying: the same request may well succeed a moment later."""
        return self.reason in TEMPORARY_REASONS or self.reason.startswith("http_5")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP exchange, reported to whoever keeps the counters (the client keeps none)."""

    api: str
    outcome: str
    seconds: float
    clock_skew: float | None = None
    """The server's clock (its ``Date`` header) minus ours when the answer came; None without
    an answer or a readable ``Date``."""


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


def _refresh(record: Any, now: float, shared: dict[str, str]) -> RefreshJob:
    return parse_refresh_job(record, now, shared)


def _import(record: Any, now: float, shared: dict[str, str]) -> ImportJob:
    del now  # the import list carries no times
    return parse_import_job(record, shared)


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


@dataclass(slots=True)
class _ByteBudget:
    """What is left of ``max_listing_bytes`` for the pages of one list answer."""

    total: int
    remaining: int


RequestObserver = Callable[[RequestRecord], None]
RequestGate = Callable[[str], None]


def _identity(data: Any) -> Any:
    return data


def _no_gate(api: str) -> None:
    del api


def _no_observer(record: RequestRecord) -> None:
    del record


class MilvusClient:
    """Calls one cluster's job API with one credential.

    ``gate(api)`` is called before every request so the caller can hold it to the rate limit
    (pages of a paged answer included); ``observe`` receives every request's outcome and time.
    """

    def __init__(
        self,
        endpoint: str,
        token: str,
        session: requests.Session,
        timeout: float,
        *,
        gate: RequestGate = _no_gate,
        observe: RequestObserver = _no_observer,
        max_response_bytes: int = 16 * 1024 * 1024,
        verify: bool | str = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        watchdog: Watchdog | None = None,
        secrets: tuple[str, ...] | None = None,
        deadline: float | None = None,
        max_import_pages: int = MAX_IMPORT_PAGES,
        max_listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        """No request starts after ``deadline`` (on ``clock``), so the pages of one poll end
        within it plus one ``timeout``; ``secrets`` (default: the token) are scrubbed from
        everything the server sends back. The pages of one list answer read at most
        ``max_listing_bytes`` together (each at most ``max_response_bytes``)."""
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self._auth = BearerAuth(token)
        self._session = session
        self.timeout = timeout
        self._gate = gate
        self._observe = observe
        self._max_response_bytes = max_response_bytes
        self._verify = verify
        self._clock = clock
        self._wall_clock = wall_clock
        self._watchdog = watchdog
        self._scrubber = Scrubber((token,) if secrets is None else secrets)
        self._deadline = deadline
        self._max_import_pages = max_import_pages
        self._max_listing_bytes = max_listing_bytes
        self.clock_skew: float | None = None
        """The server's clock minus ours at the last answer (``Date``), None before one."""
        self._exchange_skew: float | None = None

    def __repr__(self) -> str:
        return f"MilvusClient(endpoint={self.endpoint!r})"

    def list_refresh_jobs(self, database: str, collection: str = "") -> Listing[RefreshJob]:
        """Every refresh job of ``database`` (of one collection if given), newest first."""
        return _merge(
            list(self.list_pages(REFRESH_LIST, job_list_body(database, collection), _refresh))
        )

    def list_import_jobs(self, database: str, collection: str = "") -> Listing[ImportJob]:
        """Every import job of ``database``, following pages on the Zilliz Cloud control plane."""
        return _merge(list(self.import_job_pages(database, collection)))

    def import_job_pages(
        self, database: str, collection: str = ""
    ) -> Generator[Listing[ImportJob], None, None]:
        """The import list of ``database`` one page at a time (``list_pages``)."""
        return self.list_pages(
            IMPORT_LIST, job_list_body(database, collection), _import, paged=True
        )

    def list_jobs(
        self,
        api: str,
        body: dict[str, Any],
        parse: RecordParser[J],
        *,
        paged: bool = False,
    ) -> Listing[J]:
        """Every job of a list (``list_pages``), its pages merged."""
        return _merge(list(self.list_pages(api, body, parse, paged=paged)))

    def list_pages(
        self,
        api: str,
        body: dict[str, Any],
        parse: RecordParser[J],
        *,
        paged: bool = False,
    ) -> Generator[Listing[J], None, None]:
        """A job list (``api``, ``body``) one page at a time, each record read by ``parse``
        (record, now, shared names) and each page only when the caller asks for it, so a
        caller can fold a page into what it keeps before the next is read. An unpaged list is
        one page; a ``paged`` one follows ``count`` / ``pageSize`` / ``currentPage`` (the
        Zilliz Cloud import list).

        An answer that claims more than ``max_import_pages`` pages fails at once
        (``too_many_pages``) instead of being walked page after page for minutes; pages that
        hold more than ``max_listing_bytes`` together fail as soon as the budget runs out
        (``listing_too_large``).
        """
        budget = self._listing_budget()

        def read(data: Any) -> tuple[Listing[J], tuple[int, int, int] | None]:
            return _read_page(data, parse, self._now(), paged)

        first, paging = self.call(api, body, read, budget)
        if paging is not None:
            current, pages, page_size = paging
            if pages > self._max_import_pages:
                raise ApiError(
                    "too_many_pages",
                    f"the {api.split('/')[0]} list claims {pages} pages of {page_size}; "
                    f"more than max_import_pages ({self._max_import_pages})",
                )
        yield first
        del first  # one page at a time: the caller has folded it in
        if paging is None:
            return
        for page in range(current + 1, pages + 1):
            more, _ = self.call(
                api, {**body, "pageSize": page_size, "currentPage": page}, read, budget
            )
            yield more
            del more

    def _listing_budget(self) -> _ByteBudget:
        return _ByteBudget(self._max_listing_bytes, self._max_listing_bytes)

    def list_databases(self) -> tuple[str, ...]:
        """Every database of the cluster (``databases/list``), for database discovery."""
        return self.call(DATABASES_LIST, {}, _names("database"))

    def list_collections(self, database: str) -> tuple[str, ...]:
        """Every collection of ``database`` (``collections/list``): the evidence that a
        collection is gone. Code 800 (database not found) is an ``ApiError`` like any other."""
        return self.call(COLLECTIONS_LIST, {"dbName": database}, _names("collection"))

    def describe_refresh_job(self, job_id: int) -> RefreshJob:
        return self.call(
            REFRESH_DESCRIBE, {"jobId": job_id}, lambda data: _read_refresh_job(data, self._now())
        )

    def _now(self) -> float:
        """What job times are judged against (nothing more than a day ahead of it): the later
        of our clock and the server's, when the last answer said what its clock was. A host
        two days behind used to skip every record as ``bad_time`` while the target looked up."""
        now = self._wall_clock()
        if self._exchange_skew is not None and self._exchange_skew > 0:
            now += min(self._exchange_skew, MAX_TRUSTED_SERVER_AHEAD_SECONDS)
        return now

    def refresh(
        self,
        database: str,
        collection: str,
        external_source: str | None = None,
        external_spec: str | None = None,
    ) -> int:
        """Start a refresh; returns the new job id. Source and spec go together or not at all."""
        if (external_source is None) != (external_spec is None):
            raise ValueError("externalSource and externalSpec must be given together or not at all")
        body: dict[str, Any] = {"dbName": database, "collectionName": collection}
        if external_source is not None:
            body["externalSource"] = external_source
            body["externalSpec"] = external_spec
        return self.call(REFRESH_TRIGGER, body, _read_new_job_id)

    def describe(self, api: str, body: dict[str, Any], read: Callable[[Any], T]) -> T:
        """One job, from a describe answer's ``data`` object read by ``read``; an answer without
        a job object, or one ``read`` cannot read (``RecordError``), is ``bad_response``."""
        return self.call(api, body, lambda data: _parse(read, _read_object(data)))

    def describe_import_job(self, job_id: str) -> dict[str, Any]:
        """The raw import job detail object (rows, sizes, RFC 3339 times, per-file details)."""
        return self.call(IMPORT_DESCRIBE, {"jobId": str(job_id)}, _read_object)

    def import_job_details(self, job_id: str) -> ImportJobDetails:
        """Rows, bytes and times of one import job (``import/describe``), typed."""
        return self.call(IMPORT_DESCRIBE, {"jobId": str(job_id)}, _read_import_details)

    def call(
        self,
        api: str,
        body: dict[str, Any],
        read: Callable[[Any], T] = _identity,
        budget: _ByteBudget | None = None,
    ) -> T:
        """POST ``body`` to ``api``, check the envelope and return ``read(data)``.

        Reading is part of the call, so an answer of the wrong shape is counted as a failed
        request (``bad_response``), not as a success. Raises ``ApiError`` for every failure.
        ``budget``, shared by the pages of one list answer, bounds their bytes together.
        """
        self._gate(api)
        started = self._clock()
        outcome = "internal"  # anything but an answer or an ApiError is a bug, not a success
        self._exchange_skew = None
        try:
            result = read(self._exchange(api, body, budget))
            outcome = "success"
            return result
        except ApiError as error:
            outcome = error.reason
            error.message = self._scrubber.text(error.message)
            raise
        finally:
            self._observe(
                RequestRecord(
                    api=api,
                    outcome=outcome,
                    seconds=self._clock() - started,
                    clock_skew=self._exchange_skew,
                )
            )

    def _exchange(self, api: str, body: dict[str, Any], budget: _ByteBudget | None = None) -> Any:
        started = self._clock()
        if self._deadline is not None and started >= self._deadline:
            raise ApiError("deadline", "the poll ran out of time before this request could start")
        deadline = started + self.timeout
        cut = ApiError("timeout", f"answer not complete within {self.timeout:g}s")
        remaining = self.timeout
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Request-Timeout": str(max(1, math.ceil(self.timeout))),
        }
        with watched(self._watchdog, deadline, self._clock) as watch:
            try:
                payload = self._post(api, body, headers, remaining, deadline, budget)
            except ApiError:
                if watch.fired:
                    raise cut from None
                raise
            except (requests.exceptions.RequestException, OSError, ValueError) as error:
                failure = _transport_error(error, self.timeout)
                if watch.fired and failure.reason != "dns":
                    raise cut from None  # the watchdog cut the socket: time ran out
                raise failure from None  # (a lookup given up at the deadline stays dns)
            if watch.fired:
                raise cut
        return _unwrap(payload)

    def _post(
        self,
        api: str,
        body: dict[str, Any],
        headers: dict[str, str],
        remaining: float,
        deadline: float,
        budget: _ByteBudget | None = None,
    ) -> Any:
        with self._session.post(
            self.endpoint + API_PATHS.get(api, API_PREFIX + api),
            data=json.dumps(body),
            headers=headers,
            auth=self._auth,
            timeout=(min(remaining, 5.0), remaining),
            stream=True,
            allow_redirects=False,
            verify=self._verify,
        ) as response:
            self._note_server_clock(response.headers.get("Date"))
            status = response.status_code
            if status == 403 and api.endswith(DESCRIBE_SUFFIX):
                raise ApiError(
                    "forbidden", "HTTP 403: the token may list these jobs but not describe them"
                )
            if status in (401, 403):
                raise ApiError("auth", f"HTTP {status}: the token was refused")
            if status == 408:
                raise ApiError("server_timeout", "HTTP 408: the server gave up (Request-Timeout)")
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise ApiError("rate_limited", "HTTP 429 Too Many Requests", retry_after)
            if status != 200:
                raise ApiError(
                    f"http_{status}" if 100 <= status <= 599 else "http_other", f"HTTP {status}"
                )
            return self._read_body(response, deadline, budget)

    def _note_server_clock(self, date: str | None) -> None:
        server_time = parse_http_date(date)
        if server_time is not None:
            self._exchange_skew = self.clock_skew = server_time - self._wall_clock()

    def _read_body(
        self, response: requests.Response, deadline: float, budget: _ByteBudget | None = None
    ) -> Any:
        """Read at most ``max_response_bytes`` (and what is left of ``budget``) before
        ``deadline``, then decode JSON.

        Bytes that are not UTF-8 become U+FFFD rather than failing the answer; strings are
        scrubbed of lone surrogates and secrets when the text shows it is needed. Each copy of
        the body is let go as soon as the next exists: a 16 MiB answer is held twice, not four
        times, while it is decoded.
        """
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=64 * 1024):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise ApiError("too_large", f"answer larger than {self._max_response_bytes} bytes")
            if budget is not None and size > budget.remaining:
                raise ApiError(
                    "listing_too_large",
                    f"the pages of this list answer hold more than max_listing_bytes "
                    f"({budget.total} bytes)",
                )
            if self._clock() > deadline:
                raise ApiError("timeout", f"answer not complete within {self.timeout:g}s")
            chunks.append(chunk)
        if budget is not None:
            budget.remaining -= size
        raw = b"".join(chunks)
        del chunks
        text = raw.decode("utf-8", errors="replace")
        del raw
        try:
            payload = _decode_json(text)
            if self._scrubber.needed(text):
                payload = self._scrubber.scrub(payload)
            return payload
        except (ValueError, RecursionError):
            looks_like = "HTML" if text.lstrip()[:1] == "<" else "not JSON"
            raise ApiError("bad_json", f"answer is {looks_like} ({size} bytes)") from None


def _decode_json(text: str) -> Any:
    """``json.loads``, except that an integer too long for Python (over 4300 digits) becomes an
    ``OversizedInteger`` that fails only the record holding it. The fast decoder is tried
    first; the hook, a Python call per integer, only for an answer that needs it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        return json.loads(text, parse_int=read_json_integer)


_RESOLUTION_FAILURES = (
    ResolutionError,
    urllib3.exceptions.NameResolutionError,
    socket.gaierror,
)
_CONNECT_FAILURES = (
    urllib3.exceptions.NewConnectionError,
    ConnectionRefusedError,
)
_BAD_ENCODINGS = (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)
_MALFORMED_ANSWERS = (
    requests.exceptions.InvalidHeader,
    urllib3.exceptions.InvalidHeader,
    urllib3.exceptions.HeaderParsingError,
    http.client.LineTooLong,
)
_BROKEN_CONNECTIONS = (
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    urllib3.exceptions.ProtocolError,
    requests.exceptions.ChunkedEncodingError,
)
_TIMEOUTS = (urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout)


def _transport_error(error: BaseException, timeout: float) -> ApiError:
    """What went wrong below HTTP, named by what happened: ``tls``, ``dns`` (the name could not
    be resolved in time), ``connect`` (no connection was made), ``timeout``, ``bad_encoding``
    (a body its ``Content-Encoding`` cannot decode), ``bad_response`` (an answer that breaks
    HTTP's framing: two different ``Content-Length``s, endless 1xx answers), or ``reset`` (the
    connection broke before the answer was whole)."""
    message = _first_line(error)
    causes = list(_causes(error))
    if isinstance(error, requests.exceptions.SSLError) or any(
        isinstance(cause, ssl.SSLError) for cause in causes
    ):
        return ApiError("tls", message)
    resolution = next((c for c in causes if isinstance(c, ResolutionError)), None)
    if resolution is not None:
        return ApiError("dns", _first_line(resolution))
    if any(isinstance(cause, _RESOLUTION_FAILURES) for cause in causes):
        return ApiError("dns", message)
    if any(isinstance(cause, _BAD_ENCODINGS) for cause in causes):
        return ApiError("bad_encoding", f"the body cannot be decoded: {message}")
    if any(isinstance(cause, _MALFORMED_ANSWERS) for cause in causes) or any(
        type(cause) is http.client.HTTPException for cause in causes
    ):
        return ApiError("bad_response", f"not a valid HTTP answer: {message}")
    # Before timeouts: urllib3's NewConnectionError is a subclass of its ConnectTimeoutError.
    if any(isinstance(cause, _CONNECT_FAILURES) for cause in causes):
        return ApiError("connect", message)
    lowered = str(error).lower()
    if (
        isinstance(error, requests.exceptions.Timeout)
        or any(isinstance(cause, _TIMEOUTS) for cause in causes)
        or "timed out" in lowered
    ):
        return ApiError("timeout", f"no answer within {timeout:g}s")
    if any(isinstance(cause, _BROKEN_CONNECTIONS) for cause in causes) or any(
        word in lowered for word in ("reset", "broken", "aborted", "incompleteread")
    ):
        return ApiError("reset", message)
    return ApiError("connect", message)


def _causes(error: BaseException, depth: int = 0) -> Iterator[BaseException]:
    """``error`` and what it wraps: urllib3 and requests nest the real cause in args."""
    if depth > 6:
        return
    yield error
    for inner in (*error.args, getattr(error, "reason", None), error.__cause__, error.__context__):
        if isinstance(inner, BaseException) and inner is not error:
            yield from _causes(inner, depth + 1)


def _unwrap(payload: Any) -> Any:
    """Check the ``{"code": ..., "data": ...}`` envelope and return ``data``."""
    if not isinstance(payload, dict):
        raise ApiError("bad_response", "answer is not a JSON object")
    if "code" not in payload:
        raise ApiError("bad_response", "answer has no code (not a Milvus API answer?)")
    code = payload.get("code")
    if isinstance(code, str) and _NUMERIC_CODE.fullmatch(code.strip()):
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        raise ApiError("bad_response", "answer has no numeric code")
    if code in SUCCESS_CODES:
        return payload.get("data")
    message = _first_line(payload.get("message", ""))[:200]
    shown = code if abs(code) < 10**18 else "out of range"  # str() refuses over 4300 digits
    if code in AUTH_CODES:
        raise ApiError("auth", f"code {shown}: {message}")
    if code in RATE_LIMIT_CODES:
        raise ApiError("rate_limited", f"code {shown}: {message}")
    if code == SERVER_TIMEOUT_CODE:
        raise ApiError("server_timeout", f"code {shown}: {message}")
    reason = f"api_{code}" if 0 < code < 100_000 else "api_other"
    raise ApiError(reason, f"code {shown}: {message}")


def _records(data: Any) -> list[Any]:
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


def _listing(records: list[Any], parse: Callable[..., J], *args: Any) -> Listing[J]:
    """Parse every record; skip (and count by reason) the ones that cannot be read.

    Each decoded record is let go once it is read: a page of 167,000 records held 60 MB of
    them next to the jobs made from them."""
    jobs: list[J] = []
    skipped: Counter[str] = Counter()
    first_message: dict[str, str] = {}
    for index, record in enumerate(records):
        records[index] = None
        try:
            jobs.append(parse(record, *args))
        except RecordError as error:
            skipped[error.reason] += 1
            first_message.setdefault(error.reason, str(error))
    return Listing(
        tuple(jobs),
        tuple((reason, count, first_message[reason]) for reason, count in sorted(skipped.items())),
    )


def _merge(listings: list[Listing[J]]) -> Listing[J]:
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


def _names(what: str) -> Callable[[Any], tuple[str, ...]]:
    """A reader of a list of ``what`` names. Strictly a list of strings: ``null`` or an object
    is not an empty list, since an empty list of collections reads as "every one is gone"."""

    def read(data: Any) -> tuple[str, ...]:
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            raise ApiError("bad_response", f"the {what} list is not a list of names")
        return tuple(dict.fromkeys(name for name in data if name))

    return read


def _read_refresh_job(data: Any, now: float | None = None) -> RefreshJob:
    if not isinstance(data, dict):
        raise ApiError("bad_response", "describe answer has no job object")
    return _parse(lambda record: parse_refresh_job(record, now), data)


def _read_import_details(data: Any) -> ImportJobDetails:
    return _parse(parse_import_details, _read_object(data))


def _read_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError("bad_response", "describe answer has no job object")
    return data


def _read_new_job_id(data: Any) -> int:
    job_id = data.get("jobId") if isinstance(data, dict) else None
    try:
        return parse_refresh_job(
            {"jobId": job_id, "collectionName": "", "state": "RefreshPending"}
        ).job_id
    except RecordError as error:
        raise ApiError("bad_response", f"refresh answer: {error}") from None


def _read_page(
    data: Any, parse: RecordParser[J], now: float, paged: bool
) -> tuple[Listing[J], tuple[int, int, int] | None]:
    """One page of jobs, and (current page, page count, page size) when ``paged`` and the
    answer says it is one page of several."""
    shared: dict[str, str] = {}  # one copy of each collection name and state per page
    jobs = _listing(_records(data), parse, now, shared)
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


def _parse(parser: Callable[[Any], Any], record: Any) -> Any:
    try:
        return parser(record)
    except RecordError as error:
        raise ApiError("bad_response", f"job record: {error}") from None


def parse_http_date(value: str | None) -> float | None:
    """An HTTP date (``Date``: ``Sun, 06 Nov 1994 08:49:37 GMT``) as Unix time, or None."""
    if not value or len(value) > 64:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": HTTP dates are always GMT
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    try:
        seconds = moment.timestamp()
    except (OverflowError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # "-0000" gives a naive datetime, which timestamp() would read as local time (and
        # overflow near year 9999 east of UTC); HTTP dates are always GMT.
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return min(max(0.0, moment.timestamp() - time.time()), MAX_RETRY_AFTER)


def _first_line(value: Any) -> str:
    try:
        text = str(value)
    except (ValueError, RecursionError):  # an int over 4300 digits, or nesting too deep
        return f"a {type(value).__name__} that cannot be shown"
    return text.splitlines()[0] if text else ""
