"""The connections ``transport.new_session`` makes itself (issue 20: resolved and connected inside
the deadline) keep what the library's own did: HTTPS verified against the configured CA, HTTP
proxies from the environment, and the Bearer token."""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.guards.watchdog import Watchdog
from exporter.upstream.client import ApiError, MilvusClient
from exporter.upstream.transport import new_session

from . import hostile
from .conftest import TOKEN_A
from .test_webconfig import PKI, pki  # noqa: F401  (session fixture: a CA and a server cert)


def client(url: str, **options: object) -> MilvusClient:
    return MilvusClient(url, TOKEN_A, new_session(2), 3.0, **options)  # type: ignore[arg-type]


@pytest.fixture
def tls_context(pki: PKI) -> ssl.SSLContext:  # noqa: F811
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_crt, pki.server_key)
    return context


def test_an_https_upstream_is_verified_against_the_configured_ca(pki, tls_context):  # noqa: F811
    with hostile.hostile_server({}, tls=tls_context) as server:
        listing = client(server.url, verify=str(pki.ca_crt)).list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN_A}"


def test_an_https_upstream_with_an_unknown_ca_is_refused_as_tls(tls_context):
    with hostile.hostile_server({}, tls=tls_context) as server:
        with pytest.raises(ApiError) as raised:
            client(server.url, verify=True).list_refresh_jobs("default")
        assert raised.value.reason == "tls"


def test_an_http_proxy_from_the_environment_is_used_and_the_upstream_name_is_its_to_resolve(
    monkeypatch,
):
    """The endpoint's name does not resolve here: only the proxy (the hostile server) sees it."""
    with hostile.hostile_server({}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        listing = client("http://upstream.invalid:19530").list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        (exchange,) = proxy.seen
        assert exchange.path == (
            "http://upstream.invalid:19530/v2/vectordb/jobs/external_collection/list"
        )
        assert exchange.headers["authorization"] == f"Bearer {TOKEN_A}"


class ConnectProxy:
    """An HTTP proxy that only tunnels (``CONNECT host:port``) to one fixed upstream."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requested: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        client.settimeout(5)
        with client, socket.create_connection(("127.0.0.1", self.upstream_port), 5) as upstream:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.requested.append(head.split(b"\r\n", 1)[0].decode())
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.settimeout(5)
            pump = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            pump.start()
            _pipe(client, upstream)
            pump.join(timeout=5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def test_an_https_proxy_tunnels_to_a_verified_upstream(pki, tls_context, monkeypatch):  # noqa: F811
    with hostile.hostile_server({}, tls=tls_context) as server:
        port = int(server.url.rsplit(":", 1)[1])
        proxy = ConnectProxy(port)
        try:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            monkeypatch.delenv("NO_PROXY", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            endpoint = f"https://localhost:{port}"
            listing = client(endpoint, verify=str(pki.ca_crt)).list_refresh_jobs("default")
        finally:
            proxy.close()
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        assert [line.rsplit(" ", 1)[0] for line in proxy.requested] == [f"CONNECT localhost:{port}"]
        assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN_A}"


def test_a_request_cut_by_the_shutdown_is_not_called_a_timeout():
    """SIGTERM stops the watchdog, which cuts every open exchange at once: that request did not
    run out of time, and a log line saying "answer not complete within 10s" would send an
    operator looking for a slow server."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        watchdog = Watchdog()
        client = MilvusClient(
            f"http://127.0.0.1:{port}", TOKEN_A, new_session(1), 10.0, watchdog=watchdog
        )
        threading.Timer(0.3, watchdog.stop).start()
        with pytest.raises(ApiError) as raised:
            client.list_refresh_jobs("default")
    assert raised.value.reason == "deadline", raised.value
    assert "stopping" in str(raised.value)


def test_no_proxy_sends_the_endpoint_direct_though_a_proxy_is_set(monkeypatch):
    with hostile.hostile_server({}) as proxy, hostile.hostile_server({}) as upstream:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        listing = client(upstream.url).list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        assert (len(proxy.seen), len(upstream.seen)) == (0, 1)


def test_a_gzip_answer_is_decoded_and_the_request_says_gzip_is_welcome():
    body = gzip.compress(hostile._empty_list())
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d" % len(body)
    with hostile.hostile_server({}, default=hostile.raw_answer(head, body)) as server:
        listing = client(server.url).list_refresh_jobs("default")
        assert [job.collection for job in listing.jobs] == ["ext_ok"]
        assert "gzip" in server.seen[0].headers["accept-encoding"]


def test_the_path_of_an_endpoint_prefixes_every_request():
    with hostile.hostile_server({}) as server:
        client(server.url + "/milvus").list_refresh_jobs("default")
        assert server.seen[0].path == "/milvus/v2/vectordb/jobs/external_collection/list"


class CountingHandler(BaseHTTPRequestHandler):
    """Answers every POST with an empty refresh list on a kept connection; counts connections."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    connections = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"code": 0, "data": {"records": []}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


def test_requests_to_one_endpoint_share_one_kept_connection():
    handler = type("Handler", (CountingHandler,), {"connections": 0})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            upstream = client(f"http://127.0.0.1:{server.server_address[1]}")
            for _ in range(5):
                assert upstream.list_refresh_jobs("default").jobs == ()
        finally:
            server.shutdown()
    assert handler.connections == 1
