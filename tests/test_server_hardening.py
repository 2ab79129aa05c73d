"""The exporter's own HTTP server against hostile clients: each test provokes one way of knocking
it over (against the real server, on 127.0.0.1) and checks that it shrugs it off.

Most tests bind ``ExporterHTTPServer`` in-process with a small fake app and short limits; those
that need an fd limit, the process's RSS or its CPU time run the real exporter as a process.
Every socket has a timeout and every wait a deadline, so no test can hang.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import requests

from exporter.cli import build_parser
from exporter.exposition.cache import ExpositionCache
from exporter.web.server import ExporterHTTPServer, ServerLimits, serve_in_thread
from exporter.web.status import DiscoveryStatus, ReloadResult, TargetStatus
from exporter.web.webconfig import WebConfig, load_web_config

from .test_cli import REPO, free_port, write_config
from .test_webconfig import PKI, pki  # noqa: F401  (session fixture with a CA, server and client certs)

PASSWORD = "reload-password-4b1d"
PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
BASIC_AUTH = WebConfig(basic_auth_users={"ops": PASSWORD_HASH})
CREDENTIALS = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()

HIDDEN = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
"""A request smuggled in a body: the landing page, which calls ``app.status()`` (counted)."""
HIDDEN_RELOAD = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
SENTINEL = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
"""Sent last on a connection: answered 200 if the connection stayed usable, then the server
closes it, so reading until EOF never waits for a timeout."""


class FakeApp:
    """What the server needs from the daemon, counting the calls a hidden request would make."""

    def __init__(self, body: bytes = b"fake_metric 1\n") -> None:
        self.cache = ExpositionCache(live_text=lambda: body)
        self.ready = threading.Event()
        self.ready.set()
        self.status_calls = 0
        self.reload_calls = 0
        self.gate: threading.Event | None = None

    def status(self) -> list[TargetStatus]:
        self.status_calls += 1
        if self.gate is not None:
            self.gate.wait(timeout=5)
        return []

    def discovery_status(self) -> list[DiscoveryStatus]:
        return []

    def readiness(self) -> tuple[bool, str]:
        return True, "ready"

    def request_reload(self) -> ReloadResult:
        self.reload_calls += 1
        return ReloadResult(True, "reloaded")


@dataclass
class Running:
    server: ExporterHTTPServer
    app: FakeApp
    serving: bool = False

    def start_serving(self) -> None:
        serve_in_thread(self.server)
        self.serving = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return self.server.url

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection(self.address, timeout=timeout)


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """Start ``ExporterHTTPServer`` on 127.0.0.1:0 with a fake app; everything stops at teardown."""
    started: list[Running] = []

    def start(
        app: FakeApp | None = None,
        *,
        web_config: WebConfig | None = None,
        enable_lifecycle: bool = False,
        serving: bool = True,
        **limits: float,
    ) -> Running:
        app = app or FakeApp()
        server = ExporterHTTPServer(
            ("127.0.0.1", 0),
            lambda: app,
            web_config,
            limits=ServerLimits(**limits),  # type: ignore[arg-type]
            enable_lifecycle=enable_lifecycle,
        )
        running = Running(server, app)
        started.append(running)
        if serving:
            running.start_serving()
        return running

    yield start
    for running in started:
        if running.serving:
            running.server.shutdown()
        running.server.server_close()


def connection_threads() -> int:
    """Threads serving one connection each (socketserver names them after their target)."""
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` until true; return the seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, (
            f"timed out after {timeout}s waiting for {what}"
        )
        time.sleep(0.02)
    return time.monotonic() - started


def read_until_closed(sock: socket.socket, timeout: float = 3.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return received, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk


def statuses(answer: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def read_one_response(sock: socket.socket, timeout: float = 3.0) -> bytes:
    """One response with a Content-Length body, leaving the connection open."""
    deadline = time.monotonic() + timeout
    received = b""
    while b"\r\n\r\n" not in received:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"closed before a full response: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def closed_within(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes ``sock`` (reading and dropping what it sends), or None."""
    started = time.monotonic()
    _received, closed = read_until_closed(sock, timeout)
    return time.monotonic() - started if closed else None


