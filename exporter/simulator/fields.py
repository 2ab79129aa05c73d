"""Request bodies read the way the server's JSON binding reads them, with its error codes.

A field of the wrong JSON type answers code 1801 (the body cannot be bound to the request
struct), a required field that is missing, null or empty answers 1802, and a value of the right
type that makes no sense answers 1100. Both flavours share these rules because the same server
code checks them. How each kind reads its job id (the sharp edge callers trip on) lives in the
kind (`kinds/`), built from these helpers.

    required_string({"collectionName": "books"}, "collectionName")  # -> "books"
    required_string({}, "collectionName")                            # raises Invalid: 1802
    optional_string({"dbName": 7}, "dbName")                         # raises Invalid: 1801
"""

from __future__ import annotations

import json

from . import reply
from .reply import Reply

CODE_COLLECTION_NOT_FOUND = 100
CODE_DATABASE_NOT_FOUND = 800
CODE_INVALID_PARAMETER = 1100
CODE_BAD_FORMAT = 1801
CODE_MISSING_PARAMETER = 1802


class Invalid(Exception):
    """A request the server refuses; carries the error reply to send."""

    def __init__(self, answer: Reply) -> None:
        super().__init__(answer.body.decode())
        self.answer = answer


def database_not_found(database: str) -> Reply:
    return reply.error(CODE_DATABASE_NOT_FOUND, f"database not found[database={database}]")


def collection_not_found(database: str, collection: str) -> Reply:
    message = f"collection not found[database={database}][collection={collection}]"
    return reply.error(CODE_COLLECTION_NOT_FOUND, message)


def missing(name: str) -> Reply:
    message = (
        f"missing required parameters, error: Key: '{name}' "
        f"Error:Field validation for '{name}' failed on the 'required' tag"
    )
    return reply.error(CODE_MISSING_PARAMETER, message)


def wrong_type(name: str, expected: str, value: object) -> Reply:
    message = (
        "can only accept json format request, error: json: cannot unmarshal "
        f"{_json_type(value)} into Go struct field .{name} of type {expected}"
    )
    return reply.error(CODE_BAD_FORMAT, message)


def invalid(name: str, value: object) -> Reply:
    return reply.error(
        CODE_INVALID_PARAMETER, f"invalid parameter[expected={name}][actual={value!r}]"
    )


def optional_string(body: dict[str, object], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(wrong_type(name, "string", value))
    return value


def required_string(body: dict[str, object], name: str) -> str:
    value = optional_string(body, name)
    if not value:
        raise Invalid(missing(name))
    return value


def page_number(body: dict[str, object], name: str, default: int, maximum: int | None) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(wrong_type(name, "int", value))
    if value < 1 or (maximum is not None and value > maximum):
        raise Invalid(invalid(name, value))
    return value


def external_string(body: dict[str, object], name: str, json_required: bool) -> str | None:
    """externalSource / externalSpec: a string, or nothing when absent or empty.

    With `json_required` (Zilliz Cloud) the string must hold JSON, and a JSON object is taken
    as is; otherwise (self-hosted Milvus) any non-empty string goes, such as ``s3://b/k/``.
    """
    value = body.get(name)
    if value is None or value == "":
        return None
    if json_required and isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if not isinstance(value, str):
        raise Invalid(wrong_type(name, "string", value))
    if json_required:
        try:
            json.loads(value)
        except ValueError:
            raise Invalid(invalid(f"{name} as a JSON string", value)) from None
    return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
