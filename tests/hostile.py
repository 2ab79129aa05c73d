"""A small hostile upstream on 127.0.0.1: answers the job API the way a broken network, a
misbehaving proxy or a buggy server would.

Each ``Behaviour`` is one way of misbehaving; the server picks it per request from the request's
``dbName``, so one server can be a healthy database and a hostile one at once. Every loop is
bounded by ``stop()``: the server never outlives its test.
"""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Behaviour = Callable[["Exchange"], None]

NOW_MS = int(time.time() * 1000)


@dataclass
class Exchange:
    """One request as received, and the socket to answer it on."""

    sock: socket.socket
    path: str
    headers: dict[str, str]
    body: dict[str, object]
    stop: threading.Event

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, payload: object, status: str = "200 OK", extra: str = "") -> None:
        """Answer as a real server would, ``Date`` included (the server's clock)."""
        body = json.dumps(payload).encode()
        date = email.utils.formatdate(usegmt=True)
        self.send(
            f"HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def trickle(self, data: bytes, every: float) -> None:
        """One byte at a time, ``every`` seconds apart, until done or the client goes away."""
        for byte in data:
            if self.stop.wait(every):
                return
            try:
                self.sock.send(bytes([byte]))
            except OSError:
                return


def refresh_record(
    job_id: int, collection: str, state: str = "RefreshCompleted", **fields: object
) -> dict[str, object]:
    record: dict[str, object] = {
        "jobId": job_id,
        "collectionName": collection,
        "state": state,
        "progress": 100 if state == "RefreshCompleted" else 40,
        "startTime": NOW_MS - 60_000,
        "endTime": NOW_MS - 30_000 if state in ("RefreshCompleted", "RefreshFailed") else 0,
    }
    record.update(fields)
    return record


def healthy(exchange: Exchange) -> None:
    """A well-behaved server: one completed refresh, one running import."""
    if exchange.path.endswith("/external_collection/list"):
        exchange.answer({"code": 0, "data": {"records": [refresh_record(1, "ext_ok")]}})
    elif exchange.path.endswith("/import/describe"):
        exchange.answer({"code": 2100, "message": "import job does not exist"})
    else:
        exchange.answer(
            {
                "code": 0,
                "data": {
                    "records": [
                        {"jobId": "5", "collectionName": "c", "state": "Completed", "progress": 100}
                    ]
                },
            }
        )


def trickle_headers(every: float) -> Behaviour:
    def behave(exchange: Exchange) -> None:
        exchange.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 50, every)

    return behave


def trickle_body(every: float) -> Behaviour:
    def behave(exchange: Exchange) -> None:
        body = json.dumps({"code": 0, "data": {"records": []}}).encode() * 20
        exchange.send(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\n\r\n".encode()
        )
        exchange.trickle(body, every)

    return behave


def too_many_requests(retry_after: int) -> Behaviour:
    def behave(exchange: Exchange) -> None:
        exchange.answer(
            {"code": 429, "message": "slow down"},
            status="429 Too Many Requests",
            extra=f"Retry-After: {retry_after}\r\n",
        )

    return behave


def endless_pages(exchange: Exchange) -> None:
    exchange.answer(
        {
            "code": 0,
            "data": {
                "records": [{"jobId": "9", "collectionName": "c", "state": "Pending"}],
                "count": 1_000_000_000,
                "currentPage": exchange.body.get("currentPage", 1),
                "pageSize": 1,
            },
        }
    )


def raw_json(text: str) -> Behaviour:
    """Answer exactly this JSON text (for escapes ``json.dumps`` would never write)."""

    def behave(exchange: Exchange) -> None:
        body = text.encode()
        exchange.send(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return behave


def raw_answer(head: bytes, body: bytes) -> Behaviour:
    """Send exactly these status line and headers (CRLF-separated, no blank line) and body."""

    def behave(exchange: Exchange) -> None:
        exchange.send(head + b"\r\nConnection: close\r\n\r\n" + body)

    return behave


def _empty_list() -> bytes:
    return json.dumps({"code": 0, "data": {"records": [refresh_record(1, "ext_ok")]}}).encode()


def bad_gzip(exchange: Exchange) -> None:
    """``Content-Encoding: gzip`` on a body that is not gzip."""
    body = _empty_list()
    raw_answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d" % len(body), body
    )(exchange)


def two_content_lengths(exchange: Exchange) -> None:
    """Two ``Content-Length`` headers that disagree: the framing of the answer is unknowable."""
    body = _empty_list()
    raw_answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Length: 5" % len(body), body)(
        exchange
    )


def informational_first(count: int, status: bytes = b"103 Early Hints") -> Behaviour:
    """``count`` informational answers (``103 Early Hints`` by default), then a healthy one."""

    def behave(exchange: Exchange) -> None:
        hint = b"HTTP/1.1 " + status + b"\r\nLink: </style.css>; rel=preload\r\n\r\n"
        body = _empty_list()
        exchange.send(hint * count)
        raw_answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d" % len(body), body)(exchange)

    return behave


