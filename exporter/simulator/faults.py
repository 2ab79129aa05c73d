"""Injected trouble: each fault kind is one way an upstream has been seen to misbehave.

A fault either replaces the answer (errors, HTML pages, closed sockets) or reshapes the real one
(cut in half, wrong types, slow, stalled). Faults are keyed by (database, path); None matches any.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from . import reply
from .fields import database_not_found
from .options import RateLimitStyle
from .reply import HTML, NO_CODE, TEXT, Reply

FAULT_KINDS = (
    "http_500",
    "http_503",
    "http_502_html",
    "html_200",
    "truncated_json",
    "wrong_types",
    "unknown_state",
    "timeout",
    "request_timeout",
    "rate_limited",
    "auth",
    "db_not_found",
    "huge_body",
    "hang_mid_body",
    "connection_close",
)
CODE_REQUEST_TIMEOUT = 10001
API_PREFIX = "/v2/vectordb/jobs/"
V2_PREFIX = "/v2/vectordb/"
CHUNK_BYTES = 64 * 1024

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    b'<body><form action="/login" method="post"><input name="user"></form></body></html>\n'
)


@dataclass(frozen=True)
class Fault:
    """One kind of misbehaviour, e.g. `Fault("timeout", seconds=30)`.

    `seconds` is how long `timeout` and `hang_mid_body` wait; `size_bytes` is the length of a
    `huge_body`; `retry_after` is the Retry-After of a `rate_limited` answer.
    """

    kind: str
    seconds: float = 30.0
    size_bytes: int = 50 * 1024 * 1024
    retry_after: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


def normalize_path(path: str | None, known: tuple[str, ...]) -> str | None:
    """Accept "import/list" for "/v2/vectordb/jobs/import/list", "databases/list" for
    "/v2/vectordb/databases/list"."""
    if path is None:
        return None
    candidates = [path] if path.startswith("/") else [API_PREFIX + path, V2_PREFIX + path]
    for full in candidates:
        if full in known:
            return full
    raise ValueError(f"unknown API path {path!r}")


class FaultTable:
    """Active faults; the most specific (database, path) entry wins. `paths` are the API's."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self._paths = paths
        self._lock = threading.Lock()
        self._faults: dict[tuple[str | None, str | None], Fault] = {}

    def set(self, fault: Fault, database: str | None = None, path: str | None = None) -> None:
        key = (database, normalize_path(path, self._paths))
        with self._lock:
            self._faults[key] = fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def match(self, database: str | None, path: str) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            for key in ((database, path), (database, None), (None, path), (None, None)):
                fault = self._faults.get(key)
                if fault is not None:
                    return fault
            return None


GENERIC_RECORD = (
    b'{"jobId":"448761313698322011","collectionName":"books","state":"Completed","progress":100}'
)
"""What `huge_body` repeats on a path of no job kind (the database and collection lists)."""


@dataclass(frozen=True)
class FaultContext:
    """The request a fault answers: `sample_record` and `unknown_state` come from its kind."""

    database: str | None
    path: str
    rate_limit_style: RateLimitStyle
    rate_limit_message: str
    sample_record: bytes = GENERIC_RECORD
    unknown_state: str = "Paused"


RESHAPING_KINDS = ("truncated_json", "wrong_types", "unknown_state", "timeout", "hang_mid_body")


def is_replacing(fault: Fault) -> bool:
    """Whether the fault answers instead of the server (so the request has no effect)."""
    return fault.kind not in RESHAPING_KINDS


