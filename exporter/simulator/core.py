"""The simulator as tests and the CLI see it: one world, its transport rules and control hooks.

`Simulator.handle` is the whole request pipeline (auth, rate limit, JSON, faults, endpoint) as a
plain function of the request, so the HTTP handler in `server.py` only moves bytes. Where the
two flavours differ in that pipeline (which paths are rate limited and how, what an unknown path
answers) `FlavorRules` decides.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import reply
from .api import Api
from .control import CONTROL_PREFIX, control_reply
from .faults import Fault, FaultContext, FaultTable, is_replacing, replacement, reshape
from .fields import CODE_BAD_FORMAT
from .flavor import FlavorRules, rules_for
from .kinds import KINDS, Registry
from .kinds.base import Settings, SimKind
from .kinds.knobs import KnobValues
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

    `kinds` are the job kinds it serves (every registered one by default; a test may add its
    own). An unknown knob in `options.knobs`, or a bad value, raises ValueError here.
    """

    def __init__(self, options: SimulatorOptions | None = None, kinds: Registry = KINDS) -> None:
        self.options = options or SimulatorOptions()
        self.kinds = kinds
        self.rules: FlavorRules = rules_for(self.options)
        self._knobs = KnobValues(kinds.knobs(), self.options.knobs)
        self._settings = Settings(self.options, self.rules, self._knobs)
        self._clock = self.options.clock
        self._start = self._clock()
        self._world = World(self._settings, kinds, epoch_start=self._start)
        self._api = Api(self._world, self._settings, kinds)
        self._paths = self._api.paths()
        self._faults = FaultTable(self._paths)
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

    @property
    def on_real_clock(self) -> bool:
        """Whether arrivals are stamped on the wall clock (a test may give a clock of its own)."""
        return self._clock is time.time

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
        kind = self.kinds.of_path(path)
        if path not in self._paths:
            answer = self._not_found(path)
        elif kind is not None and not kind.served(self._settings):
            answer = Reply(404, GO_NOT_FOUND, content_type=TEXT)
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
            database, answer = self._answer(path, body, call_time, token, database_header, kind)
        if self.options.latency_seconds > 0:
            delay = answer.delay_seconds + self.options.latency_seconds
            answer = replace(answer, delay_seconds=delay)
        self._record(RequestRecord(received, token, path, database, answer.status, answer.code))
        return answer

    def _answer(
        self,
        path: str,
        body: bytes,
        now: float,
        token: str,
        database_header: str | None,
        kind: SimKind[Any] | None,
    ) -> tuple[str | None, Reply]:
        try:
            parsed = json.loads(body)
        except ValueError as problem:
            message = f"can only accept json format request, error: {problem}"
            return None, reply.error(CODE_BAD_FORMAT, message)
        if not isinstance(parsed, dict):
            message = "can only accept json format request, error: body is not a JSON object"
            return None, reply.error(CODE_BAD_FORMAT, message)
        request = self._api.request(parsed, now, token, database_header)
        database = self._api.database_of(path, request)
        fault = self._faults.match(database, path)
        if fault is None:
            return database, self._api.answer(path, request)
        context = FaultContext(
            database,
            path,
            self.rules.rate_limit_style,
            self.rules.rate_limit_text(self.options.requests_per_second),
        )
        if kind is not None:
            context = replace(
                context, sample_record=kind.sample_record, unknown_state=kind.unknown_state
            )
        if is_replacing(fault):
            return database, replacement(fault, context)
        return database, reshape(fault, self._api.answer(path, request), context)

    def _limited(self, path: str) -> bool:
        """Zilliz Cloud limits every endpoint; a self-hosted Milvus only the job triggers."""
        if self.rules.rate_limit_scope == "every_endpoint":
            return True
        kind = self.kinds.of_path(path)
        return kind is not None and path in kind.trigger_paths

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
        time scale (older events show their simulated age before it; see `kinds/common.py`)."""
        now = self.simulated_seconds()
        return self._world.wall_base(now) + now

    # -- control hooks --------------------------------------------------------------------------

    def start_job(
        self,
        kind: str,
        database: str,
        collection: str | None = None,
        outcome: str | None = None,
        duration_seconds: float = 5.0,
        reason: str | None = None,
    ) -> int | str:
        """Start a job of `kind` with a chosen fate; returns its id as the list records have it.

        `outcome` is one of the kind's `outcomes` (its first by default) and `duration_seconds`
        simulated time to its end; `collection` defaults to the first of the database's
        collections the kind runs on, unless the kind needs it named. It starts even while
        another job of the collection runs, so tests never race the world.
        """
        job_kind = self.kinds.named(kind)
        chosen = outcome or job_kind.outcomes[0]
        if chosen not in job_kind.outcomes:
            raise ValueError(f"unknown outcome {chosen!r}: use {', '.join(job_kind.outcomes)}")
        if not self._world.has_database(database):
            raise KeyError(f"unknown database {database!r}")
        candidates = self._world.collections(database, job_kind.family)
        noun = "external collection" if job_kind.family == "external" else "collection"
        if collection is None and job_kind.collection_required:
            raise KeyError(f"a {job_kind.name} job needs an {noun}")
        name = collection or (candidates[0] if candidates else "")
        if name not in candidates:
            raise KeyError(f"unknown {noun} {name!r} in {database!r}")
        why = job_kind.default_reason(chosen) if reason is None else reason
        now = self.simulated_seconds()

        def make(stream: Any) -> Any:
            return stream.scripted(now, name, chosen, duration_seconds, why)

        job = self._world.create_job(job_kind, database, now, make)
        return job_kind.public_id(job.job_id)

    def start_refresh(
        self,
        database: str,
        collection: str,
        outcome: str = "completed",
        duration_seconds: float = 5.0,
        reason: str | None = None,
    ) -> int:
        """Start a refresh with a chosen fate (`start_job("refresh", ...)`); returns its id.

        `outcome` is "completed", "failed", "hang" (stuck InProgress) or "hang_pending".
        """
        job_id = self.start_job("refresh", database, collection, outcome, duration_seconds, reason)
        return int(job_id)

    def start_import(
        self,
        database: str,
        collection: str | None = None,
        outcome: str = "completed",
        duration_seconds: float = 5.0,
        reason: str | None = None,
    ) -> str:
        """Start an import with a chosen fate; returns its job id (a string, as the API has it).

        `outcome` is "completed", "failed", "manual_commit" (auto-commit off: Uncommitted, then
        Committing) or "unknown_state" (state "None" for ever); `collection` defaults to the
        database's first plain collection.
        """
        job_id = self.start_job("import", database, collection, outcome, duration_seconds, reason)
        return str(job_id)

    def knobs(self) -> dict[str, object]:
        """Every declared knob's current value."""
        return self._knobs.snapshot()

    def set_knobs(self, values: Mapping[str, object]) -> None:
        """Change live knobs while serving (ValueError, and no change, if one is refused)."""
        self._knobs.set(values)

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

    def add_database(self, name: str, collections: int | None = None) -> None:
        """Add a database (with a job history) while serving, as if someone just created it."""
        count = self.options.collections_per_database if collections is None else collections
        self._world.add_database(name, count, self.simulated_seconds())

    def remove_database(self, name: str) -> None:
        """Drop a database while serving: its jobs go, and requests for it answer code 800."""
        self._world.remove_database(name)

    def drop_collection(self, database: str, collection: str) -> None:
        """Drop a collection while serving: it leaves `collections/list` and gets no new jobs,
        while the jobs it had stay listed until retention drops them (KeyError if unknown)."""
        self._world.drop_collection(database, collection)

    def databases(self) -> dict[str, dict[str, list[str]]]:
        """Database -> its external collections (refresh) and plain collections (the rest)."""
        return {
            name: {
                "externalCollections": self._world.collections(name, "external"),
                "importCollections": self._world.collections(name, "plain"),
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
