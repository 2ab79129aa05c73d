"""The immutable records the poller produces and the model reads.

They sit between the two on purpose: the model depends only on records, snapshots and families,
and never on the threaded HTTP code that fills them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..kinds.declaration import Job
from ..upstream.client import RequestRecord
from .targets import Target, TargetKey

if TYPE_CHECKING:
    from .describes import Backlog
    from .watchlist import Watchlist


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one poll of one target found; ``ok`` False means ``reason`` says why.

    ``skipped_records`` holds (reason, count, first message) for listed records that could not
    be read: they cost only themselves, the target stays up with the rest.

    The jobs, records of the target's kind, are those kept of what was listed (``kept.py``):
    ``collection_counts`` then holds every kept collection's listed jobs by state, and
    ``unkept`` the listed jobs left out by each limit. Without ``collection_counts`` the jobs
    are all that was listed.
    """

    target: Target
    polled_at: float
    ok: bool
    reason: str = ""
    message: str = ""
    jobs: tuple[Job, ...] = ()
    seconds: float = 0.0
    attempts: int = 1
    skipped_records: tuple[tuple[str, int, str], ...] = ()
    collection_counts: Mapping[str, Mapping[str, int]] | None = None
    unkept: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    cluster: str
    record: RequestRecord


@dataclass(frozen=True)
class CycleResult:
    """Everything one round learned, handed to the model in one piece."""

    targets: tuple[Target, ...]
    snapshots: tuple[Snapshot, ...]
    requests: tuple[ClusterRequest, ...]
    started_at: float
    seconds: float
    follow_ups: tuple[tuple[TargetKey, Any], ...] = ()
    """(target key, details): the answers of the follow-ups of listed jobs (``import/describe``),
    as their kind's ``FollowUp.read`` read them."""
    late: tuple[TargetKey, ...] = ()
    """Targets that had not answered when the round ended (still running or still queued)."""
    discoveries: tuple[DiscoveryOutcome, ...] = ()
    """Database discoveries that ended during the round."""
    targets_changed: bool = False
    """A discovery changed the targets: the next round polls a different set."""
    discovery_clusters: tuple[str, ...] = ()
    """The clusters whose databases are found by discovery (their ``databases`` hold patterns)."""
    collection_lists: tuple[CollectionsListing, ...] = ()
    """``collections/list`` answers (and failures) that ended during the round."""
    watchlist: Watchlist | None = None
    """What the config names across every shard at the end of the round, to tell a target
    removed by config or by discovery from one that moved shard; None: not known (tests)."""
    describe_backlog: tuple[Backlog, ...] = ()
    """Per (cluster, kind) whose follow-up is on: due jobs the round left undescribed."""


@dataclass(frozen=True, slots=True)
class DiscoveryOutcome:
    """One ``databases/list`` call for a cluster whose ``databases`` hold patterns."""

    cluster: str
    at: float
    ok: bool
    matched: tuple[str, ...] = ()
    """The listed databases that a pattern matches and no exclusion removes, that are polled."""
    reason: str = ""
    message: str = ""
    over_limit: int = 0
    """Matched databases past ``max_discovered_databases``: not polled."""
    too_long: int = 0
    """Matched database names longer than Milvus allows: not polled."""


@dataclass(frozen=True, slots=True)
class CollectionsListing:
    """One ``collections/list`` call for a watched database: evidence of what is gone upstream.

    ``listed_at`` is when the request was sent (Unix time): the list says nothing of what was
    created after it. ``database_gone`` is the answer "database not found" (code 800); any other
    failure (``ok`` False) is no evidence at all.
    """

    cluster: str
    database: str
    listed_at: float
    ok: bool
    names: frozenset[str] = frozenset()
    database_gone: bool = False
    reason: str = ""
