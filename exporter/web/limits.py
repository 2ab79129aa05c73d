"""What keeps hostile clients from knocking the exporter's HTTP server over.

Python's ``http.server`` trusts its clients, and each trust was measured to hurt: a request that
is never finished holds a thread and a descriptor for ever (300 of them did, and at the
descriptor limit the accept loop spun at 100 % CPU); ``http.client`` keeps up to 100 header
lines of 64 KiB per request, so 40 parked connections grew the process by 1.4 GB; a listen
backlog of 5 made every sixth connection of a burst wait a second for a SYN retransmit; and a
body the server does not read is taken for the next request. ``GuardedHTTPServer`` and
``GuardedRequestHandler`` put a limit on each, with the values in one place, ``ServerLimits``.

A connection goes through these phases. While the server waits for the client the connection
is *waiting*, and may be closed to make room when the cap is reached; while it answers it is
*busy*::

    accept -> TLS handshake -> request head (+ small body) -> answer -> idle -> request head ...
              waiting          waiting                       busy      waiting  waiting
              tls_handshake_   header_timeout                response_ idle_    header_timeout
              timeout                                        timeout   timeout

Each phase has a total deadline, kept by one ``Watchdog`` thread that shuts the socket down when
it passes, so a client trickling one byte a second gains nothing.
"""

from __future__ import annotations

import contextlib
import errno
import io
import resource
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import structlog

from ..guards.watchdog import Watch, Watchdog

log = structlog.get_logger("exporter.web.server")

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_FIRST_ACCEPT_BACKOFF_SECONDS = 0.005
_SPARE_DESCRIPTORS = 32  # beside the connections: the listening socket, the poller's, logs
_STDLIB_MAX_REQUEST_LINE = 65536  # http.server's own 414 threshold


@dataclass(frozen=True)
class ServerLimits:
    """Every limit of the exporter's HTTP server; each value says why it is what it is."""

    max_connections: int = 64
    """Connections served at once (``--web.max-connections``). Each costs a thread, a descriptor
    and at most ``max_header_bytes`` of request, so 64 stay within a few MB of a 256 Mi pod, far
    above what scraping needs (one kept-alive connection per Prometheus, the probes, a curl). At
    the cap the connection that has waited longest for its client (idle, or still sending its
    request) is closed to make room; only when every one is busy answering is the newcomer
    turned away, with a 503 written by the accepting thread (TLS: closed, as answering would
    need a handshake)."""

    backlog: int = 128
    """Connections the kernel queues while the accept loop is busy (``listen()``'s backlog). The
    stdlib's 5 made every sixth connection of a burst wait 1 s for a SYN retransmit; 128 is the
    classic SOMAXCONN, and the kernel caps it at ``net.core.somaxconn``."""

    header_timeout: float = 10.0
    """Total seconds to receive a request line, its headers and its small body, counted from the
    first byte (on a new connection, from the end of the TLS handshake). A scraper sends its few
    hundred bytes at once; a client trickling one byte a second is cut here all the same."""

    idle_timeout: float = 90.0
    """Seconds a kept-alive connection may wait for its next request: longer than the usual
    15-60 s scrape intervals, so Prometheus keeps reusing its connection. Idle connections are
    the first closed when the cap is reached, so they never lock anyone out."""

    tls_handshake_timeout: float = 10.0
    """Total seconds for a TLS handshake, which takes a round trip or two. (It used to be 10 s per
    read, which a trickle stretches for ever.)"""

    response_timeout: float = 60.0
    """Total seconds to write an answer. The largest, /metrics at 100k jobs, is 104 MB plain
    (3.5 MB gzipped, as Prometheus asks for it): about 9 s at 100 Mbit/s. A client that stops
    reading is cut here instead of holding a thread for ever."""

    max_header_bytes: int = 64 * 1024
    """Request line and header lines together. A scrape's head is a few hundred bytes and basic
    auth is capped at 4 KiB; http.client alone would take 100 lines of 64 KiB. Over it: 431 (414
    when the request line alone is over) and the connection is closed."""

    max_discarded_body_bytes: int = 64 * 1024
    """No route reads a body. One up to this size is read and dropped before routing, so its
    bytes are never taken for the next request and the connection stays usable; a larger one is
    not read at all and the connection is closed after the answer."""

    retry_after_seconds: int = 1
    """``Retry-After`` on the 503 above the cap: the busy answers take milliseconds."""

    accept_backoff_max: float = 1.0
    """When ``accept()`` fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
    ENOMEM), the loop waits 5 ms, doubling up to this, as Go's net/http does, instead of
    spinning on a listening socket that stays readable."""

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"{field.name} must be positive")


