"""HTTP sessions for the job API: one factory, one TLS rule, and deadlines that hold.

``requests`` bounds each socket read, never a whole answer, so a server that trickles bytes can
hold a request for ever. Every connection made through ``new_session`` reports its socket to the
``Watch`` of the exchange running in the current thread (see ``watched``), and the watchdog shuts
that socket down when the exchange's deadline passes, wherever the request then is: connecting,
the TLS handshake, the status line, headers or body.

The configured token always goes out as ``Authorization: Bearer``: an explicit auth object also
stops ``requests`` from taking Basic credentials for the host from ``~/.netrc``, which used to
replace the token. Proxy variables (``HTTPS_PROXY``, ``NO_PROXY``) keep working.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .config import ClusterConfig
from .watchdog import Watch, Watchdog

_current = threading.local()


@contextmanager
def watched(watchdog: Watchdog | None, deadline: float) -> Iterator[Watch]:
    """Hold every socket this thread uses inside the block to ``deadline`` (watchdog clock)."""
    watch = watchdog.watch(deadline) if watchdog is not None else Watch(deadline)
    previous = getattr(_current, "watch", None)
    _current.watch = watch
    try:
        yield watch
    finally:
        _current.watch = previous
        watch.release()


def _attach(sock: Any) -> None:
    watch: Watch | None = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        watch.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """A new socket is watched from its first byte; a reused one from the next request."""

    def _new_conn(self) -> Any:
        sock = super()._new_conn()
        _attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> Any:
        sock = super()._new_conn()
        _attach(sock)  # before the handshake: a trickled handshake is held to the deadline too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOL_CLASSES = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools (direct and through an HTTP proxy) make watched connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools have classes of their own
            manager.pool_classes_by_scheme = _POOL_CLASSES
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


def new_session(pool_size: int) -> requests.Session:
    """A session for one cluster: up to ``pool_size`` kept-alive connections, no retries of its
    own (the poller decides what to retry), proxies from the environment."""
    session = requests.Session()
    session.trust_env = True
    adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def tls_verify(cluster: ClusterConfig) -> bool | str:
    """What ``requests`` should verify the cluster's certificate against."""
    if cluster.tls_insecure_skip_verify:
        return False
    return cluster.tls_ca_file or True