def all_closed_within(socks: list[socket.socket], timeout: float) -> bool:
    """True if the server closes every one of ``socks`` before one shared deadline."""
    deadline = time.monotonic() + timeout
    return all(read_until_closed(sock, max(0.0, deadline - time.monotonic()))[1] for sock in socks)


# Deadlines: header, trickle, idle, TLS handshake, response


def test_half_sent_requests_are_cut_at_the_header_deadline(serve):
    running = serve(header_timeout=1.0, max_connections=400)
    threads_before = connection_threads()
    fds_before = len(os.listdir("/proc/self/fd"))
    half_sent = []
    for _ in range(300):
        sock = running.connect()
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        half_sent.append(sock)
    try:
        started = time.monotonic()
        assert requests.get(running.url + "/metrics", timeout=1).status_code == 200
        assert time.monotonic() - started < 1.0
        assert all_closed_within(half_sent, timeout=3.0), "a half-sent request was never cut"
    finally:
        for sock in half_sent:
            sock.close()
    wait_until(lambda: connection_threads() <= threads_before, 3.0, "connection threads to end")
    wait_until(
        lambda: len(os.listdir("/proc/self/fd")) <= fds_before + 5, 3.0, "server-side fds to close"
    )


def test_a_header_trickled_one_byte_at_a_time_is_cut_at_the_deadline(serve):
    running = serve(header_timeout=1.0)
    with running.connect() as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 4.0:
            try:
                sock.send(b"a")  # one byte every 0.2 s: no per-read timeout would ever fire
            except OSError:
                closed_after = time.monotonic() - started
                break
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable and sock.recv(1024) == b"":
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "a trickled header held the connection for 4 s"
    assert 0.8 <= closed_after < 2.0


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(serve):
    running = serve(idle_timeout=0.5)
    with running.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert statuses(read_one_response(sock)) == [200]
        idle_for = closed_within(sock, timeout=3.0)
    assert idle_for is not None, "an idle kept-alive connection stayed open"
    assert 0.4 <= idle_for < 1.5


def test_the_header_deadline_starts_with_each_request_not_with_the_connection(serve):
    running = serve(header_timeout=0.5, idle_timeout=3.0)
    with running.connect() as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert statuses(read_one_response(sock)) == [200]
            time.sleep(0.8)  # idle longer than the header deadline, shorter than the idle timeout


def test_a_silent_tls_client_is_cut_at_the_handshake_deadline(serve, tmp_path, pki):  # noqa: F811
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_crt}\n  key_file: {pki.server_key}\n"
    )
    running = serve(web_config=load_web_config(web), tls_handshake_timeout=1.0)
    with running.connect() as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00")  # a TLS record header: 512 bytes of handshake to come
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < 4.0:
            try:
                sock.send(b"\x01")  # ... that come one every 0.3 s: no per-read timeout fires
            except OSError:
                closed_after = time.monotonic() - started
                break
            readable, _, _ = select.select([sock], [], [], 0.3)
            if readable:
                try:
                    if sock.recv(1024) == b"":
                        closed_after = time.monotonic() - started
                        break
                except ConnectionResetError:
                    closed_after = time.monotonic() - started
                    break
    assert closed_after is not None, "a trickled TLS handshake held the connection for 4 s"
    assert 0.8 <= closed_after < 2.0
    context = ssl.create_default_context(cafile=str(pki.ca_crt))
    with (
        running.connect() as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer, _closed = read_until_closed(tls)
    assert statuses(answer) == [200]


def test_a_tls_client_that_goes_quiet_after_the_handshake_is_cut_at_the_header_deadline(
    serve,
    tmp_path,
    pki,  # noqa: F811
):
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_crt}\n  key_file: {pki.server_key}\n"
    )
    running = serve(web_config=load_web_config(web), header_timeout=1.0)
    context = ssl.create_default_context(cafile=str(pki.ca_crt))
    with (
        running.connect() as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        _answer, closed = read_until_closed(tls, timeout=4.0)
        assert closed, "a quiet TLS client held its connection for 4 s"
        assert 0.8 <= time.monotonic() - started < 2.0


def test_a_client_that_never_reads_its_answer_is_cut_at_the_response_deadline(serve):
    running = serve(FakeApp(body=b"x" * (32 << 20)), response_timeout=1.0)
    threads_before = connection_threads()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    try:
        sock.connect(running.address)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: connection_threads() > threads_before, 2.0, "the scrape to start")
        seconds = wait_until(
            lambda: connection_threads() <= threads_before, 4.0, "the stuck writer to be cut"
        )
        assert 0.5 <= seconds < 2.5
    finally:
        sock.close()


