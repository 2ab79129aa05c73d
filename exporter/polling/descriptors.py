"""How many descriptors the poller may hold, so the HTTP server always has some left.

Every upstream request holds a socket, and every cluster's session keeps its idle connections
for reuse. Under a low ``RLIMIT_NOFILE`` (a container runtime's default, a ``ulimit -n`` in a
unit file) the poller used to take every descriptor there was: with 64 requests allowed at once
and answers trickling, a limit of 48 made about every second scrape of ``/metrics`` time out,
``accept()`` failing with EMFILE. So the poller's share is what the soft limit leaves once the
descriptors already open and a reserve for the listener are set aside: requests in flight at
most half of it, and each cluster's kept-alive connections a part of the rest. When that is
fewer requests at once than ``max_concurrent_requests`` asks for, the poller says so once at
start (``poll.descriptors_limited``) and runs with fewer.

    >>> budget = upstream_budget(config_with_one_cluster, soft_limit=48, in_use=13)
    >>> budget.concurrency, budget.pool_size
    (5, 6)
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from ..config.loader import Config

LISTENER_RESERVE = 16
"""Descriptors kept for the HTTP server's connections: scrapes by an HA pair of Prometheus
servers, the probes, a reload, a curl, with room to spare."""

SPARE = 8
"""Descriptors opened now and then beside both: the listening socket (bound after the poller
is made), the state file and its temporary, a token file read on reload."""

UNKNOWN_IN_USE = 16
"""Descriptors assumed open when ``/proc/self/fd`` cannot be read."""


@dataclass(frozen=True)
class UpstreamBudget:
    """Requests in flight at once and kept-alive connections per cluster."""

    concurrency: int
    pool_size: int
    limited: bool
    """True when ``concurrency`` is below the configured ``max_concurrent_requests``."""
    soft_limit: int
    reserved: int = LISTENER_RESERVE + SPARE

    @property
    def warning(self) -> str:
        return (
            f"the descriptor limit (ulimit -n) of {self.soft_limit} leaves room for "
            f"{self.concurrency} upstream requests at once ({self.reserved} are kept for the "
            "HTTP server): raise the limit, or lower max_concurrent_requests to silence this"
        )


def open_descriptors() -> int:
    """Descriptors this process has open now (a guess where ``/proc`` is not mounted)."""
    try:
        return max(0, len(os.listdir("/proc/self/fd")) - 1)  # less listdir's own
    except OSError:
        return UNKNOWN_IN_USE


def upstream_budget(
    config: Config, soft_limit: int | None = None, in_use: int | None = None
) -> UpstreamBudget:
    """The poller's share of ``soft_limit`` (default: this process's ``RLIMIT_NOFILE``), with
    ``in_use`` descriptors already open (default: counted now)."""
    wanted = config.max_concurrent_requests
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit < 0:
        return UpstreamBudget(wanted, wanted, False, soft_limit)
    if in_use is None:
        in_use = open_descriptors()
    clusters = max(1, len(config.clusters))
    available = soft_limit - in_use - LISTENER_RESERVE - SPARE
    if available >= wanted * (1 + clusters):  # room for the worst case: nothing to cap
        return UpstreamBudget(wanted, wanted, False, soft_limit)
    concurrency = max(1, min(wanted, available // 2))
    pool_size = max(1, min(wanted, (available - concurrency) // clusters))
    return UpstreamBudget(concurrency, pool_size, concurrency < wanted, soft_limit)
