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
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, TypeVar

import requests
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError
from urllib3.util import Timeout

from .. import __version__
from ..guards.redact import Scrubber
from ..guards.watchdog import Watchdog
from .errors import ApiError, first_line, transport_error
from .listing import (
    J,
    JobTaker,
    KnownPages,
    Listing,
    RecordParser,
    job_list_body,
    merge,
    read_page,
)
from .ratelimit import Slot
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
from .transport import ACCEPT_ENCODING, Sender, as_sender, watched

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
_NUMERIC_CODE = re.compile(r"-?[0-9]{1,18}")  # ASCII only: str.isdigit() also accepts "²"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP exchange, reported to whoever keeps the counters (the client keeps none)."""

    api: str
    outcome: str
    seconds: float
    clock_skew: float | None = None
    """The server's clock (its ``Date`` header) minus ours when the answer came; None without
    an answer or a readable ``Date``."""


def _refresh(record: Any, now: float, shared: dict[str, str]) -> RefreshJob:
    return parse_refresh_job(record, now, shared)


def _import(record: Any, now: float, shared: dict[str, str]) -> ImportJob:
    del now  # the import list carries no times
    return parse_import_job(record, shared)


@dataclass(slots=True)
class _ByteBudget:
    """What is left of ``max_listing_bytes`` for the pages of one list answer."""

    total: int
    remaining: int


RequestObserver = Callable[[RequestRecord], None]
RequestGate = Callable[[str], Slot | None]
"""Called before each request with its API path; may return the rate-limit slot the request
takes, marked sent once its bytes are written and released when the request is over."""


_SEEN = object()
"""What an answer whose bytes are those of a known page reads as: nothing to decode."""


def _identity(data: Any) -> Any:
    return data