def test_many_requests_on_one_kept_alive_connection_leave_no_deadlines_behind(serve):
    running = serve()
    # A slow client's live deadline sits at the top of the watchdog's heap: deadlines released
    # behind it used to stay there until their own deadline (3 per request, 90 s for the idle one).
    with running.connect() as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")
        wait_until(lambda: running.server.active_connections == 1, 2.0, "the slow client")
        sock = running.connect()
        most = 0
        for _ in range(3000):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            read_one_response(sock)
            most = max(most, running.server.watchdog.pending)
        sock.close()
    assert most < 200, f"{most} deadlines pending for 2 connections"


# Header size


def test_request_headers_over_the_limit_get_431_and_a_closed_connection(serve):
    running = serve(max_header_bytes=16 * 1024)
    many_small_lines = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(20))
    with running.connect() as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + many_small_lines + b"\r\n")
        answer, closed = read_until_closed(sock)
    assert statuses(answer) == [431]
    assert closed
    with running.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, closed = read_until_closed(sock)
    assert statuses(answer) == [414]
    assert closed
    with running.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 15_000 + b"\r\n\r\n")
        assert statuses(read_one_response(sock)) == [200]


# Connection cap and backlog


def test_half_sent_connections_cannot_lock_scrapers_out(serve):
    running = serve(max_connections=4, header_timeout=5.0)
    half_sent = []
    try:
        for _ in range(4):
            sock = running.connect()
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            half_sent.append(sock)
            time.sleep(0.02)  # accepted in order: the first is the oldest
        wait_until(lambda: running.server.active_connections == 4, 2.0, "4 connections")
        started = time.monotonic()
        assert requests.get(running.url + "/metrics", timeout=2).status_code == 200
        assert time.monotonic() - started < 1.0
        assert closed_within(half_sent[0], timeout=1.0) is not None, "the oldest was not evicted"
        # the evicted connection's thread and the scrape's end a moment after the client sees it
        wait_until(lambda: running.server.active_connections <= 3, 1.0, "threads to end")
    finally:
        for sock in half_sent:
            sock.close()


def test_when_every_slot_is_busy_new_connections_get_503_and_the_server_recovers(serve):
    app = FakeApp()
    app.gate = threading.Event()
    running = serve(app, max_connections=4)
    busy = []
    try:
        for _ in range(4):
            sock = running.connect()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # held in app.status()
            busy.append(sock)
        wait_until(lambda: app.status_calls == 4, 2.0, "4 busy requests")
        threads_busy = connection_threads()
        for _ in range(20):
            with running.connect() as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                answer, closed = read_until_closed(sock, timeout=2.0)
            assert statuses(answer) == [503], answer
            assert closed
            head = answer.split(b"\r\n\r\n", 1)[0].lower()
            assert b"connection: close" in head and b"retry-after:" in head
        assert connection_threads() == threads_busy, "a shed connection started a thread"
        app.gate.set()
        for sock in busy:
            assert statuses(read_one_response(sock)) == [200]
    finally:
        for sock in busy:
            sock.close()
    assert requests.get(running.url + "/metrics", timeout=2).status_code == 200