class _ThrottledLog:
    """One line per event per second at most, counting the lines left out: a flood of hostile
    connections must not become a flood of logs."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def info(self, event: str, **context: object) -> None:
        if self._due(event, context):
            log.info(event, **context)

    def warning(self, event: str, **context: object) -> None:
        if self._due(event, context):
            log.warning(event, **context)

    def _due(self, event: str, context: dict[str, object]) -> bool:
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(event, (float("-inf"), 0))
            if now - last < self._interval:
                self._last[event] = (last, suppressed + 1)
                return False
            self._last[event] = (now, 0)
        if suppressed:
            context["suppressed"] = suppressed
        return True


class GuardedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP(S) server with a connection cap, deadlines, a real backlog and accept
    back-off. With TLS, each handshake runs in its connection's thread, so a silent client never
    blocks ``accept()``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[GuardedRequestHandler],
        limits: ServerLimits,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.limits = limits
        self.tls_context = tls_context
        self.request_queue_size = limits.backlog
        self.watchdog = Watchdog(name="http-deadlines")
        self.throttled_log = _ThrottledLog()
        self._lock = threading.Lock()
        self._active = 0
        self._waiting: dict[Watch, None] = {}  # insertion order: the longest-waiting first
        self._accept_backoff = 0.0
        self._stopping = threading.Event()
        self._drain = bytearray(65536)  # the accepting thread's scratch buffer for shed requests
        body = b"too many connections; retry later\n"
        self._shed_answer = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nRetry-After: %d\r\nCache-Control: no-store\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), limits.retry_after_seconds, body)
        )
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler_class)
        _warn_if_descriptors_run_out(limits.max_connections)

    @property
    def active_connections(self) -> int:
        """Connections being served now (waiting or busy)."""
        with self._lock:
            return self._active

    # Accepting: back-off, the cap, shedding

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stopping.clear()
        super().serve_forever(poll_interval)

    def shutdown(self) -> None:
        self._stopping.set()  # cut an accept back-off short
        super().shutdown()

    def server_close(self) -> None:
        self.watchdog.stop()  # every connection still open is shut down now
        super().server_close()

    def get_request(self) -> tuple[Any, Any]:
        try:
            connection = super().get_request()
        except OSError as error:
            if error.errno in _OUT_OF_RESOURCES:
                self._accept_backoff = min(
                    max(2 * self._accept_backoff, _FIRST_ACCEPT_BACKOFF_SECONDS),
                    self.limits.accept_backoff_max,
                )
                self.throttled_log.info(
                    "http.accept_failed",
                    error=errno.errorcode.get(error.errno or 0, str(error.errno)),
                    retry_in_ms=round(self._accept_backoff * 1000),
                    active=self.active_connections,
                )
                self._stopping.wait(self._accept_backoff)
            raise
        self._accept_backoff = 0.0
        return connection

    def process_request(self, request: Any, client_address: Any) -> None:
        admitted, evicted = self._admit()
        if evicted:
            self.throttled_log.info(
                "http.connection_evicted", client=_host(client_address), reason="at the cap"
            )
        if not admitted:
            self._shed(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._leave()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._leave()

    def _admit(self) -> tuple[bool, bool]:
        """(admitted, evicted): a slot for a new connection, closing the longest-waiting
        connection at the cap. Nothing is logged under the lock: a blocked log must not block
        every connection."""
        with self._lock:
            evicted = False
            if self._active >= self.limits.max_connections:
                evicted = self._evict_longest_waiting_locked()
                if not evicted:
                    return False, False
            self._active += 1
            return True, evicted

    def _evict_longest_waiting_locked(self) -> bool:
        while self._waiting:
            watch = next(iter(self._waiting))
            del self._waiting[watch]
            watch.fire()
            if watch.fired:  # else it was released a moment ago: it is busy now
                return True
        return False

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    def _shed(self, request: socket.socket, client_address: Any) -> None:
        """503 from the accepting thread, without blocking it and without a thread."""
        self.throttled_log.info(
            "http.connection_shed", client=_host(client_address), active=self.active_connections
        )
        if self.tls_context is None:
            with contextlib.suppress(OSError):
                request.setblocking(False)
                # What the client already sent is read first: closing on unread bytes would
                # reset the connection, and the client could lose the 503 before reading it.
                with contextlib.suppress(BlockingIOError):
                    request.recv_into(self._drain)
                request.send(self._shed_answer)
        self.shutdown_request(request)

    # Per connection, in its own thread

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        client = _host(client_address)
        try:
            # The handshake is done apart, on the TLS socket: wrap_socket detaches the plain
            # socket, so a deadline on that one would shut nothing down.
            connection = self.tls_context.wrap_socket(
                request, server_side=True, do_handshake_on_connect=False
            )
        except OSError as error:
            self.throttled_log.info(
                "http.tls_handshake_failed", client=client, error=type(error).__name__
            )
            return
        with connection:
            failure = ""
            with self.waiting_for_client(connection, self.limits.tls_handshake_timeout) as watch:
                try:
                    connection.do_handshake()
                except (ssl.SSLError, OSError) as error:
                    failure = type(error).__name__
            if watch.fired:
                if _timed_out(watch):
                    self.throttled_log.info("http.tls_handshake_timeout", client=client)
            elif failure:
                self.throttled_log.info("http.tls_handshake_failed", client=client, error=failure)
            else:
                super().finish_request(connection, client_address)

    @contextlib.contextmanager
    def waiting_for_client(self, sock: socket.socket, seconds: float) -> Iterator[Watch]:
        """A deadline for a phase in which the client owes us bytes; the connection may be
        evicted meanwhile (its watch then fires early)."""
        watch = self.watchdog.watch(time.monotonic() + seconds)
        with self._lock:
            self._waiting[watch] = None
        watch.attach(sock)
        try:
            yield watch
        finally:
            watch.release()
            with self._lock:
                self._waiting.pop(watch, None)

    @contextlib.contextmanager
    def busy(self, sock: socket.socket, seconds: float) -> Iterator[Watch]:
        """A deadline for a phase in which the server answers; never evicted."""
        watch = self.watchdog.watch(time.monotonic() + seconds)
        watch.attach(sock)
        try:
            yield watch
        finally:
            watch.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that breaks the connection (or a refused client certificate) is not an error
        worth a traceback on stderr."""
        error = sys.exc_info()[1]
        self.throttled_log.info(
            "http.connection_error",
            client=_host(client_address),
            error=type(error).__name__ if error else "",
        )


