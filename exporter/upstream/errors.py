"""The one failure of the job API client: ``ApiError``, whose bounded ``reason`` is safe as a
metric label, which reasons are temporary (worth a retry), and what went wrong below HTTP,
named by what happened (``transport_error``)."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from .resolver import ResolutionError

TEMPORARY_REASONS = frozenset(
    {"timeout", "server_timeout", "dns", "connect", "reset", "rate_limited", "too_large"}
)


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


def transport_error(error: BaseException, timeout: float) -> ApiError:
    """What went wrong below HTTP, named by what happened: ``tls``, ``dns`` (the name could not
    be resolved in time), ``connect`` (no connection was made), ``timeout``, ``bad_encoding``
    (a body its ``Content-Encoding`` cannot decode), ``bad_response`` (an answer that breaks
    HTTP's framing: two different ``Content-Length``s, endless 1xx answers), or ``reset`` (the
    connection broke before the answer was whole)."""
    message = first_line(error)
    causes = list(_causes(error))
    if isinstance(error, requests.exceptions.SSLError) or any(
        isinstance(cause, ssl.SSLError) for cause in causes
    ):
        return ApiError("tls", message)
    resolution = next((c for c in causes if isinstance(c, ResolutionError)), None)
    if resolution is not None:
        return ApiError("dns", first_line(resolution))
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


def first_line(value: Any) -> str:
    try:
        text = str(value)
    except (ValueError, RecursionError):  # an int over 4300 digits, or nesting too deep
        return f"a {type(value).__name__} that cannot be shown"
    return text.splitlines()[0] if text else ""
