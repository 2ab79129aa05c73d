"""The exporter's HTTP server: /metrics, /healthz, /readyz, /-/reload and a landing page.

It reads only the exposition cache and the daemon's published status; it never calls upstream,
so a slow or broken cluster can never make a scrape slow. What protects it from hostile clients
(deadlines, the connection cap, header and body limits) lives in ``connection_guard``.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

import structlog

from .. import __version__
from ..exposition.cache import ExpositionCache
from .limits import GuardedHTTPServer, GuardedRequestHandler, ServerLimits
from .status import DiscoveryStatus, ReloadResult, TargetStatus
from .webconfig import WebConfig

log = structlog.get_logger("exporter.web.server")

ROUTES = ("/", "/metrics", "/healthz", "/readyz")
RELOAD_PATH = "/-/reload"


class ExporterApp(Protocol):
    """What the server needs from the daemon (a Protocol so tests can hand in a small fake)."""

    cache: ExpositionCache
    ready: threading.Event

    def status(self) -> list[TargetStatus]: ...

    def discovery_status(self) -> list[DiscoveryStatus]: ...

    def readiness(self) -> tuple[bool, str]: ...

    def request_reload(self) -> ReloadResult: ...


UNAUTHENTICATED_PATHS = ("/healthz", "/readyz")
"""Liveness and readiness stay open so orchestrator probes need no credentials; they reveal nothing."""
LIFECYCLE_DISABLED = (
    b"Lifecycle API is not enabled; start with --web.enable-lifecycle, or send SIGHUP\n"
)


class ExporterHTTPServer(GuardedHTTPServer):
    """The exporter's HTTP(S) server: routes over the guarded server of ``connection_guard``.

    ``POST /-/reload`` is off unless ``enable_lifecycle`` (``--web.enable-lifecycle``), as in
    Prometheus: any web page can make a browser POST to it, and each reload starts a poll that
    spends the token's rate limit. SIGHUP always reloads.
    """

    def __init__(
        self,
        address: tuple[str, int],
        app_provider: Callable[[], ExporterApp],
        web_config: WebConfig | None = None,
        *,
        limits: ServerLimits | None = None,
        enable_lifecycle: bool = False,
    ) -> None:
        self.app_provider = app_provider
        self.web_config = web_config or WebConfig()
        self.enable_lifecycle = enable_lifecycle
        super().__init__(address, _Handler, limits or ServerLimits(), self.web_config.ssl_context())

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        shown = f"[{shown}]" if ":" in shown else shown
        scheme = "https" if self.tls_context is not None else "http"
        return f"{scheme}://{shown}:{port}"


def serve_in_thread(server: ExporterHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread


class _Handler(GuardedRequestHandler):
    server: ExporterHTTPServer
    server_version = f"milvus-jobs-exporter/{__version__}"
    sys_version = ""
    # Headers and body go out in separate sends; without TCP_NODELAY a kept-alive client's delayed
    # ACK holds the body back ~40 ms (measured: 42 ms instead of 0.3 ms back to back).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self._authorized():
            self._route(send_body=True)

    def do_HEAD(self) -> None:
        if self._authorized():
            self._route(send_body=False)

    def _authorized(self) -> bool:
        """Basic auth (when configured) on every path but the health probes; 401 otherwise."""
        web_config = self.server.web_config
        if not web_config.auth_required or self.path.split("?", 1)[0] in UNAUTHENTICATED_PATHS:
            return True
        result = web_config.check_basic_auth(self.headers.get("Authorization"))
        if result.ok:
            return True
        log.warning(
            "http.unauthorized",
            client=self.client_address[0],
            path=self.path.split("?", 1)[0][:200],
        )
        self._reply(
            HTTPStatus.UNAUTHORIZED,
            b"unauthorized\n",
            extra={"WWW-Authenticate": 'Basic realm="milvus-jobs-exporter", charset="UTF-8"'},
        )
        return False

    def do_POST(self) -> None:
        if not self._authorized():
            return
        if self.path.split("?", 1)[0] != RELOAD_PATH:
            self._method_not_allowed()
            return
        if not self.server.enable_lifecycle:
            self._reply(HTTPStatus.FORBIDDEN, LIFECYCLE_DISABLED)
            return
        if self._cross_origin():
            self.server.throttled_log.warning(
                "http.cross_origin_refused",
                client=self.client_address[0],
                origin=str(self.headers.get("Origin"))[:200],
            )
            self._reply(HTTPStatus.FORBIDDEN, b"cross-origin request refused\n")
            return
        result = self.server.app_provider().request_reload()
        status = HTTPStatus.OK if result.ok else HTTPStatus.INTERNAL_SERVER_ERROR
        self._reply(status, (result.message + "\n").encode())

    def _method_not_allowed(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ROUTES:
            self._reply(
                HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", extra={"Allow": "GET, HEAD"}
            )
        elif path == RELOAD_PATH:
            self._reply(
                HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", extra={"Allow": "POST"}
            )
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def _cross_origin(self) -> bool:
        """True for a browser's request from another site (or an opaque ``Origin: null``).

        Browsers send ``Origin`` with every cross-origin POST; curl, scripts and Prometheus do not
        send it at all. Even with the lifecycle API enabled and no basic auth, a web page cannot
        then make its visitors' browsers reload the exporter.
        """
        origin = self.headers.get("Origin")
        if origin is None:
            return False
        return urlsplit(origin).netloc.lower() != str(self.headers.get("Host", "")).lower()

    def _route(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        app = self.server.app_provider()
        if path == RELOAD_PATH:
            self._method_not_allowed()
        elif path == "/metrics":
            self._metrics(app, send_body)
        elif path == "/healthz":
            self._reply(HTTPStatus.OK, b"ok\n", send_body=send_body)
        elif path == "/readyz":
            ready, message = app.readiness()
            status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            self._reply(status, (message + "\n").encode(), send_body=send_body)
        elif path == "/":
            page = landing_page(app.status(), app.readiness(), app.discovery_status()).encode()
            self._reply(
                HTTPStatus.OK, page, content_type="text/html; charset=utf-8", send_body=send_body
            )
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", send_body=send_body)

    def _metrics(self, app: ExporterApp, send_body: bool) -> None:
        accept = self.headers.get("Accept", "")
        openmetrics = "application/openmetrics-text" in accept
        gzip = _accepts_gzip(self.headers.get("Accept-Encoding", ""))
        scrape = app.cache.scrape(openmetrics=openmetrics, gzip=gzip)
        extra = {"Vary": "Accept, Accept-Encoding"}
        if scrape.gzipped:
            extra["Content-Encoding"] = "gzip"
        self._reply(
            HTTPStatus.OK,
            scrape.chunks,
            content_type=scrape.content_type,
            extra=extra,
            send_body=send_body,
        )

    def _reply(
        self,
        status: HTTPStatus,
        body: bytes | tuple[bytes | bytearray, ...],
        *,
        content_type: str = "text/plain; charset=utf-8",
        extra: dict[str, str] | None = None,
        send_body: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        chunks = (body,) if isinstance(body, bytes) else body
        self.send_header("Content-Length", str(sum(len(chunk) for chunk in chunks)))
        self.send_header("Cache-Control", "no-store")
        for name, value in {**self.server.web_config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            for chunk in chunks:  # cached chunks go out as they are: no join, no copy
                self.wfile.write(chunk)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http.request", client=self.client_address[0], line=format % args)


def _accepts_gzip(header: str) -> bool:
    """True if ``Accept-Encoding`` allows gzip (``gzip`` or ``*`` with a non-zero ``q``)."""
    for part in header.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def landing_page(
    rows: list[TargetStatus],
    readiness: tuple[bool, str],
    discoveries: list[DiscoveryStatus] | None = None,
) -> str:
    """A small HTML page: links and one row per target; no secrets ever reach it."""
    now = time.time()
    body_rows = []
    for row in sorted(rows, key=lambda row: (row.cluster, row.database, row.kind)):
        age = f"{now - row.last_success:.0f}s ago" if row.last_success else "never"
        status = "up" if row.up else f"down ({row.reason or 'not polled yet'})"
        body_rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(cell)}</td>"
                for cell in (row.cluster, row.database, row.kind, status, age)
            )
            + "</tr>"
        )
    table = "\n".join(body_rows) or '<tr><td colspan="5">no poll cycle has finished yet</td></tr>'
    ready, message = readiness
    state = "ready" if ready else message
    discovery = _discovery_table(discoveries or [], now)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Milvus jobs exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}</style></head>
<body><h1>Milvus jobs exporter</h1>
<p>Version {html.escape(__version__)}, {html.escape(state)}.</p>
<p><a href="/metrics">Metrics</a> &middot; <a href="/healthz">Health</a> &middot; <a href="/readyz">Readiness</a></p>
<table><thead><tr><th>Cluster</th><th>Database</th><th>Kind</th><th>Last poll</th><th>Last success</th></tr></thead>
<tbody>
{table}
</tbody></table>
{discovery}</body></html>
"""


def _discovery_table(rows: list[DiscoveryStatus], now: float) -> str:
    """Clusters whose databases come from patterns: what their last discovery found."""
    if not rows:
        return ""
    lines = []
    for row in rows:
        if row.ok is None:
            status = "not listed yet"
        elif row.ok:
            status = f"ok: {row.matched} databases"
        else:
            kept = f"polling the last list of {row.matched}" if row.last_success else "no list yet"
            status = f"failing ({row.reason}); {kept}"
        when = f"{now - row.last_success:.0f}s ago" if row.last_success else "never"
        patterns = ", ".join(row.patterns) + (
            f" (except {', '.join(row.excluded)})" if row.excluded else ""
        )
        cells = (row.cluster, patterns, status, when)
        lines.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    body = "\n".join(lines)
    return f"""<h2>Database discovery</h2>
<table><thead><tr><th>Cluster</th><th>Patterns</th><th>Last discovery</th><th>Last success</th></tr></thead>
<tbody>
{body}
</tbody></table>
"""
