"""Name resolution that never holds its caller past the caller's deadline.

``socket.getaddrinfo`` takes no timeout and cannot be interrupted: behind a resolver that never
answers, the C library retries for as long as ``/etc/resolv.conf`` says (minutes, with some
options), and the calling thread waits all that time. Measured before this module: one cluster
whose resolver never answered held every poll worker, left a healthy cluster on another token
15 s stale at a 3 s poll interval, and made SIGTERM wait for the lookups to give up.

So every lookup runs on a thread of the ``Resolver``'s own, and the caller waits for it only as
long as its deadline allows. The resolver's threads are bounded three ways:

- one lookup per name at a time: callers asking for the same name while it is pending share it;
- a name whose pending lookup a caller already gave up on is *stuck*: later callers fail at
  once instead of each waiting their whole deadline again, until that lookup ends;
- at most ``max_pending`` lookups at once; beyond, a caller fails at once (``ResolverBusy``).

The threads are daemon threads: a lookup that never returns never delays the process's exit.

    resolver = Resolver()
    infos = resolver.resolve("in01-abc.zillizcloud.com", 443, socket.AF_UNSPEC, timeout=2.0)
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AddressInfo = tuple[Any, ...]
"""One ``getaddrinfo`` entry: (family, type, proto, canonname, sockaddr)."""

Lookup = Callable[[str, int, int, int], list[AddressInfo]]

DEFAULT_MAX_PENDING = 32
"""Lookups in flight at once across every name: each stuck one keeps a thread (a few hundred
KB of memory), never a poll worker."""

STUCK_AFTER_SECONDS = 1.0
"""A lookup given up on after running this long marks its name stuck; one given up on sooner
(a caller with almost no time left) says nothing about the resolver."""


class ResolutionError(OSError):
    """A name could not be resolved in time, or at all. ``str`` is one line for a log."""


class ResolutionTimeout(ResolutionError):
    """The resolver did not answer within the caller's time."""


class ResolverBusy(ResolutionError):
    """Too many lookups are already pending (stuck): failing now is better than queueing."""


@dataclass
class _Pending:
    started: float
    waiters: list[threading.Event] = field(default_factory=list)
    abandoned: bool = False
    """A caller's deadline passed while waiting: the name counts as stuck until the lookup ends."""
    result: list[AddressInfo] | None = None
    error: str | None = None
    """Why the lookup failed (a new ``ResolutionError`` is raised for each caller)."""
    done: bool = False


class Resolver:
    """``getaddrinfo`` on threads of its own, waited for no longer than the caller may wait."""

    def __init__(
        self,
        max_pending: int = DEFAULT_MAX_PENDING,
        lookup: Lookup | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_pending = max_pending
        self._lookup = lookup or _getaddrinfo
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int, int], _Pending] = {}

    @property
    def pending(self) -> int:
        """Lookups still running (stuck ones included)."""
        with self._lock:
            return len(self._pending)

    def resolve(
        self,
        host: str,
        port: int,
        family: int,
        timeout: float,
        wake: Callable[[Callable[[], None]], None] | None = None,
    ) -> list[AddressInfo]:
        """The addresses of ``host`` (stream sockets), or ``ResolutionError`` within ``timeout``.

        ``wake``, if given, registers a callback that ends the wait early (the exchange's
        watch firing at shutdown); the wait then ends with ``ResolutionTimeout`` too.
        """
        if _is_address(host):  # nothing to look up: getaddrinfo answers at once, no thread
            try:
                return self._lookup(host, port, family, socket.SOCK_STREAM)
            except (OSError, UnicodeError, ValueError) as failure:
                raise ResolutionError(f"cannot use address {host!r}: {failure}") from None
        key = (host, port, family)
        woken = threading.Event()
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and pending.abandoned:
                waited = self._clock() - pending.started
                raise ResolutionTimeout(
                    f"no answer from the resolver for {host!r} for {waited:.1f}s (a lookup is "
                    "still pending)"
                )
            if pending is None:
                if len(self._pending) >= self._max_pending:
                    raise ResolverBusy(
                        f"cannot resolve {host!r}: {len(self._pending)} lookups are already "
                        "pending (the resolver is not answering)"
                    )
                pending = _Pending(started=self._clock())
                self._pending[key] = pending
                threading.Thread(
                    target=self._run, args=(key, pending), name="resolve", daemon=True
                ).start()
            pending.waiters.append(woken)
        if wake is not None:
            wake(woken.set)
        woken.wait(max(0.0, timeout))
        with self._lock:
            if pending.done:
                if pending.error is not None:
                    raise ResolutionError(pending.error)
                return list(pending.result or ())
            if self._clock() - pending.started >= STUCK_AFTER_SECONDS:
                pending.abandoned = True
            if woken in pending.waiters:
                pending.waiters.remove(woken)
        raise ResolutionTimeout(f"no answer from the resolver for {host!r} within {timeout:.1f}s")

    def _run(self, key: tuple[str, int, int], pending: _Pending) -> None:
        host, port, family = key
        result: list[AddressInfo] | None = None
        error: str | None = None
        try:
            result = self._lookup(host, port, family, socket.SOCK_STREAM)
        except socket.gaierror as failure:
            error = f"cannot resolve {host!r}: {failure.strerror or failure}"
        except (OSError, UnicodeError, ValueError) as failure:
            error = f"cannot resolve {host!r}: {failure}"
        if result is not None and not result:
            result, error = None, f"cannot resolve {host!r}: no addresses"
        with self._lock:
            pending.result, pending.error, pending.done = result, error, True
            self._pending.pop(key, None)
            waiters, pending.waiters = pending.waiters, []
        for waiter in waiters:
            waiter.set()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone ("fe80::1%eth0") is fine
    except ValueError:
        return False
    return True


def _getaddrinfo(host: str, port: int, family: int, kind: int) -> list[AddressInfo]:
    return socket.getaddrinfo(host, port, family, kind)


SHARED = Resolver()
"""The process's resolver: every session shares it, so a reload never multiplies stuck lookups."""
