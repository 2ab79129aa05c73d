"""What to poll: the config's clusters, their databases (named, or found by discovery), the
job kinds, and this replica's shard of them.

Pure functions of the config and what discovery listed, so the poller, ``check`` and the tests
agree on the target set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .config import ClusterConfig, Config
from .snapshots import Target


def targets_of(
    config: Config, listed: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[Target, ...]:
    """Every (cluster, database, kind) of this replica's shard: the databases named outright,
    then those a cluster's patterns match among what its last discovery ``listed``."""
    listed = listed or {}
    return tuple(
        Target(cluster, database, kind)
        for cluster in config.clusters
        for database in databases_of(cluster, listed.get(cluster.name, ()))
        for kind in cluster.jobs
        if shard_of(cluster.name, database, kind, config.shard_count) == config.shard_index
    )


def databases_of(cluster: ClusterConfig, listed: tuple[str, ...]) -> tuple[str, ...]:
    named = cluster.database_names
    found = sorted(database for database in listed if cluster.matches(database))
    return (*named, *(database for database in found if database not in named))


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
