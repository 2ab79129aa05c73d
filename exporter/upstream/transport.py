"""HTTP connections for the job API: one factory, one TLS rule, and deadlines that hold.

Requests go through urllib3's pools directly (``ConnectionPools``), not ``requests``: what a
``requests.Session`` worked out on every request (proxy, certificate rule, pool, cookies, its
own response object) cost a describe follow-up about twice the CPU of the request itself, and
at fleet scale a poll round is hundreds of them (``benchmarks/request_cost.py``).

urllib3 bounds each socket read, never a whole answer, so a server that trickles bytes can
hold a request for ever; and it resolves the name and connects address by address before any
deadline applies (``getaddrinfo`` takes no timeout; eight addresses that drop every SYN took
8 x the connect timeout). Every connection made through ``new_session`` is therefore made here,
inside the deadline of the exchange running in the current thread (see ``watched``):

- the name is looked up by the ``Resolver`` (``resolver.py``), waited for only as long as the
  exchange has left, so a resolver that never answers never holds the caller;
- each address then gets a share of what is left (at least ``MIN_CONNECT_SHARE_SECONDS``, or
  all that is left), and no address is tried once the deadline has passed;
- the socket is watched from before its connect, and the watchdog shuts it down when the
  deadline passes, wherever the request then is: the TLS handshake, the status line, headers or
  body.

Informational answers (``103 Early Hints``, any 1xx but 101) are read past to the final answer,
as HTTP says a client must; ``http.client`` itself skips only ``100 Continue``.

The configured token always goes out as ``Authorization: Bearer`` (``MilvusClient`` sets it;
nothing here reads ``~/.netrc``, whose Basic credentials once replaced it). Proxy variables
(``HTTPS_PROXY``, ``NO_PROXY``) keep working: the connection made here is to the next hop, the
proxy when there is one.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import requests
from certifi import where
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    prepend_scheme_if_needed,
    select_proxy,
)
from urllib3 import BaseHTTPResponse, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import Timeout, make_headers, parse_url
from urllib3.util.connection import allowed_gai_family
from urllib3.util.proxy import connection_requires_http_tunnel

from ..guards.watchdog import Watch, Watchdog
from .resolver import SHARED, ResolutionError, Resolver

MIN_CONNECT_SHARE_SECONDS = 0.5
"""The least time one address is given to connect, when that much is left: a share smaller
than a slow round trip would fail a good address only because a name has many."""

NO_DEADLINE_RESOLVE_SECONDS = 30.0
"""How long a lookup may take for a connection made outside any ``watched`` exchange."""

MAX_INFORMATIONAL_ANSWERS = 20
"""1xx answers read past before the final one; more is a server that answers nothing."""

_current = threading.local()


@dataclass(frozen=True)
class _Exchange:
    watch: Watch
    clock: Callable[[], float]
    on_sending: Callable[[], None] | None = None
    on_sent: Callable[[], None] | None = None

    def remaining(self) -> float:
        return self.watch.deadline - self.clock()


@contextmanager
def watched(
    watchdog: Watchdog | None,
    deadline: float,
    clock: Callable[[], float] | None = None,
    *,
    on_sending: Callable[[], None] | None = None,
    on_sent: Callable[[], None] | None = None,
) -> Iterator[Watch]:
    """Hold every socket this thread uses inside the block, and every name it resolves, to
    ``deadline`` (on ``clock``: the watchdog's by default). With ``on_sent``, a request is
    connected first, then ``on_sending`` is called (it may raise to send nothing), then its bytes
    are written, then ``on_sent`` is called: the rate limiter counts the request from its write,
    and holds its place while it connects for one window at most (``ratelimit.py``)."""
    watch = watchdog.watch(deadline) if watchdog is not None else Watch(deadline)
    if clock is None:
        clock = watchdog.clock if watchdog is not None else time.monotonic
    previous = getattr(_current, "exchange", None)
    _current.exchange = _Exchange(watch, clock, on_sending, on_sent)
    try:
        yield watch
    finally:
        _current.exchange = previous
        watch.release()


def _exchange() -> _Exchange | None:
    return getattr(_current, "exchange", None)


def _attach(sock: Any) -> None:
    exchange = _exchange()
    if exchange is not None and sock is not None:
        exchange.watch.attach(sock)


def _request(connection: HTTPConnection, send: Callable[[], None]) -> None:
    """Send a request on ``connection`` (``send``), telling the exchange when its bytes are about
    to go and once they went (or some of them, and the write failed): the upstream may count it
    from then. The mark comes after the write, never before: one made before could age out of
    the limiter's window while the thread waits for the GIL to write."""
    _attach(connection.sock)
    exchange = _exchange()
    if exchange is None or exchange.on_sent is None:
        send()
        return
    if connection.sock is None:
        connection.connect()  # (an HTTP connection otherwise connects inside the write)
    if exchange.on_sending is not None:
        exchange.on_sending()
    try:
        send()
    finally:
        exchange.on_sent()


def open_connection(
    host: str,
    port: int,
    connect_timeout: float | None,
    resolver: Resolver,
    source_address: tuple[str, int] | None = None,
    socket_options: Any = None,
) -> socket.socket:
    """A connected socket to ``host``, within the current exchange's deadline.

    Raises ``ResolutionError`` (the name), ``TimeoutError`` (time ran out before an address
    answered) or the ``OSError`` of the last address tried (every address refused).
    """
    host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None
    exchange = _exchange()
    cap = connect_timeout if isinstance(connect_timeout, (int, float)) else None

    def remaining() -> float:
        if exchange is None:
            return math.inf
        return 0.0 if exchange.watch.fired else exchange.remaining()

    left = remaining()
    if left <= 0:
        raise TimeoutError(f"no time left to connect to {host}")
    lookup_time = left if left < math.inf else (cap or NO_DEADLINE_RESOLVE_SECONDS)
    wake = exchange.watch.call_on_fire if exchange is not None else None
    addresses = resolver.resolve(host, port, allowed_gai_family(), lookup_time, wake)
    failure: OSError | None = None
    tried = 0
    for family, kind, proto, _name, address in addresses:
        left = remaining()
        if left <= 0:
            break
        share = max(left / (len(addresses) - tried), min(left, MIN_CONNECT_SHARE_SECONDS))
        tried += 1
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(min(share, cap) if cap is not None else share)
            if source_address:
                sock.bind(source_address)
            if exchange is not None:
                exchange.watch.attach(sock)  # before the connect: nothing escapes the deadline
            sock.connect(address)
        except OSError as error:
            sock.close()
            failure = error
            continue
        sock.settimeout(cap)  # as urllib3 leaves a new socket: its connect timeout
        return sock
    if failure is not None and remaining() > 0:
        raise failure
    raise TimeoutError(
        f"no connection to {host} in time ({tried} of {len(addresses)} addresses tried)"
    )


class _FinalResponse(http.client.HTTPResponse):
    """A response that reads past informational answers to the final one."""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INFORMATIONAL_ANSWERS):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            # 100 is skipped by begin() itself; 101 switches protocols and is final.
            if not 102 <= status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the 1xx's own headers (Link: ...), unused
        raise http.client.HTTPException(
            f"more than {MAX_INFORMATIONAL_ANSWERS} informational (1xx) answers"
        )


