"""The simulator as tests and the CLI see it: one world, its transport rules and control hooks.

`Simulator.handle` is the whole request pipeline (auth, rate limit, JSON, faults, endpoint) as a
plain function of the request, so the HTTP handler in `server.py` only moves bytes. Where the
two flavours differ in that pipeline (which paths are rate limited and how, what an unknown path
answers) `FlavorRules` decides.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import replace

from . import reply
from .api import API_PATHS, REFRESH_START, Api, Call
from .control import CONTROL_PREFIX, control_reply
from .faults import Fault, FaultContext, FaultTable, is_replacing, replacement, reshape
from .fields import CODE_BAD_FORMAT
from .flavor import FlavorRules, rules_for
from .options import RequestRecord, SimulatorOptions
from .ratelimit import SlidingWindowLimiter
from .reply import TEXT, Reply
from .server import SimulatorServer, serve
from .world import World

MAX_LOGGED_REQUESTS = 100_000
CODE_NOT_AUTHENTICATED = 1800
GO_NOT_FOUND = b"404 page not found"


class Simulator:
    """A fake Milvus / Zilliz Cloud job API, deterministic for a given seed and clock.

    Example::

        sim = Simulator(SimulatorOptions(seed=7, time_scale=60, flavor="milvus"))
        with sim.serve("127.0.0.1", 0) as server:
            job_id = sim.start_refresh("default", "ext_books", outcome="failed")
            ...  # poll server.url with "Authorization: Bearer demo-token"
    """

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        self.rules: FlavorRules = rules_for(self.options)
        self._clock = self.options.clock
        self._start = self._clock()
        uri_sources = not self.rules.json_external_source
        self._world = World(self.options, epoch_start=self._start, uri_sources=uri_sources)
        self._api = Api(self._world, self.rules)
        self._faults = FaultTable()
        self._limiter = SlidingWindowLimiter(self.options.requests_per_second)
        self._log_lock = threading.Lock()
        self._log: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)

    # -- serving ------------------------------------------------------------------------------

    def now(self) -> float:
        """The options clock: what request arrivals are stamped with."""
        return self._clock()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Start answering on host:port (0 picks a free port) in a daemon thread."""
        return serve(self, host, port)

    def handle(
        self,
        method: str,
        path: str,
        authorization: str | None,
        body: bytes,
        arrival: float | None = None,
        database_header: str | None = None,
        received_ago: float = 0.0,
    ) -> Reply:
        """Answer one HTTP request; `path` excludes the query string.

        `arrival` is when the request line came in (the server stamps it before reading headers
        and body); it defaults to now. `received_ago` is how long before that the request
        reached the host (the kernel's receive time): the rate limit and the request log count
        the request then, as a server's gateway would, while the world answers as of `arrival`.
        `database_header` is the ``DB-Name`` header, which the Milvus flavour reads.
        """
        if path.startswith(CONTROL_PREFIX):
            return control_reply(self, method, path, body)
        if arrival is None:
            arrival = self._clock()
        received = arrival - received_ago
        token = _bearer_token(authorization)
        database: str | None = None
        answer: Reply
        if path not in API_PATHS:
            answer = self._not_found(path)
        elif method != "POST":
            message = f"method {method} not allowed, use POST"
            answer = replace(
                reply.json_reply({"code": 405, "message": message}, 405),
                headers=(("Allow", "POST"),),
            )
        elif token not in self.options.tokens:
            answer = reply.error(CODE_NOT_AUTHENTICATED, "user hasn't authenticated", 401)
        elif self._limited(path) and not self._limiter.admit(token, path, received):
            answer = self._rate_limited(retry_after=1)
        else:
            call_time = self._simulated(arrival)
            database, answer = self._answer(path, body, call_time, database_header)
        if self.options.latency_seconds > 0:
            delay = answer.delay_seconds + self.options.latency_seconds
            answer = replace(answer, delay_seconds=delay)
        self._record(RequestRecord(received, token, path, database, answer.status, answer.code))
        return answer

    def _answer(
        self, path: str, body: bytes, now: float, database_header: str | None
    ) -> tuple[str | None, Reply]:
        try:
            request = json.loads(body)
        except ValueError as problem:
            message = f"can only accept json format request, error: {problem}"
            return None, reply.error(CODE_BAD_FORMAT, message)
        if not isinstance(request, dict):
            message = "can only accept json format request, error: body is not a JSON object"
            return None, reply.error(CODE_BAD_FORMAT, message)
        call = Call(request, now, database_header)
        database = self._api.database_of(path, call)
        fault = self._faults.match(database, path)
        if fault is not None and is_replacing(fault):
            context = FaultContext(
                database,
                path,
                self.rules.rate_limit_style,
                self.rules.rate_limit_text(self.options.requests_per_second),
            )
            return database, replacement(fault, context)
        answer = self._api.answer(path, call)
        if fault is not None:
            answer = reshape(fault, answer, path)
        return database, answer

    def _limited(self, path: str) -> bool:
        """Zilliz Cloud limits every endpoint; a self-hosted Milvus only the refresh trigger."""
        return self.rules.rate_limit_scope == "every_endpoint" or path == REFRESH_START

    def _rate_limited(self, retry_after: int) -> Reply:
        limit = self.options.requests_per_second
        message = self.rules.rate_limit_text(limit)
        return reply.rate_limited(self.rules.rate_limit_style, message, retry_after)

    def _not_found(self, path: str) -> Reply:
        """Go's router answers plain text; the Zilliz Cloud gateway a JSON envelope."""
        if self.rules.plain_text_not_found:
            return Reply(404, GO_NOT_FOUND, content_type=TEXT)
        return reply.json_reply({"code": 404, "message": f"path not found: {path}"}, 404)

    # -- time ---------------------------------------------------------------------------------

    def _simulated(self, clock_value: float) -> float:
        return (clock_value - self._start) * self.options.time_scale

    def simulated_seconds(self) -> float:
        """Simulated seconds since the simulator started."""
        return self._simulated(self._clock())

    def simulated_time(self) -> float:
        """The epoch second an event happening now is written as: the real clock, whatever the
        time scale (older events show their simulated age before it; see `render.py`)."""
        now = self.simulated_seconds()
        return self._world.wall_base(now) + now

    # -- control hooks --------------------------------------------------------------------------

    def start_refresh(
        self,
        database: str,
        collection: str,
        outcome: str = "completed",
        duration_seconds: float = 5.0,
        reason: str = "refresh failed: simulated failure",
    ) -> int:
        """Start a refresh with a chosen fate; `duration_seconds` is simulated time to its end.

        `outcome` is "completed", "failed", "hang" (stuck InProgress) or "hang_pending". It
        starts even while another refresh of the collection runs, so tests never race the world.
        """
        if not self._world.has_database(database):
            raise KeyError(f"unknown database {database!r}")
        if collection not in self._world.external_collections(database):
            raise KeyError(f"unknown external collection {collection!r} in {database!r}")
        return self._world.start_scripted_refresh(
            database, collection, self.simulated_seconds(), outcome, duration_seconds, reason
        )

    def set_fault(self, fault: Fault, database: str | None = None, path: str | None = None) -> None:
        """Make requests for `database` and `path` (None: any) misbehave until cleared."""
        self._faults.set(fault, database, path)

    def clear_faults(self) -> None:
        self._faults.clear()

    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def start_import(
        self,
        database: str,
        collection: str | None = None,
        outcome: str = "completed",
        duration_seconds: float = 5.0,
        reason: str = "import failed: simulated failure",
    ) -> str:
        """Start an import with a chosen fate; returns its job id (a string, as the API has it).

        `outcome` is "completed", "failed", "manual_commit" (auto-commit off: Uncommitted, then
        Committing) or "unknown_state" (state "None" for ever); `collection` defaults to the
        database's first plain collection.
        """
        if not self._world.has_database(database):
            raise KeyError(f"unknown database {database!r}")
        plain = self._world.import_collections(database)
        name = collection or (plain[0] if plain else "")
        if name not in plain:
            raise KeyError(f"unknown collection {name!r} in {database!r}")
        job_id = self._world.start_scripted_import(
            database, name, self.simulated_seconds(), outcome, duration_seconds, reason
        )
        return str(job_id)

    def add_database(self, name: str, collections: int | None = None) -> None:
        """Add a database (with a job history) while serving, as if someone just created it."""
        count = self.options.collections_per_database if collections is None else collections
        self._world.add_database(name, count, self.simulated_seconds())

    def remove_database(self, name: str) -> None:
        """Drop a database while serving: its jobs go, and requests for it answer code 800."""
        self._world.remove_database(name)

    def databases(self) -> dict[str, dict[str, list[str]]]:
        """Database -> its external collections (refresh) and plain collections (import)."""
        return {
            name: {
                "externalCollections": self._world.external_collections(name),
                "importCollections": self._world.import_collections(name),
            }
            for name in self._world.database_names()
        }

    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        return ""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()
