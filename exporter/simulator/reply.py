"""What the simulator sends back, described as data so faults can rewrite it before it goes out.

The HTTP handler knows how to write any `Reply`: plain, delayed, stalled half-way, streamed in
chunks, or not at all (the socket is just closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .options import RateLimitStyle

JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
NO_CODE = -1


@dataclass(frozen=True)
class Reply:
    """An answer to send; `code` is the envelope code for the request log (-1 when none).

    `delay_seconds` waits before sending; `stall_after` sends that many body bytes, waits
    `stall_seconds`, then sends the rest; `chunks` streams a body of `content_length` bytes.
    """

    status: int
    body: bytes = b""
    code: int = NO_CODE
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    chunks: Callable[[], Iterable[bytes]] | None = None
    content_length: int = 0
    close_without_answer: bool = False


def json_reply(payload: dict[str, object], status: int = 200) -> Reply:
    code = payload.get("code")
    envelope_code = code if isinstance(code, int) else NO_CODE
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), envelope_code)


def error(code: int, message: str, status: int = 200) -> Reply:
    return json_reply({"code": code, "message": message}, status)


def success(data: dict[str, object], success_code: int) -> Reply:
    return json_reply({"code": success_code, "data": data})


def success_with_records(records_json: bytes, success_code: int, **fields: int) -> Reply:
    """A list answer around records that are already JSON, so they are never re-encoded."""
    extra = b"".join(f'"{name}":{value},'.encode() for name, value in fields.items())
    body = b'{"code":%d,"data":{%s"records":%s}}' % (success_code, extra, records_json)
    return Reply(200, body, success_code)


def rate_limited(style: RateLimitStyle, message: str, retry_after: int) -> Reply:
    """The three ways deployments say "slow down": HTTP 429, or HTTP 200 with code 1807 or 8."""
    if style == "http_429":
        reply = error(1807, message, status=429)
        return Reply(
            reply.status, reply.body, reply.code, headers=(("Retry-After", str(retry_after)),)
        )
    if style == "code_1807":
        return error(1807, message)
    return error(8, message)