def _new_conn(connection: HTTPConnection, resolver: Resolver) -> socket.socket:
    """``HTTPConnection._new_conn`` inside the deadline, with urllib3's own exceptions."""
    try:
        sock = open_connection(
            connection._dns_host,
            connection.port,
            connection.timeout,  # a number, or a sentinel for none
            resolver,
            connection.source_address,
            connection.socket_options,
        )
    except ResolutionError as error:
        raise NameResolutionError(connection.host, connection, error) from error  # type: ignore[arg-type]
    except TimeoutError as error:
        raise ConnectTimeoutError(connection, str(error)) from error
    except OSError as error:
        raise NewConnectionError(
            connection, f"Failed to establish a new connection: {error}"
        ) from error
    sys.audit("http.client.connect", connection, connection.host, connection.port)
    return sock


class _WatchedHTTPConnection(HTTPConnection):
    """Resolves and connects inside the exchange's deadline; a new socket is watched from
    before its connect, a reused one from the next request."""

    resolver: Resolver = SHARED
    response_class = _FinalResponse

    def _new_conn(self) -> socket.socket:
        return _new_conn(self, self.resolver)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _request(self, partial(super().request, *args, **kwargs))


class _WatchedHTTPSConnection(HTTPSConnection):
    resolver: Resolver = SHARED
    response_class = _FinalResponse

    def _new_conn(self) -> socket.socket:
        return _new_conn(self, self.resolver)  # before the handshake: it is watched too

    def request(self, *args: Any, **kwargs: Any) -> None:
        _request(self, partial(super().request, *args, **kwargs))


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


