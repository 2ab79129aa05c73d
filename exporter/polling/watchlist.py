"""Why a target this exporter polled is no longer among its targets: the config, upstream, or
another shard.

Only two of these are evidence that the target's open alerts may resolve: the config no longer
names it (``config``: a cluster, a database or a kind removed, or a cluster renamed), or the
cluster's database discovery no longer lists its database (``dropped``). A target that moved to
another shard is still watched, by another replica; one whose cluster has not been discovered yet
since a restart is ``pending`` until discovery has spoken. A pure function of the config and of
discovery's last lists, so the model can judge a change without knowing how it came about
(reload, discovery, restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..config.loader import ClusterConfig, Config
from .targets import shard_of

Fate = Literal["watched", "moved", "pending", "config", "dropped"]
REMOVAL_CAUSES: tuple[Fate, ...] = ("config", "dropped")

TargetKey = tuple[str, str, str]


@dataclass(frozen=True)
class Watchlist:
    """Every target the config names, across every shard, given discovery's last lists.

    >>> from exporter.config.loader import ClusterConfig, Config
    >>> prod = ClusterConfig("prod", "http://x", "t", databases=("default", "prod_*"))
    >>> watchlist = Watchlist(Config(clusters=(prod,)), {"prod": ("prod_eu",)})
    >>> [watchlist.fate(("prod", db, "refresh")) for db in ("default", "prod_us", "other")]
    ['watched', 'dropped', 'config']
    """

    config: Config
    listed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each pattern cluster's databases at its last successful discovery (absent: none yet)."""

    def fate(self, key: TargetKey) -> Fate:
        """What became of a target: still this replica's, another shard's, or removed (why)."""
        name, database, kind = key
        cluster = self._cluster(name)
        if cluster is None or kind not in cluster.jobs:
            return "config"
        if database not in cluster.database_names:
            if not cluster.matches(database):
                return "config"
            listed = self.listed.get(name)
            if listed is None:
                return "pending"
            if database not in listed:
                return "dropped"
        if shard_of(name, database, kind, self.config.shard_count) == self.config.shard_index:
            return "watched"
        return "moved"

    def _cluster(self, name: str) -> ClusterConfig | None:
        return next((cluster for cluster in self.config.clusters if cluster.name == name), None)
