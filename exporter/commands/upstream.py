"""The configured clusters as the operator commands reach them: the daemon's path, not a copy.

A command talks to a cluster exactly the way ``serve`` does: the connection pools of
``transport.new_session`` (watched sockets), the certificate rule of
``transport.tls_verify``, the ``MilvusClient`` with its whole-exchange deadlines held by a
``Watchdog``, the per-(credential, API path) ``SlidingWindowLimiter``, and the retry policy of
``exporter.upstream.retry``. The limiter's window lives in this process: it keeps one command within the
limit, not a command and a running daemon together, which is why a command makes few requests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..config.loader import ClusterConfig, Config
from ..config.reader import suggest
from ..guards.watchdog import Watchdog
from ..kinds import kind_named
from ..upstream.client import ApiError, MilvusClient, RequestRecord
from ..upstream.ratelimit import SlidingWindowLimiter, Slot
from ..upstream.retry import RetryIf, is_temporary, retry_delay
from ..upstream.transport import ConnectionPools, new_session, tls_verify
from .errors import EXIT_USAGE, CommandError

T = TypeVar("T")


def is_not_found(error: ApiError, kind: str) -> bool:
    """Whether ``error`` says the ``kind`` job asked about does not exist (any more): one of
    the codes its declaration names (``Endpoints.not_found``: 1100 for a refresh job, 2100 or
    2101 for an import or restore job, 1802 where documents and older simulators used it).
    Each kind's codes are read only for that kind: 1100 about an import job would be some other
    invalid parameter, not a missing job."""
    return error.reason in kind_named(kind).endpoints.not_found


def not_found_line(cluster: ClusterConfig, kind: str, job_id: str | int, error: ApiError) -> str:
    """The one line for a job the server does not know, the same shape for every kind, with
    the server's own words in parentheses."""
    return f"{cluster.name}: {kind} job {job_id} not found ({error.message})"


class Upstream:
    """The configured clusters, reached with the daemon's credentials, limits and retries.

    One per command run: ``close`` stops its watchdog thread and closes every session.
    """

    def __init__(
        self,
        config: Config,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.limiter = SlidingWindowLimiter(config.requests_per_second)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._sessions: list[ConnectionPools] = []
        self._clients: dict[str, MilvusClient] = {}
        self._lock = threading.Lock()
        self._watchdog = Watchdog(name="operator-watchdog")

    def client(self, cluster: ClusterConfig) -> MilvusClient:
        """One client (and connection pool) per cluster, shared by the threads of ``jobs list``."""
        with self._lock:
            return self._client_locked(cluster)

    def _client_locked(self, cluster: ClusterConfig) -> MilvusClient:
        client = self._clients.get(cluster.name)
        if client is None:
            session = new_session(self.config.max_concurrent_requests)
            self._sessions.append(session)
            key = cluster.credential_id

            def gate(api: str) -> Slot:
                return self.limiter.take((key, api))

            def observe(record: RequestRecord) -> None:
                if record.outcome == "rate_limited":
                    self.limiter.pause((key, record.api), 1.0)

            client = MilvusClient(
                cluster.endpoint,
                cluster.token,
                session,
                self.config.request_timeout,
                gate=gate,
                observe=observe,
                max_response_bytes=self.config.max_response_bytes,
                verify=tls_verify(cluster),
                watchdog=self._watchdog,
                secrets=self.config.secrets,
            )
            self._clients[cluster.name] = client
        return client

    def call(
        self,
        cluster: ClusterConfig,
        action: Callable[[MilvusClient], T],
        *,
        retry_if: RetryIf = is_temporary,
        retries: int | None = None,
    ) -> T:
        """``action(client)``, retried by the daemon's policy while ``retry_if`` allows.

        ``retries`` (default ``max_retries`` from the config) bounds the retries; 0 means one
        attempt, for callers whose next look is already the retry.
        """
        limit = self.config.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return action(self.client(cluster))
            except ApiError as error:
                attempt += 1
                delay = retry_delay(error, attempt, limit, self._rng, retry_if)
                if delay is None:
                    raise
                self._sleep(delay)

    def close(self) -> None:
        self._watchdog.stop()
        for session in self._sessions:
            session.close()


def find_cluster(config: Config, name: str) -> ClusterConfig:
    """The configured cluster called ``name``, or a usage error with a did-you-mean."""
    for cluster in config.clusters:
        if cluster.name == name:
            return cluster
    names = tuple(cluster.name for cluster in config.clusters)
    raise CommandError(
        f"--cluster {name!r}: no such cluster in {config.source}{suggest(name, names)}; "
        f"configured: {', '.join(names)}",
        EXIT_USAGE,
    )