PoolClasses = dict[str, type[HTTPConnectionPool]]
_POOL_CLASSES: PoolClasses = {
    "http": _WatchedHTTPConnectionPool,
    "https": _WatchedHTTPSConnectionPool,
}


def _pool_classes(resolver: Resolver) -> PoolClasses:
    """The pool classes whose connections look names up with ``resolver``."""
    if resolver is SHARED:
        return _POOL_CLASSES
    http_connection = type("_HTTPConnection", (_WatchedHTTPConnection,), {"resolver": resolver})
    https_connection = type("_HTTPSConnection", (_WatchedHTTPSConnection,), {"resolver": resolver})
    return {
        "http": type(
            "_HTTPPool", (_WatchedHTTPConnectionPool,), {"ConnectionCls": http_connection}
        ),
        "https": type(
            "_HTTPSPool", (_WatchedHTTPSConnectionPool,), {"ConnectionCls": https_connection}
        ),
    }


@dataclass(frozen=True, slots=True)
class _Route:
    """How requests to one endpoint go: the pool to take a connection from, the path prefix of
    the endpoint, and whether the request line carries the whole URL (a forwarding HTTP proxy)."""

    pool: HTTPConnectionPool
    prefix: str
    forwarded: bool


ACCEPT_ENCODING = make_headers(accept_encoding=True)["accept-encoding"]
"""What the answer may be compressed with: what urllib3 can decode here (gzip, deflate, ...)."""


class ConnectionPools:
    """The kept-alive connections of one cluster, sent through urllib3's pools directly.

    What a ``requests.Session`` decided on every request (the proxy from the environment, the
    certificate rule, the pool) is decided here once per endpoint and certificate rule and kept:
    a request is then one ``urlopen`` on a kept pool, with no retries and no redirects of its own
    (the poller decides what to retry), its body left unread for the caller to read in chunks.
    The proxy variables are read when an endpoint is first used, with ``requests``' own rules
    (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY`` with hosts, domains and CIDRs);
    with no ``tls_ca_file``, ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` still name the CA bundle,
    as they did, and certifi's otherwise. No cookies are kept.
    """

    def __init__(self, pool_size: int, resolver: Resolver = SHARED) -> None:
        self._pool_size = pool_size
        self._pool_classes = _pool_classes(resolver)
        self._managers: dict[str, PoolManager] = {}
        self._routes: dict[tuple[str, bool | str], _Route] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConnectionPools(pool_size={self._pool_size})"

    def post(
        self,
        endpoint: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        verify: bool | str = True,
    ) -> BaseHTTPResponse:
        """POST ``body`` to ``endpoint`` + ``path``; the answer's body is left to the caller,
        who reads it (``stream``) and then calls ``release_conn`` (after ``close`` if it stops
        early: a connection with unread bytes is not kept)."""
        route = self._routes.get((endpoint, verify)) or self._route(endpoint, verify)
        target = endpoint + path if route.forwarded else route.prefix + path
        return route.pool.urlopen(
            "POST",
            target,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=timeout,
            preload_content=False,
            release_conn=False,
            decode_content=True,
        )

    def _route(self, endpoint: str, verify: bool | str) -> _Route:
        with self._lock:
            route = self._routes.get((endpoint, verify))
            if route is None:
                url = parse_url(endpoint)
                proxy = select_proxy(endpoint, get_environ_proxies(endpoint))
                manager = self._manager(proxy)
                pool = manager.connection_from_url(endpoint, pool_kwargs=_tls_kwargs(verify))
                forwarded = isinstance(manager, ProxyManager) and not (
                    connection_requires_http_tunnel(manager.proxy, manager.proxy_config, url.scheme)
                )
                route = _Route(pool, (url.path or "").rstrip("/"), forwarded)
                self._routes[(endpoint, verify)] = route
            return route

    def _manager(self, proxy: str | None) -> PoolManager:
        """The pool manager for direct connections (``proxy`` None) or through ``proxy``."""
        key = proxy or ""
        manager = self._managers.get(key)
        if manager is not None:
            return manager
        options: dict[str, Any] = {"num_pools": 4, "maxsize": self._pool_size, "block": False}
        if proxy is None:
            manager = PoolManager(**options)
        else:
            proxy = prepend_scheme_if_needed(proxy, "http")
            if not parse_url(proxy).host:
                raise LocationValueError(f"the proxy URL has no host: {proxy!r}")
            username, password = get_auth_from_url(proxy)
            if proxy.lower().startswith("socks"):
                manager = _socks_manager(proxy, username, password, options)
            else:
                headers = (
                    make_headers(proxy_basic_auth=f"{username}:{password}") if username else {}
                )
                manager = ProxyManager(proxy, proxy_headers=headers, **options)
        if not proxy or not proxy.lower().startswith("socks"):  # SOCKS pools have their own
            manager.pool_classes_by_scheme = self._pool_classes
        self._managers[key] = manager
        return manager

    def close(self) -> None:
        """Close every kept connection; a request after this opens new ones."""
        with self._lock:
            managers = list(self._managers.values())
            self._managers.clear()
            self._routes.clear()
        for manager in managers:
            manager.clear()


