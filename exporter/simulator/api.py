"""The five upstream job endpoints, with the validation and error codes the real server uses.

Input is an already-parsed JSON object and the simulated time; output is a `Reply`. Transport
concerns (auth, rate limits, faults, sockets) live in `server.py`.
"""

from __future__ import annotations

import json

from . import reply
from .options import SimulatorOptions
from .reply import Reply
from .schedule import import_describe_record, refresh_record
from .world import RefreshActiveError, World

REFRESH_LIST = "/v2/vectordb/jobs/external_collection/list"
REFRESH_DESCRIBE = "/v2/vectordb/jobs/external_collection/describe"
REFRESH_START = "/v2/vectordb/jobs/external_collection/refresh"
IMPORT_LIST = "/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE = "/v2/vectordb/jobs/import/describe"
API_PATHS = (REFRESH_LIST, REFRESH_DESCRIBE, REFRESH_START, IMPORT_LIST, IMPORT_DESCRIBE)
REFRESH_PATHS = (REFRESH_LIST, REFRESH_DESCRIBE, REFRESH_START)

DEFAULT_DATABASE = "default"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

CODE_COLLECTION_NOT_FOUND = 100
CODE_REFRESH_ACTIVE = 703
CODE_DATABASE_NOT_FOUND = 800
CODE_INVALID_PARAMETER = 1100
CODE_JOB_NOT_FOUND = 1802


class _Invalid(Exception):
    """A request the server refuses; carries the error reply to send."""

    def __init__(self, answer: Reply) -> None:
        super().__init__(answer.body.decode())
        self.answer = answer


def database_not_found(database: str) -> Reply:
    return reply.error(CODE_DATABASE_NOT_FOUND, f"database not found[database={database}]")


