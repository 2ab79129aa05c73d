"""The external sources of external collections, as refreshes carry them: invented ones (a
JSON document on Zilliz Cloud, a URI such as ``s3://host/bucket/key/`` on self-hosted Milvus),
where a source points, and specs masked the way the server masks them before echoing them.
"""

from __future__ import annotations

import json
import random

from .common import compact_json

URI_HOST = "minio.storage.svc:9000"


def invented_source(rng: random.Random, topic: str, uri: bool) -> tuple[str, str]:
    """A collection's (externalSource, externalSpec): mostly a volume, sometimes an Iceberg
    table; one draw on `rng` either way."""
    if rng.random() < 0.7:
        source = {"type": "volume", "path": f"volume://my-volume/{topic}"}
        location = f"s3://{URI_HOST}/external/{topic}/"
        spec = {"format": "parquet", "credential": "***"}
    else:
        source = {"type": "iceberg", "path": f"s3://lakehouse/warehouse/{topic}"}
        location = f"s3://{URI_HOST}/lakehouse/warehouse/{topic}/"
        spec = {"format": "iceberg", "snapshotId": "latest", "credential": "***"}
    return (location if uri else compact_json(source)), compact_json(spec)


def redact_spec(spec: str) -> str:
    """Mask secret-looking values the way the server does before echoing a spec back."""
    try:
        parsed = json.loads(spec)
    except ValueError:
        return "***"
    if not isinstance(parsed, dict):
        return "***"
    secret_words = ("key", "secret", "token", "password", "credential")
    redacted = {
        name: "***" if any(word in name.lower() for word in secret_words) else value
        for name, value in parsed.items()
    }
    return compact_json(redacted)


def source_location(external_source: str) -> str:
    """Where a source points: the `path` of a JSON source (Zilliz Cloud), else the string itself.

    Callers may send any source, so this never fails: a JSON document without a usable `path`
    is named as it was given.
    """
    try:
        parsed = json.loads(external_source)
    except ValueError:
        return external_source
    path = parsed.get("path") if isinstance(parsed, dict) else None
    return path if isinstance(path, str) and path else external_source