def _socks_manager(
    proxy: str, username: str | None, password: str | None, options: dict[str, Any]
) -> PoolManager:
    try:
        from urllib3.contrib.socks import SOCKSProxyManager
    except ImportError:
        raise LocationValueError(
            "a SOCKS proxy needs the PySocks package (pip install 'urllib3[socks]')"
        ) from None
    return SOCKSProxyManager(proxy, username=username, password=password, **options)


def _tls_kwargs(verify: bool | str) -> dict[str, Any]:
    """The pool options for ``verify`` (``tls_verify``): as ``requests`` set them."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE"}
    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or where()
    if os.path.isdir(verify):
        return {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": verify}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": verify}


def new_session(pool_size: int, resolver: Resolver = SHARED) -> ConnectionPools:
    """The connections of one cluster: up to ``pool_size`` kept alive per pool, proxies from
    the environment, names looked up by ``resolver`` (the process's shared one by default)."""
    return ConnectionPools(pool_size, resolver)


class Sender(Protocol):
    """What ``MilvusClient`` sends through: ``ConnectionPools``, or ``RequestsSender``."""

    def post(
        self,
        endpoint: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        verify: bool | str = True,
    ) -> BaseHTTPResponse: ...


class RequestsSender:
    """A ``requests.Session`` as a ``Sender``: what the unit tests of the client mock with
    ``responses``. The daemon and the commands send through ``ConnectionPools``."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def post(
        self,
        endpoint: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        verify: bool | str = True,
    ) -> BaseHTTPResponse:
        response = self._session.post(
            endpoint + path,
            data=body,
            headers=headers,
            timeout=(timeout.connect_timeout, timeout.read_timeout),  # type: ignore[arg-type]
            stream=True,
            allow_redirects=False,
            verify=verify,
        )
        return response.raw


def as_sender(session: Sender | requests.Session) -> Sender:
    return RequestsSender(session) if isinstance(session, requests.Session) else session


class TlsSettings(Protocol):
    """What of a cluster's config decides how its certificate is checked (``ClusterConfig``)."""

    @property
    def tls_insecure_skip_verify(self) -> bool: ...

    @property
    def tls_ca_file(self) -> str | None: ...


def tls_verify(cluster: TlsSettings) -> bool | str:
    """What the cluster's certificate is verified against: nothing (False), the CA bundle at
    this path, or the default bundle (True)."""
    if cluster.tls_insecure_skip_verify:
        return False
    return cluster.tls_ca_file or True