class Api:
    """Answers upstream requests from the world's state at a simulated instant."""

    def __init__(self, world: World, options: SimulatorOptions) -> None:
        self._world = world
        self._success_code = 200 if options.legacy_success_code else 0
        self._import_paging = options.import_paging
        self._handlers = {
            REFRESH_LIST: self._refresh_list,
            REFRESH_DESCRIBE: self._refresh_describe,
            REFRESH_START: self._refresh_start,
            IMPORT_LIST: self._import_list,
            IMPORT_DESCRIBE: self._import_describe,
        }

    def database_of(self, path: str, body: dict[str, object], now: float) -> str | None:
        """The database a request is about (for fault matching and the request log)."""
        if path == REFRESH_DESCRIBE:
            try:
                job = self._world.refresh_job(_refresh_job_id(body), now)
            except _Invalid:
                return None
            return job.database if job else None
        if path == IMPORT_DESCRIBE:
            try:
                imported = self._world.import_job(_import_job_id(body), now)
            except _Invalid:
                return None
            return imported.database if imported else None
        name = body.get("dbName")
        if name is None or name == "":
            return DEFAULT_DATABASE
        return name if isinstance(name, str) else None

    def answer(self, path: str, body: dict[str, object], now: float) -> Reply:
        try:
            return self._handlers[path](body, now)
        except _Invalid as invalid:
            return invalid.answer

    def _refresh_list(self, body: dict[str, object], now: float) -> Reply:
        database = self._database(body)
        collection = _optional_string(body, "collectionName")
        if collection and collection not in self._world.import_collections(database):
            self._require_external(database, collection)
        records = self._world.refresh_records(database, collection, now)
        return reply.success_with_records(records.records_json, self._success_code)

    def _refresh_describe(self, body: dict[str, object], now: float) -> Reply:
        job_id = _refresh_job_id(body)
        job = self._world.refresh_job(job_id, now)
        if job is None:
            return reply.error(CODE_JOB_NOT_FOUND, f"job not found[jobId={job_id}]")
        record = refresh_record(job, now, self._world.epoch_start)
        return reply.success(record, self._success_code)

    def _refresh_start(self, body: dict[str, object], now: float) -> Reply:
        database = self._database(body)
        collection = _optional_string(body, "collectionName")
        if not collection:
            raise _Invalid(_missing("collectionName"))
        if collection in self._world.import_collections(database):
            message = f"collection is not an external collection[collection={collection}]"
            raise _Invalid(reply.error(CODE_INVALID_PARAMETER, message))
        self._require_external(database, collection)
        source = _json_string(body, "externalSource")
        spec = _json_string(body, "externalSpec")
        if (source is None) != (spec is None):
            message = "externalSource and externalSpec must be both provided or both omitted"
            raise _Invalid(reply.error(CODE_INVALID_PARAMETER, message))
        try:
            job_id = self._world.request_refresh(database, collection, now, source, spec)
        except RefreshActiveError as active:
            return reply.error(CODE_REFRESH_ACTIVE, str(active))
        return reply.success({"jobId": job_id}, self._success_code)

    def _import_list(self, body: dict[str, object], now: float) -> Reply:
        database = self._database(body)
        collection = _optional_string(body, "collectionName")
        if collection and collection not in self._world.import_collections(database):
            self._require_external(database, collection)
        if not self._import_paging:
            records = self._world.import_records(database, collection, now)
            return reply.success_with_records(records.records_json, self._success_code)
        page_size = _page_number(body, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        current_page = _page_number(body, "currentPage", 1, None)
        offset = (current_page - 1) * page_size
        records = self._world.import_records(database, collection, now, (offset, page_size))
        return reply.success_with_records(
            records.records_json,
            self._success_code,
            count=records.count,
            currentPage=current_page,
            pageSize=page_size,
        )

    def _import_describe(self, body: dict[str, object], now: float) -> Reply:
        job_id = _import_job_id(body)
        job = self._world.import_job(job_id, now)
        if job is None:
            return reply.error(CODE_JOB_NOT_FOUND, f"job not found[jobId={job_id}]")
        record = import_describe_record(job, now, self._world.epoch_start)
        return reply.success(record, self._success_code)

    def _database(self, body: dict[str, object]) -> str:
        name = _optional_string(body, "dbName") or DEFAULT_DATABASE
        if not self._world.has_database(name):
            raise _Invalid(database_not_found(name))
        return name

    def _require_external(self, database: str, collection: str) -> None:
        if collection not in self._world.external_collections(database):
            message = f"collection not found[database={database}][collection={collection}]"
            raise _Invalid(reply.error(CODE_COLLECTION_NOT_FOUND, message))


def _missing(name: str) -> Reply:
    message = f"missing required parameters, error: Key: '{name}' is required"
    return reply.error(CODE_INVALID_PARAMETER, message)


def _invalid(name: str, value: object) -> Reply:
    message = f"invalid parameter[expected={name}][actual={value!r}]"
    return reply.error(CODE_INVALID_PARAMETER, message)


def _optional_string(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(_invalid(name, value))
    return value


def _json_string(body: dict[str, object], name: str) -> str | None:
    """externalSource / externalSpec: a JSON-encoded string; an object is accepted as is."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if not isinstance(value, str):
        raise _Invalid(_invalid(name, value))
    try:
        json.loads(value)
    except ValueError:
        raise _Invalid(_invalid(f"{name} as a JSON string", value)) from None
    return value


def _refresh_job_id(body: dict[str, object]) -> int:
    """jobId as an int64 number or a string of digits; a float that lost digits is just unknown."""
    value = body.get("jobId")
    if value is None:
        raise _Invalid(_missing("jobId"))
    if isinstance(value, bool):
        raise _Invalid(_invalid("jobId", value))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _Invalid(_invalid("jobId", value))


def _import_job_id(body: dict[str, object]) -> int:
    value = body.get("jobId")
    if value is None or value == "":
        raise _Invalid(_missing("jobId"))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _Invalid(_invalid("jobId", value))


def _page_number(body: dict[str, object], name: str, default: int, maximum: int | None) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(_invalid(name, value))
    if maximum is not None and value > maximum:
        raise _Invalid(_invalid(name, value))
    return value
