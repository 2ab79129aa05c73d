"""What to poll: the config's clusters, their databases (named, or found by discovery), the
job kinds, and this replica's shard of them.

Pure functions of the config and what discovery listed, so the poller, ``check`` and the tests
agree on the target set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config.loader import ClusterConfig, Config
from ..kinds import AnyKind, kind_named

TargetKey = tuple[str, str, str]
"""(cluster name, database, kind)"""


@dataclass(frozen=True, slots=True)
class Target:
    """One (cluster, database, job kind): the unit that is up or down."""

    cluster: ClusterConfig
    database: str
    kind: str

    @property
    def key(self) -> TargetKey:
        return (self.cluster.name, self.database, self.kind)

    @property
    def job_kind(self) -> AnyKind:
        """The declaration of its kind (``UnknownKind`` for a name none declares)."""
        return kind_named(self.kind)

    @property
    def api(self) -> str:
        """The list it polls: its kind's, never another's."""
        return self.job_kind.endpoints.list


MAX_DATABASE_NAME_LENGTH = 255
"""Milvus refuses database names longer than this (``proxy.maxNameLength``, 255 by default):
a listed name past it is no database a job can be asked about, and would become a label (and
log lines) of any size: one listed name of 1 MB did."""


def targets_of(
    config: Config, listed: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[Target, ...]:
    """Every (cluster, database, kind) of this replica's shard: the databases named outright,
    then those a cluster's patterns match among what its last discovery ``listed``."""
    listed = listed or {}
    return tuple(
        Target(cluster, database, kind)
        for cluster in config.clusters
        for database in databases_of(
            cluster, listed.get(cluster.name, ()), config.max_discovered_databases
        )
        for kind in cluster.jobs
        if shard_of(cluster.name, database, kind, config.shard_count) == config.shard_index
    )


def databases_of(
    cluster: ClusterConfig, listed: Sequence[str], limit: int | None = None
) -> tuple[str, ...]:
    """The databases named outright, then those discovery found (``discovered_databases``)."""
    return (*cluster.database_names, *discovered_databases(cluster, listed, limit).polled)


@dataclass(frozen=True)
class DiscoveredDatabases:
    """What a cluster's patterns select among its listed databases, within the limits."""

    polled: tuple[str, ...]
    """Matched, in name order, at most ``max_discovered_databases``; not the named ones."""
    over_limit: int = 0
    """Matched, but past ``max_discovered_databases``: not polled."""
    too_long: int = 0
    """Matched, but longer than ``MAX_DATABASE_NAME_LENGTH``: not polled."""


def discovered_databases(
    cluster: ClusterConfig, listed: Sequence[str], limit: int | None = None
) -> DiscoveredDatabases:
    """The listed databases a pattern matches and no exclusion removes, in name order, up to
    ``limit`` (None: all); past it, and names longer than Milvus allows, are counted."""
    named = set(cluster.database_names)
    matched = sorted(
        database for database in listed if database not in named and cluster.matches(database)
    )
    sane = [database for database in matched if len(database) <= MAX_DATABASE_NAME_LENGTH]
    polled = sane if limit is None else sane[:limit]
    return DiscoveredDatabases(tuple(polled), len(sane) - len(polled), len(matched) - len(sane))


def limiter_rate(config: Config) -> float:
    """Requests per second per token and path for this replica: N replicas sharing a token each
    take 1/N of its limit, so together they stay under it."""
    return config.requests_per_second / config.shard_count


def shard_of(cluster: str, database: str, kind: str, count: int) -> int:
    """A stable shard for a target: the same on every replica, every run, every Python."""
    if count == 1:
        return 0
    digest = hashlib.sha256(f"{cluster}\x00{database}\x00{kind}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