def test_a_burst_of_connections_waits_in_the_backlog_instead_of_being_dropped(serve):
    running = serve(serving=False)  # listening, but nobody accepts yet: the kernel queues them
    burst = []
    try:
        for _ in range(100):
            sock = socket.socket()
            sock.settimeout(0.5)
            sock.connect(running.address)  # a full backlog drops the SYN: connect times out
            burst.append(sock)
        for sock in burst:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        running.start_serving()
        for sock in burst:
            answer, _closed = read_until_closed(sock, timeout=3.0)
            assert statuses(answer) == [200]
    finally:
        for sock in burst:
            sock.close()


# Bodies of refused requests: never parsed as the next request


def _post(path: str, body: bytes, method: str = "POST", extra: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def _chunked(path: str, body: bytes, method: str = "POST", extra: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".encode()
        + extra
        + b"\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("request_bytes", "expected", "settings"),
    [
        pytest.param(_post("/metrics", HIDDEN), [405, 200], {}, id="POST-to-metrics"),
        pytest.param(_post("/nowhere", HIDDEN), [404, 200], {}, id="POST-to-unknown-path"),
        pytest.param(_post("/metrics", HIDDEN, "GET"), [200, 200], {}, id="GET-with-a-body"),
        pytest.param(_post("/metrics", HIDDEN, "HEAD"), [200, 200], {}, id="HEAD-with-a-body"),
        pytest.param(_post("/metrics", HIDDEN, "PUT"), [405, 200], {}, id="PUT"),
        pytest.param(_post("/metrics", HIDDEN, "DELETE"), [405, 200], {}, id="DELETE"),
        pytest.param(_post("/metrics", HIDDEN, "PATCH"), [405, 200], {}, id="PATCH"),
        pytest.param(_post("/metrics", HIDDEN, "OPTIONS"), [405, 200], {}, id="OPTIONS"),
        pytest.param(_post("/metrics", HIDDEN, "BREW"), [501], {}, id="unknown-method"),
        pytest.param(_post("/-/reload", HIDDEN), [403, 200], {}, id="reload-not-enabled"),
        pytest.param(
            _post("/-/reload", HIDDEN),
            [401, 200],
            {"web_config": BASIC_AUTH, "enable_lifecycle": True},
            id="reload-without-credentials",
        ),
        pytest.param(
            _post("/metrics", HIDDEN_RELOAD, "GET"),
            [200, 200],
            {"enable_lifecycle": True},
            id="hidden-reload-in-a-GET-body",
        ),
        pytest.param(_chunked("/metrics", HIDDEN), [400], {}, id="chunked-POST"),
        pytest.param(_chunked("/metrics", HIDDEN, "GET"), [400], {}, id="chunked-GET"),
        pytest.param(
            _chunked("/metrics", HIDDEN, extra=b"Content-Length: 0\r\n"),
            [400],
            {},
            id="both-Content-Length-and-Transfer-Encoding",
        ),
        pytest.param(
            _post("/metrics", HIDDEN, "GET", extra=b"Transfer-Encoding: identity\r\n"),
            [400],
            {},
            id="Transfer-Encoding-identity",
        ),
        pytest.param(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            b"Content-Length: %d\r\n\r\n" % len(HIDDEN) + HIDDEN,
            [400],
            {},
            id="two-Content-Lengths",
        ),
        pytest.param(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: +%d\r\n\r\n" % len(HIDDEN)
            + HIDDEN,
            [400],
            {},
            id="signed-Content-Length",
        ),
    ],
)
def test_a_request_hidden_in_a_refused_body_never_runs(serve, request_bytes, expected, settings):
    running = serve(**settings)
    with running.connect() as sock:
        sock.sendall(request_bytes + SENTINEL)
        answer, closed = read_until_closed(sock)
    assert closed
    assert statuses(answer) == expected
    assert running.app.status_calls == 0, "the hidden request ran"
    assert running.app.reload_calls == 0, "a hidden reload ran"


def test_a_body_too_large_to_read_closes_the_connection_after_the_answer(serve):
    running = serve(max_discarded_body_bytes=1024)
    with running.connect() as sock:
        # Only the start of the announced body is sent: it holds the hidden request.
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + HIDDEN)
        try:
            answer, closed = read_until_closed(sock)
        except ConnectionResetError:  # the unread body may reset the connection
            answer, closed = b"", True
    assert closed
    assert statuses(answer) in ([], [200])
    if answer:
        assert b"connection: close" in answer.lower()
    assert running.app.status_calls == 0


