"""HTTP basic auth against bcrypt hashes, as the exporter-toolkit's ``basic_auth_users``.

See ``BasicAuthChecker`` for the cache and timing decisions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
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
    """bcrypt checks with a small cache of successes and a decoy for unknown users.

    bcrypt costs ~50-100 ms at cost 10 by design, and Prometheus sends the same credentials on
    every scrape, so each accepted (user, password, hash) is remembered as a SHA-256 digest in a
    bounded LRU; the next scrape is a dictionary look-up. Only successes are cached, so a wrong
    password always pays the full bcrypt cost. Looking up a digest is not a timing leak: nobody
    without the password can produce a digest that shares a prefix with a cached one.

    A name that is not configured is still checked, against a decoy hash at the highest cost in
    use, so that the answer takes as long and does not reveal which users exist. bcrypt's own
    comparison is constant-time. Checks run one at a time, as in the exporter-toolkit: a burst of
    bad logins then costs one core, and cached scrapes never wait for that lock.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._accepted: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._decoys: dict[int, bytes] = {}

    def check(self, user: str, password: bytes, users: Mapping[str, str]) -> bool:
        # bcrypt reads only the first 72 bytes; htpasswd and Go hashed long passwords that way.
        password = password[:_BCRYPT_PASSWORD_LIMIT]
        hashed = users.get(user)
        if hashed is None:
            self._bcrypt(password, self._decoy(_highest_cost(users.values())))
            return False
        digest = _credential_digest(user, password, hashed)
        with self._cache_lock:
            if digest in self._accepted:
                self._accepted.move_to_end(digest)
                return True
        if not self._bcrypt(password, hashed.encode("ascii")):
            return False
        with self._cache_lock:
            self._accepted[digest] = None
            while len(self._accepted) > self._capacity:
                self._accepted.popitem(last=False)
        return True

    def _bcrypt(self, password: bytes, hashed: bytes) -> bool:
        with self._bcrypt_lock:
            try:
                return bcrypt.checkpw(password, hashed)
            except ValueError:  # a hash that was never validated (WebConfig built by hand)
                return False

    def _decoy(self, cost: int) -> bytes:
        with self._bcrypt_lock:
            if cost not in self._decoys:
                self._decoys[cost] = bcrypt.hashpw(b"decoy", bcrypt.gensalt(rounds=cost))
            return self._decoys[cost]


def _highest_cost(hashes: Iterable[str]) -> int:
    costs = [int(hashed[4:6]) for hashed in hashes if BCRYPT_HASH.match(hashed)]
    return max(costs, default=10)


def _credential_digest(user: str, password: bytes, hashed: str) -> bytes:
    digest = hashlib.sha256()
    for part in (user.encode("utf-8"), password, hashed.encode("ascii")):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(part)
    return digest.digest()
