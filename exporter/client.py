"""The typed Milvus REST v2 job API client.

One place decides what an answer means: HTTP status first (401/403 auth, 429 rate limited, other
non-200 ``http_<status>``), then the JSON envelope (``code`` 0, or 200 on older Milvus, is
success; 1800/1400/1401 auth; 8/1807 rate limited; anything else ``api_<code>``). Every failure
is an ``ApiError`` with a bounded ``reason`` that is safe as a metric label.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from . import __version__
from .records import (
    ImportJob,
    ImportJobDetails,
    RecordError,
    RefreshJob,
    parse_import_details,
    parse_import_job,
    parse_refresh_job,
)
from .redact import redact

USER_AGENT = f"milvus-jobs-exporter/{__version__}"
T = TypeVar("T")

REFRESH_LIST = "external_collection/list"
REFRESH_DESCRIBE = "external_collection/describe"
REFRESH_TRIGGER = "external_collection/refresh"
IMPORT_LIST = "import/list"
IMPORT_DESCRIBE = "import/describe"
API_PREFIX = "/v2/vectordb/jobs/"

SUCCESS_CODES = frozenset({0, 200})
AUTH_CODES = frozenset({1800, 1400, 1401})
RATE_LIMIT_CODES = frozenset({8, 1807})
IMPORT_PAGE_SIZE = 100
MAX_IMPORT_PAGES = 1000
MAX_RETRY_AFTER = 300.0
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
        return self.reason in {"timeout", "connect", "rate_limited", "too_large"} or (
            self.reason.startswith("http_5")
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP exchange, reported to whoever keeps the counters (the client keeps none)."""

    api: str
    outcome: str
    seconds: float


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
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self._session = session
        self.timeout = timeout
        self._gate = gate
        self._observe = observe
        self._max_response_bytes = max_response_bytes
        self._verify = verify
        self._clock = clock

    def __repr__(self) -> str:
        return f"MilvusClient(endpoint={self.endpoint!r})"

    def list_refresh_jobs(self, database: str, collection: str = "") -> list[RefreshJob]:
        """Every refresh job of ``database`` (of one collection if given), newest first."""
        body: dict[str, Any] = {"dbName": database}
        if collection:
            body["collectionName"] = collection
        return self.call(REFRESH_LIST, body, _read_refresh_list)

    def list_import_jobs(self, database: str, collection: str = "") -> list[ImportJob]:
        """Every import job of ``database``, following pages on the Zilliz Cloud control plane."""
        body: dict[str, Any] = {"dbName": database}
        if collection:
            body["collectionName"] = collection
        jobs, paging = self.call(IMPORT_LIST, body, _read_import_page)
        if paging is not None:
            current, pages, page_size = paging
            for page in range(current + 1, pages + 1):
                more, _ = self.call(
                    IMPORT_LIST,
                    {**body, "pageSize": page_size, "currentPage": page},
                    _read_import_page,
                )
                jobs.extend(more)
        return jobs

    def describe_refresh_job(self, job_id: int) -> RefreshJob:
        return self.call(REFRESH_DESCRIBE, {"jobId": job_id}, _read_refresh_job)

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

    def describe_import_job(self, job_id: str) -> dict[str, Any]:
        """The raw import job detail object (rows, sizes, RFC 3339 times, per-file details)."""
        return self.call(IMPORT_DESCRIBE, {"jobId": str(job_id)}, _read_object)

    def import_job_details(self, job_id: str) -> ImportJobDetails:
        """Rows, bytes and times of one import job (``import/describe``), typed."""
        return self.call(IMPORT_DESCRIBE, {"jobId": str(job_id)}, _read_import_details)

    def call(self, api: str, body: dict[str, Any], read: Callable[[Any], T] = _identity) -> T:
        """POST ``body`` to ``api``, check the envelope and return ``read(data)``.

        Reading is part of the call, so an answer of the wrong shape is counted as a failed
        request (``bad_response``), not as a success. Raises ``ApiError`` for every failure.
        """
        self._gate(api)
        started = self._clock()
        outcome = "internal"  # anything but an answer or an ApiError is a bug, not a success
        try:
            result = read(self._exchange(api, body))
            outcome = "success"
            return result
        except ApiError as error:
            outcome = error.reason
            error.message = redact(error.message, self._token)
            raise
        finally:
            self._observe(RequestRecord(api=api, outcome=outcome, seconds=self._clock() - started))

    def _exchange(self, api: str, body: dict[str, Any]) -> Any:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Request-Timeout": str(max(1, math.ceil(self.timeout))),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        deadline = self._clock() + self.timeout
        try:
            with self._session.post(
                self.endpoint + API_PREFIX + api,
                data=json.dumps(body),
                headers=headers,
                timeout=(min(self.timeout, 5.0), self.timeout),
                stream=True,
                allow_redirects=False,
                verify=self._verify,
            ) as response:
                status = response.status_code
                if status in (401, 403):
                    raise ApiError("auth", f"HTTP {status}: the token was refused")
                if status == 429:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise ApiError("rate_limited", "HTTP 429 Too Many Requests", retry_after)
                if status != 200:
                    raise ApiError(
                        f"http_{status}" if 100 <= status <= 599 else "http_other", f"HTTP {status}"
                    )
                payload = self._read_body(response, deadline)
        except requests.exceptions.Timeout:
            raise ApiError("timeout", f"no answer within {self.timeout:g}s") from None
        except requests.exceptions.SSLError as error:
            raise ApiError("tls", _first_line(error)) from None
        except requests.exceptions.ConnectionError as error:
            if "Read timed out" in str(error):
                raise ApiError("timeout", f"no answer within {self.timeout:g}s") from None
            raise ApiError("connect", _first_line(error)) from None
        except requests.exceptions.RequestException as error:
            raise ApiError("connect", _first_line(error)) from None
        return _unwrap(payload)

    def _read_body(self, response: requests.Response, deadline: float) -> Any:
        """Read at most ``max_response_bytes`` before ``deadline``, then decode JSON."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=64 * 1024):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise ApiError("too_large", f"answer larger than {self._max_response_bytes} bytes")
            if self._clock() > deadline:
                raise ApiError("timeout", f"answer not complete within {self.timeout:g}s")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            looks_like = "HTML" if raw.lstrip()[:1] == b"<" else "not JSON"
            raise ApiError("bad_json", f"answer is {looks_like} ({len(raw)} bytes)") from None


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


def _read_refresh_list(data: Any) -> list[RefreshJob]:
    return [_parse(parse_refresh_job, record) for record in _records(data)]


def _read_refresh_job(data: Any) -> RefreshJob:
    if not isinstance(data, dict):
        raise ApiError("bad_response", "describe answer has no job object")
    return _parse(parse_refresh_job, data)


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


def _read_import_page(data: Any) -> tuple[list[ImportJob], tuple[int, int, int] | None]:
    """One page of import jobs, and (current page, page count, page size) when paged."""
    jobs = [_parse(parse_import_job, record) for record in _records(data)]
    if not isinstance(data, dict) or not {"count", "pageSize"} <= data.keys():
        return jobs, None
    try:
        count = int(data["count"])
        page_size = int(data["pageSize"])
        current = int(data.get("currentPage") or 1)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise ApiError("bad_response", "paging fields are not numbers") from None
    if page_size <= 0:
        return jobs, None
    pages = min(-(-count // page_size), MAX_IMPORT_PAGES)  # ceiling without a float to overflow
    # A current page below 1 would make the caller walk from there: read it as the first page.
    return jobs, (max(current, 1), pages, page_size)


def _parse(parser: Callable[[Any], Any], record: Any) -> Any:
    try:
        return parser(record)
    except RecordError as error:
        raise ApiError("bad_response", f"job record: {error}") from None


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
