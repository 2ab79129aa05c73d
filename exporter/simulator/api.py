"""The upstream endpoints: every registered kind's routes, plus the database and collection
lists, with the server's codes.

Input is an already-parsed JSON object, the simulated time, the caller's token and the
``DB-Name`` header; output is a `Reply`. Transport concerns (auth, rate limits, faults, sockets)
live in `core.py` and `server.py`; how request fields are read lives in `fields.py`; what each
job endpoint answers lives in its kind (`kinds/`).

Shared by every kind and both flavours: a dropped or unknown database answers code 800, an
unknown collection code 100.
"""

from __future__ import annotations

from .fields import Invalid, database_not_found
from .kinds import Registry
from .kinds.base import Handler, Request, Settings
from .reply import Reply, json_reply
from .world import UnknownDatabaseError, World

DATABASE_LIST = "/v2/vectordb/databases/list"
COLLECTION_LIST = "/v2/vectordb/collections/list"


class Api:
    """Answers upstream requests from the world's state at a simulated instant."""

    def __init__(self, world: World, settings: Settings, kinds: Registry) -> None:
        self._world = world
        self._settings = settings
        self._kinds = kinds
        self._handlers: dict[str, Handler] = {}
        for kind in kinds:
            self._handlers.update(kind.routes())
        self._handlers[DATABASE_LIST] = self._database_list
        self._handlers[COLLECTION_LIST] = self._collection_list

    def paths(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def request(
        self, body: dict[str, object], now: float, token: str, database_header: str | None
    ) -> Request:
        return Request(body, now, token, database_header, self._world, self._settings)

    def database_of(self, path: str, request: Request) -> str | None:
        """The database a request is about (for fault matching and the request log)."""
        try:
            if path == DATABASE_LIST:
                return None
            kind = self._kinds.of_path(path)
            if kind is not None and path == kind.describe_path:
                return kind.describe_database(request)
            return request.database_name()
        except Invalid:
            return None

    def answer(self, path: str, request: Request) -> Reply:
        try:
            return self._handlers[path](request)
        except Invalid as invalid:
            return invalid.answer
        except UnknownDatabaseError as dropped:  # dropped after it was looked up
            return database_not_found(dropped.name)

    def _database_list(self, request: Request) -> Reply:
        names: list[object] = list(self._world.database_names())
        return json_reply({"code": self._settings.rules.success_code, "data": names})

    def _collection_list(self, request: Request) -> Reply:
        names: list[object] = list(self._world.collection_names(request.database()))
        return json_reply({"code": self._settings.rules.success_code, "data": names})