def test_a_small_body_on_a_refused_request_is_read_and_the_connection_stays_usable(serve):
    running = serve()
    with running.connect() as sock:
        sock.sendall(_post("/metrics", b"x" * 5000))
        assert statuses(read_one_response(sock)) == [405]
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert statuses(read_one_response(sock)) == [200]


# The lifecycle API


def test_reload_is_refused_with_403_unless_the_lifecycle_api_is_enabled(serve):
    running = serve()
    response = requests.post(running.url + "/-/reload", timeout=5)
    assert response.status_code == 403
    assert "--web.enable-lifecycle" in response.text and "SIGHUP" in response.text
    assert response.text.count("\n") == 1
    assert running.app.reload_calls == 0
    enabled = serve(enable_lifecycle=True)
    assert requests.post(enabled.url + "/-/reload", timeout=5).status_code == 200
    assert enabled.app.reload_calls == 1


def test_the_lifecycle_api_still_needs_credentials_when_basic_auth_is_configured(serve):
    running = serve(web_config=BASIC_AUTH, enable_lifecycle=True)
    anonymous = requests.post(running.url + "/-/reload", timeout=5)
    assert anonymous.status_code == 401
    assert running.app.reload_calls == 0
    authorized = requests.post(
        running.url + "/-/reload", headers={"Authorization": CREDENTIALS}, timeout=5
    )
    assert authorized.status_code == 200
    assert running.app.reload_calls == 1


def test_a_cross_site_reload_is_refused_even_with_the_lifecycle_api_enabled(serve):
    running = serve(enable_lifecycle=True)
    host = "{}:{}".format(*running.address)
    forged = requests.post(
        running.url + "/-/reload", headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert forged.status_code == 403
    from_a_sandbox = requests.post(running.url + "/-/reload", headers={"Origin": "null"}, timeout=5)
    assert from_a_sandbox.status_code == 403
    assert running.app.reload_calls == 0
    same_origin = requests.post(
        running.url + "/-/reload", headers={"Origin": f"http://{host}"}, timeout=5
    )
    assert same_origin.status_code == 200
    assert running.app.reload_calls == 1


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_take_the_lifecycle_and_connection_cap_flags(command):
    base = ["serve", "--config", "config.yaml"] if command == "serve" else ["demo"]
    defaults = build_parser().parse_args(base)
    assert defaults.enable_lifecycle is False
    assert defaults.max_connections == ServerLimits().max_connections
    given = build_parser().parse_args(
        [*base, "--web.enable-lifecycle", "--web.max-connections", "7"]
    )
    assert given.enable_lifecycle is True
    assert given.max_connections == 7
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--web.max-connections", "0"])


# The real exporter as a process: fd limit, memory, flags


def _exporter(
    config: Path, port: int, *flags: str, fd_limit: int | None = None
) -> subprocess.Popen[str]:
    def limit_fds() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-format",
            "json",
            *flags,
        ],
        cwd=REPO,
        env={**os.environ, "MILVUS_TOKEN": "token-alpha-5f1c2e"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_fds,  # only setrlimit between fork and exec: safe with threads
    )
    wait_until(lambda: _answers(port) or process.poll() is not None, 15.0, "the exporter")
    assert process.poll() is None, process.communicate(timeout=5)[1]
    return process


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=10)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_accept_at_the_fd_limit_backs_off_instead_of_spinning(simulator, tmp_path):
    _sim, url = simulator
    port = free_port()
    process = _exporter(
        write_config(tmp_path, url, databases="[default]"),
        port,
        "--web.max-connections",
        "500",
        fd_limit=32,
    )
    held = []
    try:
        for _ in range(60):  # more than the 32 descriptors the exporter may open
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1.5)
            except TimeoutError:
                break  # the listen backlog is full too
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            held.append(sock)
        time.sleep(0.3)
        before = _cpu_seconds(process.pid)
        time.sleep(2.0)
        burnt = _cpu_seconds(process.pid) - before
        assert burnt < 0.4, f"the accept loop burnt {burnt:.2f} s of CPU in 2 s at the fd limit"
        for sock in held:
            sock.close()
        wait_until(lambda: _answers(port), 3.0, "a scrape once descriptors are free again")
    finally:
        for sock in held:
            sock.close()
        err = _stop(process)
    assert "Traceback" not in err
    assert '"event": "http.max_connections_above_fd_limit"' in err
    assert '"event": "http.accept_failed"' in err


