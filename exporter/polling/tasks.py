"""The units of work of a poll round: one request to make (a task) and one round's harvest.

A task is a list poll of a target (it decides whether the target answered) or a follow-up that
costs only itself when it fails: its kind's follow-up of a listed job (``import/describe``), a
``databases/list``
of a pattern cluster (discovery), a ``collections/list`` of a watched database (the evidence
that a collection is gone). Each names the API path it takes a rate-limit slot on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..upstream.client import COLLECTIONS_LIST, DATABASES_LIST
from ..upstream.ratelimit import Slot
from .snapshots import CollectionsListing, DiscoveryOutcome, Snapshot
from .targets import Target, TargetKey


@dataclass
class PollTask:
    target: Target
    attempts: int = 0
    not_before: float = 0.0
    started: float = 0.0
    describe_job_id: str | None = None
    """Set for the follow-up (``FollowUp``) of a listed job; None for the list itself."""
    place: tuple[bool, float, bool] = (False, 0.0, False)
    """A follow-up's place in line, lowest first (``describes.Due.order``)."""
    discover: bool = False
    """A ``databases/list`` call for ``target.cluster`` (its database and kind are unused)."""
    list_collections: bool = False
    """A ``collections/list`` call for ``target``'s database (its kind is unused)."""
    slot: Slot | None = None
    """The rate-limit slot the scheduler took for the attempt's first request: marked sent when
    its bytes are written, released when the attempt ends (``ratelimit.Slot``)."""

    @property
    def is_list(self) -> bool:
        """A poll of a target (not a follow-up): it decides whether the target answered."""
        return self.describe_job_id is None and not self.discover and not self.list_collections

    @property
    def is_bonus(self) -> bool:
        """A follow-up that never waits a round nor stretches one: it is dropped instead."""
        return self.describe_job_id is not None or self.list_collections

    @property
    def priority(self) -> int:
        """Lists first, then discoveries, then the bonus requests."""
        return 0 if self.is_list else 1 if self.discover else 2

    @property
    def api(self) -> str:
        if self.discover:
            return DATABASES_LIST
        if self.list_collections:
            return COLLECTIONS_LIST
        if self.describe_job_id is None:
            return self.target.api
        follow_up = self.target.job_kind.follow_up
        assert follow_up is not None, "a follow-up of a kind that declares none"
        return follow_up.api


@dataclass
class PollRound:
    deadline: float
    targets: tuple[Target, ...]
    waiting: set[TargetKey]
    snapshots: list[Snapshot] = field(default_factory=list)
    late: list[TargetKey] = field(default_factory=list)
    discoveries: list[DiscoveryOutcome] = field(default_factory=list)
    collection_lists: list[CollectionsListing] = field(default_factory=list)


def log_fields(target: Target) -> dict[str, str]:
    return {"cluster": target.cluster.name, "database": target.database, "kind": target.kind}