class _HeadTooLarge(Exception):
    """The request line and headers went over ``max_header_bytes``."""


class _HeadReader:
    """``readline`` over the connection's buffered reader, with one byte budget for the whole
    head: request line and every header line. ``http.client.parse_headers`` reads through it."""

    __slots__ = ("_source", "remaining")

    def __init__(self, source: io.BufferedIOBase, budget: int) -> None:
        self._source = source
        self.remaining = budget

    def readline(self, limit: int = -1) -> bytes:
        allowed = self.remaining + 1  # one byte more tells "exactly at the limit" from "over it"
        line = self._source.readline(allowed if limit < 0 else min(limit, allowed))
        self.remaining -= len(line)
        if self.remaining < 0:
            raise _HeadTooLarge
        return line


class GuardedRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with every read and write under a deadline, a bounded head, and request bodies
    read (small) or never trusted (large, chunked, ambiguous) before any route runs."""

    server: GuardedHTTPServer
    protocol_version = "HTTP/1.1"
    _requests_started = 0
    _final_response = False
    _connection_announced = False

    def handle_one_request(self) -> None:
        server, limits = self.server, self.server.limits
        self.close_connection = True
        if self._requests_started and not self._wait_for_next_request():
            return
        self._requests_started += 1
        with server.waiting_for_client(self.connection, limits.header_timeout) as watch:
            ready = self._read_request()
        if watch.fired:
            self.close_connection = True
            if _timed_out(watch):
                server.throttled_log.info("http.header_timeout", client=self.client_address[0])
            return
        if not ready:
            return
        with server.busy(self.connection, limits.response_timeout) as watch:
            try:
                method = getattr(self, "do_" + self.command, None)
                if method is None:
                    self.send_error(
                        HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})"
                    )
                else:
                    method()
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                if not watch.fired:
                    raise
        if watch.fired:
            self.close_connection = True
            server.throttled_log.info(
                "http.response_timeout", client=self.client_address[0], path=self.path[:200]
            )

    def _wait_for_next_request(self) -> bool:
        """Wait (up to the idle timeout) for the first byte of the next request."""
        with self.server.waiting_for_client(
            self.connection, self.server.limits.idle_timeout
        ) as watch:
            try:
                return bool(self.rfile.peek(1)) and not watch.fired  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return False

    def _read_request(self) -> bool:
        """Read and parse the head and read a small body; False if there is nothing to route
        (an error answer may have been sent)."""
        head = _HeadReader(self.rfile, self.server.limits.max_header_bytes)
        try:
            self.raw_requestline = b""
            try:
                self.raw_requestline = head.readline(_STDLIB_MAX_REQUEST_LINE + 1)
                too_long = len(self.raw_requestline) > _STDLIB_MAX_REQUEST_LINE
            except _HeadTooLarge:
                too_long = True
            if too_long:
                self.requestline, self.request_version, self.command = "", "", ""
                self._refuse(
                    HTTPStatus.REQUEST_URI_TOO_LONG,
                    "http.request_line_too_long",
                    f"the request line is over {self.server.limits.max_header_bytes} bytes",
                )
                return False
            if not self.raw_requestline:
                return False  # the client closed the connection
            # parse_request reads the headers from self.rfile: through the budget, for once.
            buffered, self.rfile = self.rfile, cast(io.BufferedIOBase, head)
            try:
                if not self.parse_request():
                    return False
            except _HeadTooLarge:
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "http.headers_too_large",
                    f"the request headers are over {self.server.limits.max_header_bytes} bytes",
                )
                return False
            finally:
                self.rfile = buffered
            return self._read_small_body()
        except OSError:
            self.close_connection = True
            return False

    def _read_small_body(self) -> bool:
        """Read and drop a small body; refuse what cannot be framed safely.

        A body left unread would be parsed as the next request on a kept-alive connection
        (behind a proxy that reuses connections, a request smuggled by someone else). Any
        ``Transfer-Encoding`` (no route takes a streamed body) and any Content-Length that is not
        one plain number are answered 400 and the connection closed, as RFC 9112 requires when
        the framing is in doubt.
        """
        if "Transfer-Encoding" in self.headers:
            self._refuse(
                HTTPStatus.BAD_REQUEST,
                "http.transfer_encoding_refused",
                "Transfer-Encoding is not supported; send a Content-Length",
            )
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return True
        text = lengths[0].strip(" \t")
        if len(lengths) > 1 or not (text.isascii() and text.isdigit()):
            self._refuse(
                HTTPStatus.BAD_REQUEST,
                "http.bad_content_length",
                "Content-Length must be one decimal number",
            )
            return False
        length = int(text)
        if length > self.server.limits.max_discarded_body_bytes:
            self.close_connection = True  # the answer says so; the body is never read
        elif length and len(self.rfile.read(length)) < length:
            self.close_connection = True  # the client went away (or ran out of time)
            return False
        return True

    def _refuse(self, status: HTTPStatus, event: str, explain: str) -> None:
        """Answer an error and close: what follows on this connection cannot be trusted."""
        self.server.throttled_log.info(event, client=self.client_address[0])
        self.close_connection = True
        self.send_error(status, explain=explain)

    # Every final answer on a connection about to close says so.

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._final_response = code >= 200
        self._connection_announced = False
        super().send_response_only(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection":
            self._connection_announced = True
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if self.close_connection and self._final_response and not self._connection_announced:
            self.send_header("Connection", "close")
        super().end_headers()


def _warn_if_descriptors_run_out(max_connections: int) -> None:
    """Say so at start-up if the cap cannot be reached before the descriptor limit: accept()
    would then fail (and back off) before any connection is shed or evicted."""
    soft_limit, _hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit != resource.RLIM_INFINITY and max_connections + _SPARE_DESCRIPTORS > soft_limit:
        log.warning(
            "http.max_connections_above_fd_limit",
            max_connections=max_connections,
            fd_limit=soft_limit,
            hint="raise the limit (ulimit -n) or lower --web.max-connections",
        )


def _timed_out(watch: Watch) -> bool:
    """A watch fired at its deadline, not early because its connection was evicted."""
    return watch.fired and time.monotonic() >= watch.deadline


def _host(client_address: Any) -> str:
    return str(client_address[0]) if client_address else ""