def replacement(fault: Fault, context: FaultContext) -> Reply:
    kind = fault.kind
    if kind == "http_500":
        return reply.error(65535, "internal server error: injected fault", status=500)
    if kind == "http_503":
        body = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
        return Reply(503, body, NO_CODE, TEXT)
    if kind == "http_502_html":
        return Reply(502, NGINX_502, NO_CODE, HTML)
    if kind == "html_200":
        return Reply(200, LOGIN_PAGE, NO_CODE, HTML)
    if kind == "rate_limited":
        return reply.rate_limited(
            context.rate_limit_style, context.rate_limit_message, fault.retry_after
        )
    if kind == "auth":
        return reply.error(1800, "user hasn't authenticated", status=401)
    if kind == "request_timeout":  # the server gave up at the request's Request-Timeout
        return reply.error(CODE_REQUEST_TIMEOUT, "request timeout", status=408)
    if kind == "db_not_found":
        return database_not_found(context.database or "default")
    if kind == "huge_body":
        return _huge_body(fault.size_bytes, context.sample_record)
    return Reply(0, close_without_answer=True)


def reshape(fault: Fault, answer: Reply, context: FaultContext) -> Reply:
    """Apply a fault that keeps the real answer but damages or delays it."""
    kind = fault.kind
    if kind == "truncated_json":
        return replace(answer, body=answer.body[: len(answer.body) // 2], code=NO_CODE)
    if kind == "timeout":
        return replace(answer, delay_seconds=fault.seconds)
    if kind == "hang_mid_body":
        return replace(answer, stall_after=len(answer.body) // 2, stall_seconds=fault.seconds)
    payload = json.loads(answer.body)
    data = payload.get("data")
    if kind == "wrong_types":
        _break_types(data)
    else:
        _set_unknown_state(data, context.unknown_state)
    return replace(answer, body=json.dumps(payload, separators=(",", ":")).encode())


def _records_of(data: object) -> list[dict[str, object]]:
    if not isinstance(data, dict):
        return []
    records = data.get("records")
    if isinstance(records, list):
        return [record for record in records if isinstance(record, dict)]
    return [data]


_TYPE_BREAKERS: tuple[tuple[str, Callable[[object], object]], ...] = (
    ("progress", lambda value: {"value": value}),
    ("state", lambda value: 3),
    ("jobId", lambda value: [value]),
    ("progress", lambda value: f"{value}%"),
)


def _break_types(data: object) -> None:
    """Rotate through the kinds of type confusion a sloppy proxy or server version produces.

    A lone record (describe, refresh) gets every breakage at once; list records get one each.
    """
    records = _records_of(data)
    if isinstance(data, dict) and isinstance(data.get("records"), list) and not records:
        data["records"] = [{"jobId": [1], "state": 3, "progress": {"value": 1}}]
        return
    if len(records) == 1:
        for name, breaker in _TYPE_BREAKERS[:3]:
            if name in records[0]:
                records[0][name] = breaker(records[0][name])
        return
    for index, record in enumerate(records):
        name, breaker = _TYPE_BREAKERS[index % len(_TYPE_BREAKERS)]
        if name in record:
            record[name] = breaker(record[name])


def _set_unknown_state(data: object, state: str) -> None:
    for record in _records_of(data):
        if "state" in record:
            record["state"] = state


def _huge_body(size_bytes: int, record: bytes) -> Reply:
    """A syntactically valid list answer of exactly `size_bytes`, produced chunk by chunk."""
    prefix = b'{"code":0,"data":{"records":['
    suffix = b"]}}"
    separated = b"," + record
    room = size_bytes - len(prefix) - len(suffix) - len(record)
    extra_records = max(0, room // len(separated))
    padding = max(0, room - extra_records * len(separated))
    total = len(prefix) + len(record) + extra_records * len(separated) + padding + len(suffix)

    def chunks() -> Iterator[bytes]:
        yield prefix + record
        per_chunk = max(1, CHUNK_BYTES // len(separated))
        block = separated * per_chunk
        remaining = extra_records
        while remaining >= per_chunk:
            yield block
            remaining -= per_chunk
        if remaining:
            yield separated * remaining
        yield b" " * padding + suffix

    return Reply(200, code=0, chunks=chunks, content_length=total)
