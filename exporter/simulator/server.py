"""The HTTP transport: a ThreadingHTTPServer that writes whatever `Reply` the simulator chose.

Waits (latency, timeouts, stalls) use an Event, so `shutdown()` returns at once even while a
handler is pretending to hang for thirty seconds.

Arrivals are stamped with the kernel's receive time of the request line where the platform gives
it (Linux ``SO_TIMESTAMP``) and the simulator runs on the real clock, not with the time this
process got around to reading it: on a busy machine a handler thread may wait a quarter of a
second for the CPU or the GIL, and stamping then bunches arrivals that came in evenly, which
would count as a burst against the rate limit that the client never sent. A real server's
gateway counts them as they reach it.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Protocol
from urllib.parse import urlsplit

from .reply import Reply


class Simulator(Protocol):
    """What the transport asks of the simulator (``core.Simulator``): the time, and the reply to
    one request. The server only moves bytes; it depends on this and nothing else."""

    def now(self) -> float: ...

    @property
    def on_real_clock(self) -> bool: ...

    def handle(
        self,
        method: str,
        path: str,
        authorization: str | None,
        body: bytes,
        arrival: float | None = ...,
        database_header: str | None = ...,
        received_ago: float = ...,
    ) -> Reply: ...


IDLE_CONNECTION_TIMEOUT_SECONDS = 120.0
_SO_TIMESTAMP = 29 if sys.platform == "linux" else None  # not in the socket module
_TIMEVAL = struct.Struct("@ll")  # SCM_TIMESTAMP's payload: seconds, microseconds
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMEVAL.size) if hasattr(socket, "CMSG_SPACE") else 0


def _stamp_receipts(sock: socket.socket) -> bool:
    """Ask the kernel for receive times on ``sock`` (accepted sockets inherit it); False where
    it cannot."""
    if _SO_TIMESTAMP is None or not _ANCILLARY_BYTES:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
    except OSError:
        return False
    return True


class _ReceiptStampedReader(io.RawIOBase):
    """The request side of a connection, as ``makefile("rb")`` reads it, that also keeps the
    kernel's receive time of the newest bytes read (epoch seconds, None before any)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.received_at: float | None = None

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def readinto(self, buffer: memoryview) -> int | None:  # type: ignore[override]
        try:
            size, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], _ANCILLARY_BYTES)
        except BlockingIOError:
            return None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP and len(data) >= _TIMEVAL.size:
                seconds, microseconds = _TIMEVAL.unpack_from(data)
                self.received_at = seconds + microseconds / 1e6
        return size


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.simulator = simulator
        self.stopping = threading.Event()
        super().__init__(address, _Handler)
        # Receive times are on the real clock: a simulator on a clock of its own (a test's)
        # stamps as it reads, as before.
        self.stamps_receipts = simulator.on_real_clock and _stamp_receipts(self.socket)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "milvus-jobs-simulator"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT_SECONDS
    # Like Milvus (a Go server): no Nagle delay between the headers and the body of an answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: benchmarks send thousands of requests and tests read the request log instead."""

    def setup(self) -> None:
        super().setup()
        self.receipts: _ReceiptStampedReader | None = None
        if self.server.stamps_receipts:
            self.rfile.close()
            self.receipts = _ReceiptStampedReader(self.connection)
            self.rfile = io.BufferedReader(self.receipts)

    def parse_request(self) -> bool:
        # The request line is in: stamp before the rest, and note how long ago it reached us.
        self.arrival = self.server.simulator.now()
        received_at = self.receipts.received_at if self.receipts else None
        self.received_ago = 0.0 if received_at is None else max(0.0, time.time() - received_at)
        return super().parse_request()

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = urlsplit(self.path).path
        answer = self.server.simulator.handle(
            method,
            path,
            self.headers.get("Authorization"),
            body,
            self.arrival,
            database_header=self.headers.get("DB-Name"),
            received_ago=self.received_ago,
        )
        try:
            self._write(answer)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write(self, answer: Reply) -> None:
        stopping = self.server.stopping
        if answer.delay_seconds > 0 and stopping.wait(answer.delay_seconds):
            answer = Reply(0, close_without_answer=True)
        if answer.close_without_answer:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        length = answer.content_length if answer.chunks else len(answer.body)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if answer.chunks is not None:
            for chunk in answer.chunks():
                self.wfile.write(chunk)
        elif answer.stall_after is not None:
            self.wfile.write(answer.body[: answer.stall_after])
            self.wfile.flush()
            if stopping.wait(answer.stall_seconds):
                self.close_connection = True
                return
            self.wfile.write(answer.body[answer.stall_after :])
        else:
            self.wfile.write(answer.body)


class SimulatorServer:
    """A running simulator endpoint; stop it with `shutdown()` or by leaving a `with` block."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"

    def shutdown(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def serve(simulator: Simulator, host: str, port: int) -> SimulatorServer:
    server = _Server((host, port), simulator)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"simulator-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return SimulatorServer(server, thread)
