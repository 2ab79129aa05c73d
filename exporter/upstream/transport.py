"""HTTP sessions for the job API: one factory, one TLS rule, and deadlines that hold.

``requests`` bounds each socket read, never a whole answer, so a server that trickles bytes can
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

The configured token always goes out as ``Authorization: Bearer``: an explicit auth object also
stops ``requests`` from taking Basic credentials for the host from ``~/.netrc``, which used to
replace the token. Proxy variables (``HTTPS_PROXY``, ``NO_PROXY``) keep working: the connection
made here is to the next hop, the proxy when there is one.
"""

from __future__ import annotations

import http.client
import math
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
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

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


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools (direct and through an HTTP proxy) make watched connections."""

    def __init__(self, pool_classes: PoolClasses, **kwargs: Any) -> None:
        self._pool_classes = pool_classes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have classes of their own
            manager.pool_classes_by_scheme = self._pool_classes
        return manager


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, or no header at all without a token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers.pop("Authorization", None)
        return request


def new_session(pool_size: int, resolver: Resolver = SHARED) -> requests.Session:
    """A session for one cluster: up to ``pool_size`` kept-alive connections, no retries of its
    own (the poller decides what to retry), proxies from the environment, names looked up by
    ``resolver`` (the process's shared one by default)."""
    session = requests.Session()
    session.trust_env = True
    adapter = _WatchedAdapter(
        _pool_classes(resolver), pool_connections=4, pool_maxsize=pool_size, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class TlsSettings(Protocol):
    """What of a cluster's config decides how its certificate is checked (``ClusterConfig``)."""

    @property
    def tls_insecure_skip_verify(self) -> bool: ...

    @property
    def tls_ca_file(self) -> str | None: ...


def tls_verify(cluster: TlsSettings) -> bool | str:
    """What ``requests`` should verify the cluster's certificate against."""
    if cluster.tls_insecure_skip_verify:
        return False
    return cluster.tls_ca_file or True
