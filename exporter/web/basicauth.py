"""HTTP basic auth against bcrypt hashes, as the exporter-toolkit's ``basic_auth_users``.

See ``BasicAuthChecker`` for the cache and timing decisions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import bcrypt

AUTH_CACHE_SIZE = 128
"""How many accepted (user, password, hash) digests are remembered; a few scrapers need a few."""

_BCRYPT_PASSWORD_LIMIT = 72
_MAX_AUTHORIZATION_LENGTH = 4096
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


def parse_basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    """``Basic base64(user:password)`` as (user, password bytes); None for anything else.

    The password stays bytes: bcrypt compares bytes, and decoding could only lose a match.
    """
    if not header or len(header) > _MAX_AUTHORIZATION_LENGTH:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


class BasicAuthChecker:
    """bcrypt checks with a small cache of successes, and failures that all take as long.

    bcrypt costs ~50-100 ms at cost 10 by design, and Prometheus sends the same credentials on
    every scrape, so each accepted (user, password, hash) is remembered as a SHA-256 digest in a
    bounded LRU; the next scrape is a dictionary look-up. Only successes are cached, so a wrong
    password always pays the full bcrypt cost. Looking up a digest is not a timing leak: nobody
    without the password can produce a digest that shares a prefix with a cached one.

    A failed check takes as long as a bcrypt check at the highest cost in use, whoever is asked
    for: a name that is not configured is checked against a decoy hash at that cost, and a
    wrong password of a user whose hash is cheaper is followed by a wait that makes up the
    difference (the decoy checks keep the measure of that cost current). Without the wait, users
    of different costs gave themselves away: 238 ms for an unknown name, 67 ms for a wrong
    password of a cost-10 user next to a cost-12 one. bcrypt's own comparison is constant-time.
    Checks run one at a time, as in the exporter-toolkit: a burst of bad logins then costs one
    core, and cached scrapes never wait for that lock; the making-up wait is outside the lock.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._accepted: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._decoys: dict[int, bytes] = {}
        self._seconds_by_cost: dict[int, float] = {}
        """How long one check took at each cost lately (for the making-up wait)."""

    def check(self, user: str, password: bytes, users: Mapping[str, str]) -> bool:
        # bcrypt reads only the first 72 bytes; htpasswd and Go hashed long passwords that way.
        password = password[:_BCRYPT_PASSWORD_LIMIT]
        hashed = users.get(user)
        highest = _highest_cost(users.values())
        if hashed is None:
            self._bcrypt(password, self._decoy(highest), highest)
            return False
        digest = _credential_digest(user, password, hashed)
        with self._cache_lock:
            if digest in self._accepted:
                self._accepted.move_to_end(digest)
                return True
        cost = _cost(hashed)
        accepted, seconds = self._bcrypt(password, hashed.encode("ascii"), cost)
        if not accepted:
            self._make_up_for(cost, highest, seconds)
            return False
        with self._cache_lock:
            self._accepted[digest] = None
            while len(self._accepted) > self._capacity:
                self._accepted.popitem(last=False)
        return True

    def _bcrypt(self, password: bytes, hashed: bytes, cost: int | None) -> tuple[bool, float]:
        """(accepted, seconds bcrypt took, the wait for the lock left out)."""
        with self._bcrypt_lock:
            started = time.perf_counter()
            try:
                accepted = bcrypt.checkpw(password, hashed)
            except ValueError:  # a hash that was never validated (WebConfig built by hand)
                accepted = False
            seconds = time.perf_counter() - started
            if cost is not None:
                known = self._seconds_by_cost.get(cost)
                self._seconds_by_cost[cost] = seconds if known is None else 0.5 * (known + seconds)
        return accepted, seconds

    def _make_up_for(self, cost: int | None, highest: int, seconds: float) -> None:
        """Wait out the difference between this failed check and one at the highest cost."""
        if cost is not None and cost >= highest:
            return
        self._decoy(highest)  # made once; making it measures the cost when nothing else has
        reference = self._seconds_by_cost.get(highest, 0.0)
        if reference > seconds:
            time.sleep(reference - seconds)

    def _decoy(self, cost: int) -> bytes:
        with self._bcrypt_lock:
            if cost not in self._decoys:
                started = time.perf_counter()
                self._decoys[cost] = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=cost))
                self._seconds_by_cost.setdefault(cost, time.perf_counter() - started)
            return self._decoys[cost]


def _cost(hashed: str) -> int | None:
    return int(hashed[4:6]) if BCRYPT_HASH.match(hashed) else None


def _highest_cost(hashes: Iterable[str]) -> int:
    costs = [cost for cost in map(_cost, hashes) if cost is not None]
    return max(costs, default=10)


def _credential_digest(user: str, password: bytes, hashed: str) -> bytes:
    digest = hashlib.sha256()
    for part in (user.encode("utf-8"), password, hashed.encode("ascii")):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(part)
    return digest.digest()