def _no_gate(api: str) -> Slot | None:
    del api
    return None


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
        session: Sender | requests.Session,
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
        self._session = as_sender(session)
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
        return merge(
            list(self.list_pages(REFRESH_LIST, job_list_body(database, collection), _refresh))
        )

    def list_import_jobs(self, database: str, collection: str = "") -> Listing[ImportJob]:
        """Every import job of ``database``, following pages on the Zilliz Cloud control plane."""
        return merge(list(self.import_job_pages(database, collection)))

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
        return merge(list(self.list_pages(api, body, parse, paged=paged)))

    def list_pages(
        self,
        api: str,
        body: dict[str, Any],
        parse: RecordParser[J],
        *,
        paged: bool = False,
        known: KnownPages | None = None,
        taker: JobTaker | None = None,
    ) -> Generator[Listing[J], None, None]:
        """A job list (``api``, ``body``) one page at a time, each record read by ``parse``
        (record, now, shared names) and each page only when the caller asks for it, so a
        caller can fold a page into what it keeps before the next is read. An unpaged list is
        one page; a ``paged`` one follows ``count`` / ``pageSize`` / ``currentPage`` (the
        Zilliz Cloud import list).

        An answer that claims more than ``max_import_pages`` pages fails at once
        (``too_many_pages``) instead of being walked page after page for minutes; pages that
        hold more than ``max_listing_bytes`` together fail as soon as the budget runs out
        (``listing_too_large``). With ``known``, a page whose bytes are those of the same page
        last time is not decoded: what it read as then is given again. With ``taker``, the
        jobs of a page that is decoded are handed over as they are read (``listing_of``).
        """
        budget = self._listing_budget()

        def read(data: Any) -> tuple[Listing[J], tuple[int, int, int] | None]:
            return read_page(data, parse, self._now(), paged, taker)

        first, paging = self.call(api, body, read, budget, known)
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
                api, {**body, "pageSize": page_size, "currentPage": page}, read, budget, known
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
        known: KnownPages | None = None,
    ) -> T:
        """POST ``body`` to ``api``, check the envelope and return ``read(data)``.

        Reading is part of the call, so an answer of the wrong shape is counted as a failed
        request (``bad_response``), not as a success. Raises ``ApiError`` for every failure.
        ``budget``, shared by the pages of one list answer, bounds their bytes together.
        ``known``: the answer is the next page of a list whose pages were seen before.
        """
        slot = self._gate(api)
        started = self._clock()
        outcome = "internal"  # anything but an answer or an ApiError is a bug, not a success
        self._exchange_skew = None
        try:
            data = self._exchange(api, body, budget, known, slot)
            if known is None:
                result = read(data)
            elif data is _SEEN:
                result = known.pages[-1].read
            else:
                result = known.read_as(read(data))
            outcome = "success"
            return result
        except ApiError as error:
            outcome = error.reason
            error.message = self._scrubber.text(error.message)
            raise
        finally:
            if slot is not None:
                slot.release()  # a request that never went out counts from now, then frees
            self._observe(
                RequestRecord(
                    api=api,
                    outcome=outcome,
                    seconds=self._clock() - started,
                    clock_skew=self._exchange_skew,
                )
            )

    def _exchange(
        self,
        api: str,
        body: dict[str, Any],
        budget: _ByteBudget | None = None,
        known: KnownPages | None = None,
        slot: Slot | None = None,
    ) -> Any:
        started = self._clock()
        if self._deadline is not None and started >= self._deadline:
            raise ApiError("deadline", "the poll ran out of time before this request could start")
        deadline = started + self.timeout
        remaining = self.timeout
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "Connection": "keep-alive",
            "User-Agent": USER_AGENT,
            "Request-Timeout": str(max(1, math.ceil(self.timeout))),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        on_sending = on_sent = None
        if slot is not None:
            on_sent = slot.sent

            def on_sending() -> None:
                if not slot.sending(until=deadline):
                    raise ApiError(
                        "deadline", "no rate-limit slot free again before the request's deadline"
                    )

        with watched(
            self._watchdog, deadline, self._clock, on_sending=on_sending, on_sent=on_sent
        ) as watch:
            try:
                payload = self._post(api, body, headers, remaining, deadline, budget, known)
            except ApiError:
                if watch.fired:
                    raise self._cut() from None
                raise
            except (HTTPError, HTTPException, OSError, ValueError) as error:
                failure = transport_error(error, self.timeout)
                if watch.fired and failure.reason != "dns":
                    raise self._cut() from None  # the watchdog cut the socket
                raise failure from None  # (a lookup given up at the deadline stays dns)
            if watch.fired:
                raise self._cut()
        return payload if payload is _SEEN else _unwrap(payload)

    def _cut(self) -> ApiError:
        """Why the watchdog cut an exchange: its time ran out, or the exporter is stopping."""
        if self._watchdog is not None and self._watchdog.stopping:
            return ApiError("deadline", "cut short: the exporter is stopping")
        return ApiError("timeout", f"answer not complete within {self.timeout:g}s")

    def _post(
        self,
        api: str,
        body: dict[str, Any],
        headers: dict[str, str],
        remaining: float,
        deadline: float,
        budget: _ByteBudget | None = None,
        known: KnownPages | None = None,
    ) -> Any:
        response = self._session.post(
            self.endpoint,
            API_PATHS.get(api, API_PREFIX + api),
            json.dumps(body).encode(),
            headers,
            Timeout(connect=min(remaining, 5.0), read=remaining),
            self._verify,
        )
        read_whole = False
        try:
            self._note_server_clock(response.headers.get("Date"))
            status = response.status
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
            payload = self._read_body(response, deadline, budget, known)
            read_whole = True
            return payload
        finally:
            if not read_whole:
                response.close()  # unread bytes: the connection is not kept
            response.release_conn()

    def _note_server_clock(self, date: str | None) -> None:
        server_time = parse_http_date(date)
        if server_time is not None:
            self._exchange_skew = self.clock_skew = server_time - self._wall_clock()

    def _read_body(
        self,
        response: BaseHTTPResponse,
        deadline: float,
        budget: _ByteBudget | None = None,
        known: KnownPages | None = None,
    ) -> Any:
        """Read at most ``max_response_bytes`` (and what is left of ``budget``) before
        ``deadline``, then decode JSON.

        Bytes that are not UTF-8 become U+FFFD rather than failing the answer; strings are
        scrubbed of lone surrogates and secrets when the text shows it is needed. Each copy of
        the body is let go as soon as the next exists: a 16 MiB answer is held twice, not four
        times, while it is decoded. The bytes of a page ``known`` from last time are not decoded
        (``_SEEN``).
        """
        chunks: list[bytes] = []
        size = 0
        for chunk in response.stream(64 * 1024, decode_content=True):
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
        if known is not None and known.arrived(_digest(raw)):
            return _SEEN
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


def _digest(raw: bytes) -> bytes:
    """What tells a page's bytes from last time's: SHA-256 (the processor computes it: 0.38 ms
    for a 600 KB refresh list against BLAKE2b's 0.79), 128 bits of it."""
    return hashlib.sha256(raw).digest()[:16]


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
    message = first_line(payload.get("message", ""))[:200]
    shown = code if abs(code) < 10**18 else "out of range"  # str() refuses over 4300 digits
    if code in AUTH_CODES:
        raise ApiError("auth", f"code {shown}: {message}")
    if code in RATE_LIMIT_CODES:
        raise ApiError("rate_limited", f"code {shown}: {message}")
    if code == SERVER_TIMEOUT_CODE:
        raise ApiError("server_timeout", f"code {shown}: {message}")
    reason = f"api_{code}" if 0 < code < 100_000 else "api_other"
    raise ApiError(reason, f"code {shown}: {message}")


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
