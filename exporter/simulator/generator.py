"""Seeded invention of collections and jobs: the only place the simulator rolls dice.

Each collection (and each database's import stream) owns its own `random.Random`, seeded from
the world seed and its name, so the jobs of one collection do not depend on when another one was
looked at. That keeps lazily generated worlds deterministic.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace

from .schedule import INFINITY, ImportFile, ImportSchedule, RefreshSchedule

COLLECTION_TOPICS = (
    "books",
    "movies",
    "music",
    "news",
    "papers",
    "products",
    "reviews",
    "images",
    "recipes",
    "podcasts",
    "patents",
    "articles",
    "photos",
    "videos",
    "songs",
    "tickets",
)

REFRESH_ID_BASE = 449_503_829_274_000_000
IMPORT_ID_BASE = 448_761_313_698_000_000
# Room in the low bits of an id for the owner's index, so ids never collide across owners.
REFRESH_OWNER_BITS = 20
IMPORT_OWNER_BITS = 12

TIMEOUT_SECONDS = 3600.0
HISTORY_SPAN_SECONDS = 20 * 3600.0
AUTO_REFRESH_GAP_SECONDS = (60.0, 1200.0)
IMPORT_WINDOW_SECONDS = 3 * 3600.0
URI_HOST = "minio.storage.svc:9000"


def topic_name(index: int) -> str:
    """Deterministic plain names: books, movies, ... then books_2, movies_2, ..."""
    topic = COLLECTION_TOPICS[index % len(COLLECTION_TOPICS)]
    round_number = index // len(COLLECTION_TOPICS)
    return topic if round_number == 0 else f"{topic}_{round_number + 1}"


def external_collection_name(index: int) -> str:
    return f"ext_{topic_name(index)}"


def compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


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


@dataclass
class RefreshChain:
    """One external collection's sequence of refresh jobs, extended lazily as time passes."""

    database: str
    collection: str
    owner_index: int
    rng: random.Random
    id_base: int
    external_source: str
    external_spec: str
    busy_until: float = 0.0
    next_auto_at: float = INFINITY
    sequence: int = 0

    def next_job_id(self) -> int:
        job_id = self.id_base + (self.sequence << REFRESH_OWNER_BITS) + self.owner_index
        self.sequence += 1
        return job_id


@dataclass
class ImportChain:
    """One database's stream of bulk imports; unlike refreshes they overlap freely."""

    database: str
    owner_index: int
    rng: random.Random
    id_base: int
    collections: tuple[str, ...]
    mean_gap: float
    next_auto_at: float = INFINITY
    sequence: int = 0

    def next_job_id(self) -> int:
        job_id = self.id_base + (self.sequence << IMPORT_OWNER_BITS) + self.owner_index
        self.sequence += 1
        return job_id


def new_refresh_chain(
    seed: int, database: str, collection: str, owner_index: int, topic: str, uri_sources: bool
) -> RefreshChain:
    """A collection's refresh stream; `uri_sources` gives it a self-hosted Milvus URI source."""
    rng = random.Random(f"{seed}/refresh/{database}/{collection}")
    id_base = REFRESH_ID_BASE + random.Random(f"{seed}/refresh-ids").randrange(1 << 30)
    if rng.random() < 0.7:
        source = {"type": "volume", "path": f"volume://my-volume/{topic}"}
        uri = f"s3://{URI_HOST}/external/{topic}/"
        spec = {"format": "parquet", "credential": "***"}
    else:
        source = {"type": "iceberg", "path": f"s3://lakehouse/warehouse/{topic}"}
        uri = f"s3://{URI_HOST}/lakehouse/warehouse/{topic}/"
        spec = {"format": "iceberg", "snapshotId": "latest", "credential": "***"}
    return RefreshChain(
        database=database,
        collection=collection,
        owner_index=owner_index,
        rng=rng,
        id_base=id_base,
        external_source=uri if uri_sources else compact_json(source),
        external_spec=compact_json(spec),
    )


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


def new_import_chain(
    seed: int, database: str, owner_index: int, collections: tuple[str, ...], jobs: int
) -> ImportChain:
    mean_gap = IMPORT_WINDOW_SECONDS / jobs if jobs > 0 else INFINITY
    return ImportChain(
        database=database,
        owner_index=owner_index,
        rng=random.Random(f"{seed}/import/{database}"),
        id_base=IMPORT_ID_BASE + random.Random(f"{seed}/import-ids").randrange(1 << 30),
        collections=collections,
        mean_gap=mean_gap,
    )