def test_forty_connections_parking_six_megabytes_of_headers_leave_memory_bounded(
    simulator, tmp_path
):
    _sim, url = simulator
    port = free_port()
    process = _exporter(write_config(tmp_path, url, databases="[default]"), port)
    line = b"X-Pad-%d: " + b"a" * 64_000 + b"\r\n"
    # http.client's own limits: 100 header lines of 64 KiB each, so 99 of them after Host
    headers = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"".join(line % i for i in range(99))
    parked = []
    try:
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        before = _rss_mb(process.pid)
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            with contextlib.suppress(OSError):  # refused after the limit: fine
                sock.sendall(headers)  # ~6 MB, and never the blank line that ends them
            parked.append(sock)
        time.sleep(0.5)
        grown = _rss_mb(process.pid) - before
        assert grown < 20, f"RSS grew by {grown:.0f} MB for 40 parked connections"
        assert _answers(port)
    finally:
        for sock in parked:
            sock.close()
        err = _stop(process)
    assert "Traceback" not in err


def test_serve_keeps_the_lifecycle_api_off_unless_the_flag_is_given(simulator, tmp_path):
    _sim, url = simulator
    config = write_config(tmp_path, url, databases="[default]")
    port = free_port()
    process = _exporter(config, port)
    try:
        refused = requests.post(f"http://127.0.0.1:{port}/-/reload", timeout=5)
    finally:
        _stop(process)
    assert refused.status_code == 403
    port = free_port()
    process = _exporter(config, port, "--web.enable-lifecycle", "--web.max-connections", "1")
    try:
        # With a cap of one, the readiness probe's connection may still hold the slot for a few
        # milliseconds after the probe returned: that is a 503, not a refusal.
        reload = requests.post(f"http://127.0.0.1:{port}/-/reload", timeout=5)
        if reload.status_code == 503:
            time.sleep(0.2)
            reload = requests.post(f"http://127.0.0.1:{port}/-/reload", timeout=5)
        assert reload.status_code == 200 and reload.text.startswith("reloaded")
        time.sleep(0.1)  # and the reload's connection is gone before the next one comes
        with socket.create_connection(("127.0.0.1", port), timeout=5) as half_sent:
            half_sent.sendall(b"GET /metrics HTTP/1.1\r\n")
            time.sleep(0.1)
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            # a cap of one: the scrape took the half-sent connection's place
            assert closed_within(half_sent, timeout=1.0) is not None
    finally:
        err = _stop(process)
    assert "Traceback" not in err