def records(*items: object) -> Behaviour:
    def behave(exchange: Exchange) -> None:
        exchange.answer({"code": 0, "data": {"records": list(items)}})

    return behave


def import_pages(records: list[dict[str, object]], pages: int) -> list[bytes]:
    """``records`` as the Zilliz Cloud paged import list answers them, one JSON body per page."""
    page_size = -(-len(records) // pages)
    return [
        json.dumps(
            {
                "code": 0,
                "data": {
                    "records": records[page * page_size : (page + 1) * page_size],
                    "count": len(records),
                    "currentPage": page + 1,
                    "pageSize": page_size,
                },
            },
            separators=(",", ":"),
        ).encode()
        for page in range(pages)
    ]


def paged(pages: list[bytes], described: bytes | None = None) -> Behaviour:
    """Answer each list request with the page it asks for (rendered once), and every
    ``import/describe`` with ``described`` (default: the job does not exist)."""

    def behave(exchange: Exchange) -> None:
        if exchange.path.endswith("/import/describe"):
            body = described or b'{"code": 2100, "message": "import job does not exist"}'
        else:
            page = exchange.body.get("currentPage", 1)
            number = page if isinstance(page, int) else 1
            body = pages[min(max(number, 1), len(pages)) - 1]
        exchange.send(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return behave


def new_collections_each_poll(per_poll: int) -> Behaviour:
    counter = itertools.count()

    def behave(exchange: Exchange) -> None:
        batch = next(counter)
        exchange.answer(
            {
                "code": 0,
                "data": {
                    "records": [
                        refresh_record(batch * per_poll + index + 1, f"c{batch}_{index}")
                        for index in range(per_poll)
                    ]
                },
            }
        )

    return behave


def without_collections_list(behaviour: Behaviour = healthy) -> Behaviour:
    """A server that does not serve ``collections/list`` (Go's plain-text 404), and otherwise
    answers like ``behaviour``."""

    def behave(exchange: Exchange) -> None:
        if exchange.path.endswith("/collections/list"):
            body = b"404 page not found"
            exchange.send(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        else:
            behaviour(exchange)

    return behave


def reset_mid_body(exchange: Exchange) -> None:
    exchange.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )
    exchange.send(b'{"code": 0, "data": {"records": [')
    exchange.sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    exchange.sock.close()  # linger 0: the peer sees a reset, not a clean end


class BlackholedAddresses:
    """``count`` loopback addresses sharing one port, each listening with a full backlog: a
    connect to any of them is never answered (the SYN is dropped), like a dead load balancer."""

    def __init__(self, count: int) -> None:
        self.addresses = [f"127.0.0.{index + 2}" for index in range(count)]
        self._sockets: list[socket.socket] = []
        self.port = 0
        failure: OSError | None = None
        for _ in range(20):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            try:
                for address in self.addresses:
                    self._fill(address)
                return
            except OSError as error:
                failure = error
                self.close()
        raise failure or OSError("no port free on every address")

    def _fill(self, address: str) -> None:
        listener = socket.create_server((address, self.port), backlog=0)
        self._sockets.append(listener)
        for _ in range(8):  # fill the accept queue; then connects hang
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # the handshake completes by itself
                filler.connect((address, self.port))
            self._sockets.append(filler)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect((address, self.port))
        except TimeoutError:
            pass  # dropped, as wanted
        else:
            raise OSError(f"{address}:{self.port} accepted a connection with a full backlog")
        finally:
            probe.close()

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []


@dataclass
class HostileServer:
    """Threaded raw-socket server; ``behaviours`` maps a dbName to how to answer."""

    behaviours: dict[str, Behaviour]
    default: Behaviour = healthy
    seen: list[Exchange] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    """Serve HTTPS with this server context instead of plain HTTP."""

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def stop(self) -> None:
        self._stop.set()
        self._accepter.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            exchange = self._read(sock)
            if exchange is None:
                return
            self.seen.append(exchange)
            database = str(exchange.body.get("dbName", ""))
            self.behaviours.get(database, self.default)(exchange)
        except OSError:
            pass
        finally:
            sock.close()

    def _read(self, sock: socket.socket) -> Exchange | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        try:
            body = json.loads(rest[:length] or b"{}")
        except ValueError:
            body = {}
        return Exchange(sock, path, headers, body if isinstance(body, dict) else {}, self._stop)


@contextmanager
def hostile_server(
    behaviours: dict[str, Behaviour],
    default: Behaviour = healthy,
    tls: ssl.SSLContext | None = None,
) -> Iterator[HostileServer]:
    server = HostileServer(behaviours, default, tls=tls)
    try:
        yield server
    finally:
        server.stop()
