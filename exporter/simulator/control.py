"""`/_simulator/...`: the control hooks over HTTP, for tests that run the exporter elsewhere.

No auth, no rate limit, not in the request log: this is the test's side door, not the API.

| route | body | does |
|---|---|---|
| `GET health` | | `{"ok": true}` |
| `GET requests`, `DELETE requests` | | the request log, or empty it |
| `POST <kind's control route>` | `dbName`, `collectionName`, `outcome`, `durationSeconds`, `reason` | start a job with a chosen fate: `refresh` `{"jobId": N}`, `imports` `{"jobId": "N"}`, `restores` `{"jobId": N}` |
| `GET knobs`, `POST knobs` | `{name: value, ...}` | every kind's knob values, or change live ones |
| `POST faults`, `DELETE faults` (or `POST faults/clear`) | `kind`, `database`, `path`, ... | set a fault, or clear them all |
| `GET databases` | | each database's external and plain collections |
| `POST databases` | `name`, `collections` | add a database with a job history |
| `DELETE databases/{name}` | | drop a database: it leaves `databases/list`, and its requests answer code 800 |
| `DELETE collections/{database}/{name}` | | drop a collection: it leaves `collections/list`, its jobs stay listed |

Adding and dropping databases while the exporter runs is how tests show database discovery
picking up a new database and letting go of a dropped one; dropping a collection is how they
show the exporter letting go of a collection only once `collections/list` says it is gone.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Protocol
from urllib.parse import unquote

from .faults import Fault
from .kinds import Registry
from .options import RequestRecord
from .reply import Reply, json_reply


class Simulator(Protocol):
    """The simulator's control hooks, all that this API calls (``core.Simulator`` has them): the
    control API depends on what it uses, and the simulator routes to it without a circle."""

    kinds: Registry

    def start_job(
        self,
        kind: str,
        database: str,
        collection: str | None = ...,
        outcome: str | None = ...,
        duration_seconds: float = ...,
        reason: str | None = ...,
    ) -> int | str: ...

    def knobs(self) -> dict[str, object]: ...

    def set_knobs(self, values: dict[str, object]) -> None: ...

    def set_fault(
        self, fault: Fault, database: str | None = ..., path: str | None = ...
    ) -> None: ...

    def clear_faults(self) -> None: ...

    def request_log(self) -> list[RequestRecord]: ...

    def clear_request_log(self) -> None: ...

    def add_database(self, name: str, collections: int | None = ...) -> None: ...

    def remove_database(self, name: str) -> None: ...

    def drop_collection(self, database: str, collection: str) -> None: ...

    def databases(self) -> dict[str, dict[str, list[str]]]: ...


CONTROL_PREFIX = "/_simulator/"


class _BadRequest(Exception):
    pass


def control_reply(simulator: Simulator, method: str, path: str, body: bytes) -> Reply:
    route = (method, path.removeprefix(CONTROL_PREFIX).rstrip("/"))
    try:
        request = _parse(body)
        if route == ("GET", "health"):
            return json_reply({"ok": True})
        if route == ("GET", "requests"):
            records = [asdict(record) for record in simulator.request_log()]
            return json_reply({"requests": records})
        if route == ("DELETE", "requests"):
            simulator.clear_request_log()
            return json_reply({"ok": True})
        for kind in simulator.kinds:
            if route == ("POST", kind.control_route):
                return json_reply({"jobId": _start_job(simulator, kind.name, request)})
        if route == ("GET", "knobs"):
            return json_reply({"knobs": _shown(simulator.knobs())})
        if route == ("POST", "knobs"):
            simulator.set_knobs(request)
            return json_reply({"ok": True})
        if route == ("POST", "faults"):
            _set_fault(simulator, request)
            return json_reply({"ok": True})
        if route in (("DELETE", "faults"), ("POST", "faults/clear")):
            simulator.clear_faults()
            return json_reply({"ok": True})
        if route == ("GET", "databases"):
            return json_reply({"databases": simulator.databases()})
        if route == ("POST", "databases"):
            collections = request.get("collections")
            simulator.add_database(_text(request, "name"), _optional_int(collections))
            return json_reply({"ok": True})
        method_name, _, database = route[1].partition("/")
        if (route[0], method_name) == ("DELETE", "databases") and database:
            return _remove_database(simulator, unquote(database))
        database, _, collection = database.partition("/")
        if (route[0], method_name) == ("DELETE", "collections") and database and collection:
            return _drop_collection(simulator, unquote(database), unquote(collection))
    except (_BadRequest, KeyError, ValueError, TypeError) as problem:
        return json_reply({"error": str(problem)}, 400)
    return json_reply({"error": f"no control route {method} {path}"}, 404)


def _parse(body: bytes) -> dict[str, object]:
    if not body.strip():
        return {}
    try:
        request = json.loads(body)
    except ValueError as problem:
        raise _BadRequest(f"body is not JSON: {problem}") from None
    if not isinstance(request, dict):
        raise _BadRequest("body must be a JSON object")
    return request


def _start_job(simulator: Simulator, kind: str, request: dict[str, object]) -> int | str:
    return simulator.start_job(
        kind,
        _text(request, "dbName", "default"),
        _optional_text(request, "collectionName"),
        outcome=_optional_text(request, "outcome"),
        duration_seconds=_number(request, "durationSeconds", 5.0),
        reason=_optional_text(request, "reason"),
    )


def _shown(knobs: dict[str, object]) -> dict[str, object]:
    """Knob values as JSON has them (tuples as lists)."""
    return {
        name: list(value) if isinstance(value, tuple) else value for name, value in knobs.items()
    }


def _remove_database(simulator: Simulator, name: str) -> Reply:
    try:
        simulator.remove_database(name)
    except KeyError:
        return json_reply({"error": f"no database {name!r}"}, 404)
    return json_reply({"ok": True})


def _drop_collection(simulator: Simulator, database: str, collection: str) -> Reply:
    try:
        simulator.drop_collection(database, collection)
    except KeyError:
        return json_reply({"error": f"no collection {collection!r} in {database!r}"}, 404)
    return json_reply({"ok": True})


def _set_fault(simulator: Simulator, request: dict[str, object]) -> None:
    defaults = Fault("timeout")
    fault = Fault(
        _text(request, "kind"),
        seconds=_number(request, "seconds", defaults.seconds),
        size_bytes=int(_number(request, "sizeBytes", defaults.size_bytes)),
        retry_after=int(_number(request, "retryAfter", defaults.retry_after)),
    )
    database = request.get("database")
    path = request.get("path")
    simulator.set_fault(
        fault,
        database=database if isinstance(database, str) else None,
        path=path if isinstance(path, str) else None,
    )


def _number(request: dict[str, object], name: str, default: float) -> float:
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _BadRequest(f"{name} must be a number")
    return float(value)


def _text(request: dict[str, object], name: str, default: str | None = None) -> str:
    value = request.get(name, default)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"{name} must be a non-empty string")
    return value


def _optional_text(request: dict[str, object], name: str) -> str | None:
    return None if request.get(name) is None else _text(request, name)


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _BadRequest("collections must be an integer")
    return value
