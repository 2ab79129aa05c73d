"""Which collections are confirmed gone upstream: the evidence that lets their alerts resolve.

The job lists cannot tell a collection that was dropped from one whose old jobs the server merely
forgot: either way its jobs stop being listed, and a dropped collection's jobs may even stay
listed for a day. ``collections/list`` can. A collection missing from a successful list of its
database, sent at ``listed_at``, is *confirmed gone* if everything the exporter knows of it is
older than ``listed_at``: the newest start or create time of its jobs, and when the exporter first
saw each of them. So a collection created after the list was sent, whose first job arrives before
the next list, is never taken for gone, even when the server's clock runs behind. (The first poll
of a target shows old and new jobs alike, so there "first seen" says nothing and only the jobs'
own times count; that is also what keeps a gone collection gone across a restart.)

A gone collection stays gone while its old jobs are listed; it comes back when a later list names
it again, or when a job of it appears that is newer than the list (the collection was created
again). A database the list answers "not found" (code 800) takes all its collections with it. A
list that failed, for any reason, is no evidence: nothing changes. What the model does with the
verdict (hide the jobs, forget the memory, count it) is in ``model.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping

from ..exposition import catalogue as m
from ..exposition.families import MetricFamily
from ..polling.snapshots import CollectionsListing

DatabaseKey = tuple[str, str]
CollectionKey = tuple[str, str, str]
NEVER = -math.inf


class CollectionEvidence:
    """Per watched database: the newest knowledge of each collection, the collections confirmed
    gone (with the send time of the list that showed it), and how the last list went."""

    def __init__(self) -> None:
        self._seen: dict[DatabaseKey, dict[str, float]] = {}
        self._gone: dict[DatabaseKey, dict[str, float]] = {}
        self._lists: dict[DatabaseKey, tuple[bool, float | None]] = {}
        """(the last list answered, send time of the last one that did)."""

    def saw(self, database: DatabaseKey, newest: Mapping[str, float]) -> None:
        """Take the newest knowledge of some collections of ``database`` into account."""
        seen = self._seen.setdefault(database, {})
        for collection, at in newest.items():
            if at > seen.get(collection, NEVER):
                seen[collection] = at

    def hides(self, database: DatabaseKey) -> bool:
        """Whether any collection of ``database`` is confirmed gone (the cheap check first)."""
        return bool(self._gone.get(database))

    def hidden(self, key: CollectionKey) -> bool:
        """Confirmed gone, and nothing newer than the list that showed it has been seen since."""
        gone = self._gone.get(key[:2])
        if not gone:
            return False
        gone_at = gone.get(key[2])
        return gone_at is not None and self._seen.get(key[:2], {}).get(key[2], NEVER) < gone_at

    def apply(self, listing: CollectionsListing, known: Iterable[str]) -> set[str]:
        """Take one list's answer; return the collections of its database now confirmed gone
        (``known``: the collections the exporter has jobs or memory of there)."""
        database = (listing.cluster, listing.database)
        answered = listing.ok or listing.database_gone
        _ok, last_success = self._lists.get(database, (False, None))
        self._lists[database] = (answered, listing.listed_at if answered else last_success)
        if not answered:
            return set()
        names = frozenset() if listing.database_gone else listing.names
        seen = self._seen.get(database, {})
        gone = self._gone.setdefault(database, {})
        for collection in gone.keys() & names:
            del gone[collection]
        for collection in {*known, *seen, *gone} - names:  # those named are not gone
            if seen.get(collection, NEVER) >= listing.listed_at:
                gone.pop(collection, None)
            else:
                gone[collection] = max(gone.get(collection, NEVER), listing.listed_at)
        return {collection for collection in gone if self.hidden((*database, collection))}

    def prune(
        self,
        listed: Mapping[DatabaseKey, set[str] | None],
        kept: Callable[[DatabaseKey], Collection[str]],
    ) -> None:
        """Keep only the watched databases (the keys of ``listed``). ``listed[database]`` is
        every collection with a job in the last good poll of each of its targets (None while a
        target has had none yet); a gone collection no longer listed there has nothing left to
        hide. Knowledge is kept for listed collections and those ``kept`` says are remembered
        in a database. What keeps everything (nearly always) is left as it is."""
        for table in (self._seen, self._gone, self._lists):
            for database in [database for database in table if database not in listed]:
                del table[database]
        for database, collections in listed.items():
            if collections is None:
                continue
            seen = self._seen.get(database)
            if seen and not seen.keys() <= collections:
                remembered = kept(database)
                self._seen[database] = {
                    name: at
                    for name, at in seen.items()
                    if name in collections or name in remembered
                }
            gone = self._gone.get(database)
            if gone and not gone.keys() <= collections:
                self._gone[database] = {
                    name: at for name, at in gone.items() if name in collections
                }

    def gone_items(self) -> list[tuple[CollectionKey, float]]:
        """The collections confirmed gone, for the state file."""
        return sorted(
            ((*database, name), at)
            for database, gone in self._gone.items()
            for name, at in gone.items()
        )

    def restore(self, items: Iterable[tuple[CollectionKey, float]]) -> None:
        for (cluster, database, collection), at in items:
            self._gone.setdefault((cluster, database), {}).setdefault(collection, at)

    def families(self) -> list[MetricFamily]:
        """Whether each watched database's last ``collections/list`` answered, and when the
        last one that did was sent."""
        up, last = m.COLLECTIONS_LIST_UP.family(), m.LAST_COLLECTIONS_LIST_SUCCESS.family()
        for (cluster, database), (answered, last_success) in sorted(self._lists.items()):
            labels = (("milvus_cluster", cluster), ("database", database))
            up.add(labels, 1.0 if answered else 0.0)
            if last_success is not None:
                last.add(labels, last_success)
        return [up, last]