def auto_refresh_gap(chain: RefreshChain) -> float:
    return chain.rng.uniform(*AUTO_REFRESH_GAP_SECONDS)


def random_refresh(
    chain: RefreshChain,
    created_at: float,
    failure_probability: float,
    hang_probability: float,
    time_factor: float = 1.0,
) -> RefreshSchedule:
    """A refresh with a seeded fate: completes, fails (sometimes by the 1 h timeout) or hangs.

    `time_factor` shortens every phase, so a long history can still fit in the retention window.
    """
    rng = chain.rng
    pending = rng.uniform(1.0, 8.0) * time_factor
    running = rng.uniform(20.0, 900.0) * time_factor
    fate = rng.random()
    if fate < failure_probability:
        reason, running, cap = _refresh_failure(chain, rng, running)
        if reason.startswith("refresh timed out"):
            running *= time_factor
        return _refresh(chain, created_at, pending, running, False, cap, reason)
    if fate < failure_probability + hang_probability:
        if rng.random() < 0.5:
            return _refresh(chain, created_at, INFINITY, INFINITY, False, 0, "")
        stall = _between(rng, 1, 95)
        job = _refresh(chain, created_at, pending, INFINITY, False, stall, "")
        return _with_rate(job, 100.0 / running)
    return _refresh(chain, created_at, pending, running, True, 99, "")


def scripted_refresh(
    chain: RefreshChain, created_at: float, outcome: str, duration_seconds: float, reason: str
) -> RefreshSchedule:
    """A refresh whose fate a test chose: completed, failed, hang or hang_pending."""
    duration = max(0.0, duration_seconds)
    pending = min(2.0, duration * 0.2)
    running = duration - pending
    if outcome == "completed":
        return _refresh(chain, created_at, pending, running, True, 99, "")
    if outcome == "failed":
        cap = 0 if running <= 0 else 60
        return _refresh(chain, created_at, pending, running, False, cap, reason)
    if outcome == "hang":
        job = _refresh(chain, created_at, pending, INFINITY, False, 42, "")
        return _with_rate(job, 100.0 / max(running, 1.0))
    if outcome == "hang_pending":
        return _refresh(chain, created_at, INFINITY, INFINITY, False, 0, "")
    raise ValueError(f"unknown outcome {outcome!r}: use completed, failed, hang or hang_pending")


def _refresh_failure(
    chain: RefreshChain, rng: random.Random, running: float
) -> tuple[str, float, int]:
    path = source_location(chain.external_source)
    choice = rng.randrange(5)
    if choice == 0:
        return (
            f"refresh timed out after {int(TIMEOUT_SECONDS)}s",
            TIMEOUT_SECONDS,
            _between(rng, 5, 95),
        )
    if choice == 1:
        return f"permission denied reading {path}", 0.0, 0
    if choice == 2 and path.startswith("s3://"):
        return f"iceberg snapshot {_between(rng, 100, 99999)} not found", running * 0.2, 3
    if choice == 3:
        return f"no parquet files found under {path}", running * 0.1, 1
    cap = _between(rng, 5, 95)
    reason = "schema mismatch: field 'embedding' has dim 768, collection expects 1024"
    return reason, running * cap / 100.0, cap


def _refresh(
    chain: RefreshChain,
    created_at: float,
    pending: float,
    running: float,
    succeeds: bool,
    cap: int,
    reason: str,
) -> RefreshSchedule:
    running_at = created_at + pending
    end_at = running_at + running
    rate = cap / running if running > 0 and running != INFINITY else 100.0
    return RefreshSchedule(
        job_id=chain.next_job_id(),
        database=chain.database,
        collection=chain.collection,
        created_at=created_at,
        running_at=running_at,
        end_at=end_at,
        succeeds=succeeds,
        progress_rate=rate,
        progress_cap=cap,
        reason=reason,
        external_source=chain.external_source,
        external_spec=chain.external_spec,
    )


def _with_rate(job: RefreshSchedule, rate: float) -> RefreshSchedule:
    return replace(job, progress_rate=rate)


