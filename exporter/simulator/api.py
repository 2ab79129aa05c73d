"""The upstream endpoints (five job endpoints, the database and collection lists), with the
server's codes.

Input is an already-parsed JSON object, the simulated time and the ``DB-Name`` header; output is
a `Reply`. Transport concerns (auth, rate limits, faults, sockets) live in `core.py` and
`server.py`; how request fields are read lives in `fields.py`.

Not-found answers are shared by both flavours: an unknown or expired import job answers code
2100 ("import job does not exist"), an unknown refresh job code 1100, a dropped or unknown
database code 800.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import reply
from .fields import (
    CODE_INVALID_PARAMETER,
    Invalid,
    external_string,
    import_job_id,
    optional_string,
    page_number,
    refresh_job_id,
    required_string,
)
from .flavor import FlavorRules
from .render import import_describe_record, refresh_record
from .reply import Reply
from .world import RefreshActiveError, UnknownDatabaseError, World

REFRESH_LIST = "/v2/vectordb/jobs/external_collection/list"
REFRESH_DESCRIBE = "/v2/vectordb/jobs/external_collection/describe"
REFRESH_START = "/v2/vectordb/jobs/external_collection/refresh"
IMPORT_LIST = "/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE = "/v2/vectordb/jobs/import/describe"
DATABASE_LIST = "/v2/vectordb/databases/list"
COLLECTION_LIST = "/v2/vectordb/collections/list"
API_PATHS = (
    REFRESH_LIST,
    REFRESH_DESCRIBE,
    REFRESH_START,
    IMPORT_LIST,
    IMPORT_DESCRIBE,
    DATABASE_LIST,
    COLLECTION_LIST,
)
REFRESH_PATHS = (REFRESH_LIST, REFRESH_DESCRIBE, REFRESH_START)

DEFAULT_DATABASE = "default"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

CODE_COLLECTION_NOT_FOUND = 100
CODE_REFRESH_ACTIVE = 703
CODE_DATABASE_NOT_FOUND = 800
CODE_REFRESH_JOB_NOT_FOUND = 1100
CODE_IMPORT_JOB_NOT_FOUND = 2100


@dataclass(frozen=True)
class Call:
    """One API request as the endpoints see it: body, simulated time, ``DB-Name`` header."""

    body: dict[str, object]
    now: float
    database_header: str | None = None


def database_not_found(database: str) -> Reply:
    return reply.error(CODE_DATABASE_NOT_FOUND, f"database not found[database={database}]")


def not_external(collection: str) -> Reply:
    message = f"collection is not an external collection[collection={collection}]"
    return reply.error(CODE_INVALID_PARAMETER, message)


class Api:
    """Answers upstream requests from the world's state at a simulated instant."""

    def __init__(self, world: World, rules: FlavorRules) -> None:
        self._world = world
        self._rules = rules
        self._success_code = rules.success_code
        self._handlers = {
            REFRESH_LIST: self._refresh_list,
            REFRESH_DESCRIBE: self._refresh_describe,
            REFRESH_START: self._refresh_start,
            IMPORT_LIST: self._import_list,
            IMPORT_DESCRIBE: self._import_describe,
            DATABASE_LIST: self._database_list,
            COLLECTION_LIST: self._collection_list,
        }

    def database_of(self, path: str, call: Call) -> str | None:
        """The database a request is about (for fault matching and the request log)."""
        try:
            if path == DATABASE_LIST:
                return None
            if path == REFRESH_DESCRIBE:
                job = self._world.refresh_job(refresh_job_id(call.body), call.now)
                return job.database if job else None
            if path == IMPORT_DESCRIBE:
                imported = self._world.import_job(import_job_id(call.body), call.now)
                return imported.database if imported else None
            return self._database_name(call)
        except Invalid:
            return None

    def answer(self, path: str, call: Call) -> Reply:
        try:
            return self._handlers[path](call)
        except Invalid as invalid:
            return invalid.answer
        except UnknownDatabaseError as dropped:  # dropped after it was looked up
            return database_not_found(dropped.name)

    def _refresh_list(self, call: Call) -> Reply:
        database = self._database(call)
        collection = optional_string(call.body, "collectionName")
        if collection and collection not in self._world.external_collections(database):
            self._require_collection(database, collection)
            if self._rules.refresh_list_needs_external:
                raise Invalid(not_external(collection))
        records = self._world.refresh_records(database, collection, call.now)
        return reply.success_with_records(records.records_json, self._success_code)

    def _refresh_describe(self, call: Call) -> Reply:
        job_id = refresh_job_id(call.body)
        job = self._world.refresh_job(job_id, call.now)
        if job is None:
            return reply.error(CODE_REFRESH_JOB_NOT_FOUND, f"refresh job {job_id} not found")
        record = refresh_record(job, call.now, self._world.wall_base(call.now))
        return reply.success(record, self._success_code)

    def _refresh_start(self, call: Call) -> Reply:
        database = self._database(call)
        collection = required_string(call.body, "collectionName")
        if collection in self._world.import_collections(database):
            raise Invalid(not_external(collection))
        self._require_collection(database, collection)
        json_required = self._rules.json_external_source
        source = external_string(call.body, "externalSource", json_required)
        spec = external_string(call.body, "externalSpec", json_required)
        if (source is None) != (spec is None):
            message = "externalSource and externalSpec must be both provided or both omitted"
            raise Invalid(reply.error(CODE_INVALID_PARAMETER, message))
        try:
            job_id = self._world.request_refresh(database, collection, call.now, source, spec)
        except RefreshActiveError as active:
            return reply.error(CODE_REFRESH_ACTIVE, str(active))
        return reply.success({"jobId": job_id}, self._success_code)

    def _import_list(self, call: Call) -> Reply:
        database = self._database(call)
        collection = optional_string(call.body, "collectionName")
        if collection and collection not in self._world.import_collections(database):
            self._require_collection(database, collection)
        if not self._rules.import_paging:
            records = self._world.import_records(database, collection, call.now)
            return reply.success_with_records(records.records_json, self._success_code)
        page_size = page_number(call.body, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        current_page = page_number(call.body, "currentPage", 1, None)
        offset = (current_page - 1) * page_size
        records = self._world.import_records(database, collection, call.now, (offset, page_size))
        return reply.success_with_records(
            records.records_json,
            self._success_code,
            count=records.count,
            currentPage=current_page,
            pageSize=page_size,
        )

    def _import_describe(self, call: Call) -> Reply:
        job_id = import_job_id(call.body)
        job = self._world.import_job(job_id, call.now)
        if job is None:
            message = f"import job does not exist, jobID={job_id}"
            return reply.error(CODE_IMPORT_JOB_NOT_FOUND, message)
        base = self._world.wall_base(call.now)
        record = import_describe_record(job, call.now, base, self._rules)
        return reply.success(record, self._success_code)

    def _database_list(self, call: Call) -> Reply:
        names: list[object] = list(self._world.database_names())
        return reply.json_reply({"code": self._success_code, "data": names})

    def _collection_list(self, call: Call) -> Reply:
        names: list[object] = list(self._world.collection_names(self._database(call)))
        return reply.json_reply({"code": self._success_code, "data": names})

    def _database_name(self, call: Call) -> str:
        """The body's `dbName`, else (Milvus) the ``DB-Name`` header, else "default"."""
        name = optional_string(call.body, "dbName")
        if not name and self._rules.database_header:
            name = call.database_header
        return name or DEFAULT_DATABASE

    def _database(self, call: Call) -> str:
        name = self._database_name(call)
        if not self._world.has_database(name):
            raise Invalid(database_not_found(name))
        return name

    def _require_collection(self, database: str, collection: str) -> None:
        """Code 100 unless the collection exists (external or not)."""
        world = self._world
        if collection in world.external_collections(database):
            return
        if collection in world.import_collections(database):
            return
        message = f"collection not found[database={database}][collection={collection}]"
        raise Invalid(reply.error(CODE_COLLECTION_NOT_FOUND, message))