IMPORT_FAILURES = (
    "failed to read file {file}: no such file or directory",
    "schema mismatch: field 'embedding' has dim 768, collection expects 1024",
    "disk quota exceeded: import rejected by quota center",
    "row count mismatch in {file}: primary key field 'id' is missing",
)


def random_import(
    chain: ImportChain,
    created_at: float,
    failure_probability: float,
    manual_commit_probability: float,
) -> ImportSchedule:
    """An import job of 1-4 parquet files; a share is created with auto-commit off (two-phase)."""
    rng = chain.rng
    collection = rng.choice(chain.collections)
    files = []
    for part in range(_between(rng, 1, 4)):
        size = _between(rng, 1_000_000, 2_000_000_000)
        files.append(
            ImportFile(
                name=f"s3://bulk-import/{collection}/part-{part:05d}.parquet",
                size_bytes=size,
                total_rows=size // _between(rng, 1_000, 4_000),
            )
        )
    importing_at = created_at + rng.uniform(1.0, 30.0)
    importing = rng.uniform(30.0, 1800.0)
    two_phase = rng.random() < manual_commit_probability
    order_key = rng.random()
    if rng.random() < failure_probability:
        cap = _between(rng, 0, 95)
        imported_at = committing_at = end_at = importing_at + importing * cap / 100.0
        succeeds, reason = False, rng.choice(IMPORT_FAILURES).format(file=files[0].name)
    else:
        cap = 99
        imported_at = importing_at + importing
        committing_at = imported_at + (rng.uniform(30.0, 600.0) if two_phase else 0.0)
        end_at = committing_at + (rng.uniform(2.0, 20.0) if two_phase else 0.0)
        succeeds, reason = True, ""
    return ImportSchedule(
        job_id=chain.next_job_id(),
        database=chain.database,
        collection=collection,
        created_at=created_at,
        importing_at=importing_at,
        imported_at=imported_at,
        committing_at=committing_at,
        end_at=end_at,
        succeeds=succeeds,
        progress_cap=cap,
        reason=reason,
        files=tuple(files),
        order_key=order_key,
        auto_commit=not two_phase,
    )


IMPORT_OUTCOMES = ("completed", "failed", "manual_commit", "unknown_state")


def scripted_import(
    chain: ImportChain,
    created_at: float,
    collection: str,
    outcome: str,
    duration_seconds: float,
    reason: str,
) -> ImportSchedule:
    """An import whose fate a test chose; it rolls no dice, so the seeded jobs stay the same.

    `outcome` is "completed", "failed", "manual_commit" (auto-commit off: Uncommitted, then
    Committing, then Completed) or "unknown_state" (the server reports "None" for ever).
    """
    if outcome not in IMPORT_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use {', '.join(IMPORT_OUTCOMES)}")
    duration = max(0.0, duration_seconds)
    importing_at = created_at + min(2.0, duration * 0.2)
    end_at = created_at + duration
    imported_at = committing_at = end_at
    if outcome == "manual_commit":
        imported_at = importing_at + (end_at - importing_at) * 0.5
        committing_at = importing_at + (end_at - importing_at) * 0.9
    if outcome == "unknown_state":
        importing_at = imported_at = committing_at = end_at = INFINITY
    job_id = chain.next_job_id()
    files = tuple(
        ImportFile(f"s3://bulk-import/{collection}/part-{part:05d}.parquet", 64_000_000, 40_000)
        for part in range(2)
    )
    failed = outcome == "failed"
    return ImportSchedule(
        job_id=job_id,
        database=chain.database,
        collection=collection,
        created_at=created_at,
        importing_at=importing_at,
        imported_at=imported_at,
        committing_at=committing_at,
        end_at=end_at,
        succeeds=not failed,
        progress_cap=60 if failed else 99,
        reason=reason if failed else "",
        files=files,
        order_key=(job_id % 1000) / 1000,
        auto_commit=outcome != "manual_commit",
        unknown_state=outcome == "unknown_state",
    )


def import_gap(chain: ImportChain) -> float:
    if chain.mean_gap == INFINITY:
        return INFINITY
    return chain.rng.uniform(0.2, 1.8) * chain.mean_gap


def _between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high]; cheaper than `randint`, which matters for 100k-job worlds."""
    return low + int(rng.random() * (high - low + 1))
