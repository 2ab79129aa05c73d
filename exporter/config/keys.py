"""Every key of the exporter's config file, declared once: each is a field of ``Config`` or
``ClusterConfig`` with its reader, bound, default and doc line (see ``schema``).

From these declarations come the keys a file may hold (``TOP_LEVEL_KEYS``, ``CLUSTER_KEYS`` and the
did-you-mean of a misspelt one), the reading and checking of a file (``loader``) and the keys table
of docs/configuration.md (``reference``). A new key is a field here, the code that uses it, and
its line in config.example.yaml; ``tests/test_docs.py`` fails until the docs table is regenerated
(``python -m monitoring generate``) and the example names it.

The checks only these keys need (a listen address, an endpoint, the token or its file, job kinds,
a shard) are written here beside them. Messages name the key path and never quote a secret.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..kinds import KINDS
from .reader import suggest, type_name
from .schema import (
    Alongside,
    Arguments,
    Boolean,
    Declared,
    Duration,
    Integer,
    Names,
    Number,
    Reader,
    Reading,
    Text,
    key,
    required,
)

JOB_KINDS = KINDS.defaults
"""The kinds a cluster without ``jobs`` polls (each declared in ``exporter/kinds/``)."""
PATTERN_CHARACTERS = frozenset("*?[")
"""A database item holding any of these is a shell-style pattern (Milvus names never do)."""
DEFAULT_PORT = 9969
DEFAULT_LISTEN_ADDRESS = f"0.0.0.0:{DEFAULT_PORT}"
_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")


# --- the checks of single keys ------------------------------------------------------------------


def _listen_address(reading: Reading, value: str, path: str, so_far: Arguments) -> str | None:
    """HOST:PORT; an empty value means the default."""
    if not value:
        return None
    if not _valid_listen_address(value):
        reading.fail(
            path,
            f"expected HOST:PORT such as 0.0.0.0:{DEFAULT_PORT}, got {reading.shown(path, value)}",
        )
    return value


def _valid_listen_address(value: str) -> bool:
    match = _LISTEN.match(value)
    return bool(match) and 0 <= int(match.group(2)) <= 65535  # type: ignore[union-attr]


def _file_path(reading: Reading, value: str, path: str, so_far: Arguments) -> str | None:
    """A path, not checked against this machine's disk: a container config names a volume that
    is mounted only where it runs. A missing or read-only directory is logged and counted at run
    time (state_write_errors_total); polling goes on without the file."""
    if not value.strip() or "\x00" in value:
        reading.fail(path, "expected a file path")
        return None
    return value


def _not_blank(reading: Reading, value: str, path: str, so_far: Arguments) -> str:
    if not value.strip():
        reading.fail(path, "must not be empty")
    return value


def _endpoint(reading: Reading, value: str, path: str, so_far: Arguments) -> str | None:
    if not re.match(r"^https?://[^/\s]+", value):
        reading.fail(
            path,
            "must start with http:// or https:// followed by a host, "
            f"got {reading.shown(path, value)}",
        )
        return None
    if "?" in value or "#" in value:
        reading.fail(path, "must not carry a query string or fragment")
        return None
    return value.rstrip("/")


def _job_kinds(
    reading: Reading, kinds: tuple[str, ...], path: str, so_far: Arguments
) -> tuple[str, ...]:
    """Kinds the registry declares (read when the config is, so a kind a test adds counts)."""
    names = KINDS.names
    for index, kind in enumerate(kinds):
        if kind not in names:
            reading.fail(
                f"{path}[{index}]",
                f"unknown job kind {reading.shown(f'{path}[{index}]', kind)}"
                f"{suggest(kind, names)}; use {_and_or(names)}",
            )
    return tuple(dict.fromkeys(kinds))


def _and_or(names: tuple[str, ...]) -> str:
    """``refresh and/or import``; ``refresh, import and/or restore``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and/or {names[-1]}"


def _jobs_doc() -> str:
    """The docs line of ``jobs``: which kinds exist, which are polled by default."""
    described = ", ".join(
        f"`{kind.name}` ({kind.title[0].lower()}{kind.title[1:]}"
        + ("" if kind.default else "; only where named")
        + (f", {kind.endpoints.served_since} and later" if kind.endpoints.served_since else "")
        + ")"
        for kind in KINDS
    )
    return f"job kinds to poll: {described}"


def _readable_file(reading: Reading, value: str, path: str, so_far: Arguments) -> str:
    if "\x00" in value or not os.access(value, os.R_OK):
        reading.fail(path, f"cannot read CA file {reading.shown(path, value, quote=False)}")
    return value


def _only_with_patterns(
    reading: Reading, excluded: tuple[str, ...], path: str, so_far: Arguments
) -> tuple[str, ...]:
    databases = so_far.get("databases", ())
    if excluded and not any(PATTERN_CHARACTERS & set(database) for database in databases):
        reading.fail(
            path,
            "only applies to databases found through a pattern; databases has none "
            '(e.g. "*" or "prod_*")',
        )
    return excluded


class _Token(Reader):
    """The secret, from ``token`` (with ``${VAR}``) or ``token_file``; never both. It gives
    ``token``, ``token_file`` and ``inline_token`` (written literally in the file)."""

    def read(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> Arguments:
        token, token_file = self._token(reading, mapping, path)
        literal = bool(token) and reading.is_literal(mapping, "token")
        return {"token": token, "token_file": token_file, "inline_token": literal}

    def _token(self, reading: Reading, item: dict[str, Any], path: str) -> tuple[str, str | None]:
        has_inline = "token" in item
        has_file = "token_file" in item
        if has_inline and has_file:
            reading.fail(f"{path}.token_file", "give either token or token_file, not both")
            return "", None
        if has_file:
            file_path = reading.string(item, "token_file", None, path)
            if file_path is None:
                return "", None
            shown = reading.shown(f"{path}.token_file", file_path, quote=False)
            try:
                if "\x00" in file_path:  # open() raises ValueError, not OSError, for these
                    raise OSError(0, "a path cannot hold a NUL character")
                token = Path(file_path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = (
                    error.strerror
                    if isinstance(error, OSError) and error.strerror
                    else "not UTF-8 text"
                )
                reading.fail(f"{path}.token_file", f"cannot read token file {shown}: {reason}")
                return "", file_path
            if not token:
                reading.fail(f"{path}.token_file", f"token file {shown} is empty")
            return token, file_path
        if not has_inline:
            return "", None
        inline = reading.string(item, "token", None, path)
        if inline is not None and not inline.strip():
            reading.fail(
                f"{path}.token", "is empty (remove the key for a Milvus without authentication)"
            )
        return (inline or "").strip(), None


class _Shard(Reader):
    """``shard: "1/4"`` gives ``shard_index`` 1 and ``shard_count`` 4."""

    def read(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> Arguments:
        index, count = 0, 1
        if declared.name in mapping:
            try:
                index, count = parse_shard(mapping[declared.name])
            except ValueError as error:
                reading.fail(declared.path(path), str(error))
        return {"shard_index": index, "shard_count": count}

    def shown(self, default: Any) -> str:
        return f"`{default}/1`"


def parse_shard(value: object) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``: this replica is shard 1 (0-based) of 4."""
    text = value.strip() if isinstance(value, str) else ""
    if not re.fullmatch(r"[0-9]{1,4}/[0-9]{1,4}", text):
        shown = repr(text) if text else "nothing" if isinstance(value, str) else type_name(value)
        raise ValueError(f"expected INDEX/COUNT such as 0/4 (0-based), got {shown}")
    index, count = (int(part) for part in text.split("/"))
    if not 0 <= index < count:
        raise ValueError(f"shard index must be 0..COUNT-1, got {text!r}")
    return index, count


def split_listen_address(address: str) -> tuple[str, int]:
    """``"0.0.0.0:9969"`` -> ``("0.0.0.0", 9969)``; ``"[::]:9969"`` -> ``("::", 9969)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


# --- the keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConfig:
    """One Milvus / Zilliz Cloud cluster: where it is, how to authenticate, what to poll."""

    name: str = field(
        metadata=required(Text(check=_not_blank), "the `milvus_cluster` label; unique")
    )
    endpoint: str = field(
        metadata=required(Text(check=_endpoint), "`http(s)://host[:port]` of the cluster")
    )
    token: str = field(
        repr=False,
        metadata=required(
            _Token(),
            "API key or `user:password`; leave out for a Milvus without authentication",
            shown_default="none",
        ),
    )
    databases: tuple[str, ...] = key(
        ("default",),
        Names(),
        'databases to poll: names, or shell-style patterns (`"*"`, `"prod_*"`, `"[ab]*"`) '
        'matched against the cluster\'s own database list (see "Database discovery" below)',
    )
    jobs: tuple[str, ...] = key(JOB_KINDS, Names(check=_job_kinds), _jobs_doc())
    token_file: str | None = key(
        None, Alongside("token"), "file holding the token (whitespace trimmed); instead of `token`"
    )
    inline_token: bool = False
    """The token is written literally in the config file (not ${VAR}, not token_file)."""
    tls_ca_file: str | None = key(
        None,
        Text(check=_readable_file),
        "CA bundle to verify the endpoint's certificate",
        shown_default="system CAs",
    )
    tls_insecure_skip_verify: bool = key(
        False, Boolean(), "skip certificate verification (testing only)"
    )
    exclude_databases: tuple[str, ...] = key(
        (), Names(check=_only_with_patterns), "patterns of discovered databases to leave out"
    )
    discovery_interval: float | None = key(
        None,
        Duration(minimum=1.0),
        "this cluster's discovery interval (databases and collections lists)",
        shown_default="`discovery_interval`",
    )
    """This cluster's own discovery interval; None means the config's ``discovery_interval``."""

    @property
    def database_names(self) -> tuple[str, ...]:
        """The databases named outright: polled as they are, with no discovery call."""
        return tuple(item for item in self.databases if not PATTERN_CHARACTERS & set(item))

    @property
    def database_patterns(self) -> tuple[str, ...]:
        """Shell-style patterns (``*``, ``prod_*``): the cluster's database list decides."""
        return tuple(item for item in self.databases if PATTERN_CHARACTERS & set(item))

    def matches(self, database: str) -> bool:
        """Whether a listed database is one to poll: it matches a pattern and no exclusion."""
        return any(
            fnmatch.fnmatchcase(database, pattern) for pattern in self.database_patterns
        ) and (
            not any(fnmatch.fnmatchcase(database, pattern) for pattern in self.exclude_databases)
        )

    @property
    def credential_id(self) -> str:
        """A stable, non-reversible name for the credential: the rate-limit key and log field.

        Clusters that share a token share the upstream's per-user limit, so they share this id.
        """
        if not self.token:
            return f"anonymous@{self.endpoint}"
        return "sha256:" + hashlib.sha256(self.token.encode()).hexdigest()[:12]


class _Clusters(Reader):
    """The list of clusters, each a section of ``ClusterConfig`` keys; names are unique."""

    section = ClusterConfig

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> tuple[ClusterConfig, ...]:
        value = mapping.get(declared.name)
        key_path = declared.path(path)
        if value is None:
            reading.fail(key_path, "missing: list at least one cluster (name, endpoint, token)")
            return ()
        if not isinstance(value, list):
            reading.fail(key_path, f"expected a list of clusters, got {type_name(value)}")
            return ()
        if not value:
            reading.fail(key_path, "the list is empty: add at least one cluster")
            return ()
        clusters: list[ClusterConfig] = []
        seen_names: dict[str, int] = {}
        for index, item in enumerate(value):
            cluster = self._cluster(reading, item, f"{key_path}[{index}]")
            if cluster is None:
                continue
            if cluster.name in seen_names:
                first = seen_names[cluster.name]
                name_path = f"{key_path}[{index}].name"
                reading.fail(
                    name_path,
                    f"duplicate cluster name {reading.shown(name_path, cluster.name)}"
                    f" (also {key_path}[{first}])",
                )
            seen_names.setdefault(cluster.name, index)
            clusters.append(cluster)
        return tuple(clusters)

    def _cluster(self, reading: Reading, item: Any, path: str) -> ClusterConfig | None:
        if not isinstance(item, dict):
            reading.fail(
                path, f"expected a mapping with name, endpoint and token, got {type_name(item)}"
            )
            return None
        arguments = reading.section(ClusterConfig, item, path)
        if arguments["name"] is None or arguments["endpoint"] is None:
            return None
        return ClusterConfig(**arguments)


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration; see config.example.yaml for every key."""

    clusters: tuple[ClusterConfig, ...] = field(
        metadata=required(_Clusters(), "the clusters to poll, each a mapping with the keys below")
    )
    listen_address: str = key(
        DEFAULT_LISTEN_ADDRESS, Text(check=_listen_address), "where the HTTP server listens"
    )
    poll_interval: float = key(
        30.0,
        Duration(minimum=0.1),
        "time between the starts of two poll cycles",
    )
    request_timeout: float = key(
        10.0,
        Duration(minimum=0.05),
        "per HTTP request; also sent as `Request-Timeout` (whole seconds, rounded up, at least 1)",
    )
    requests_per_second: float = key(
        20.0,
        Number(minimum=0.01),
        "strict limit per credential and API path, shared by all clusters using that token",
    )
    max_tracked_jobs: int = key(
        50_000,
        Integer(minimum=0),
        "cardinality guard for per-job series",
    )
    max_concurrent_requests: int = key(
        32,
        Integer(minimum=1),
        "requests in flight at once, across all clusters (fewer, with a warning at start, "
        "when the descriptor limit `ulimit -n` is too low to leave the HTTP server room: see "
        "[operations](operations.md#bounded-by-construction))",
    )
    max_retries: int = key(
        2,
        Integer(minimum=0),
        "retries of a temporary failure (timeout, connect, 5xx, 429) within one cycle",
    )
    max_response_bytes: int = key(
        16 * 1024 * 1024,
        Integer(minimum=1024),
        "larger answers are refused with reason `too_large` (16 MiB holds about 45,000 jobs)",
    )
    max_import_pages: int = key(
        100,
        Integer(minimum=1),
        "most pages of a paged (Zilliz Cloud) import list read per poll; an answer claiming "
        "more fails with `too_many_pages`",
    )
    max_listing_bytes: int = key(
        64 * 1024 * 1024,
        Integer(minimum=1024),
        "most bytes read for one list answer, all its pages together (64 MiB; each page is "
        "also held to `max_response_bytes`); reading stops there and the target is down with "
        "reason `listing_too_large` (not retried within the cycle)",
    )
    max_listed_jobs: int = key(
        20_000,
        Integer(minimum=1),
        "most jobs of one target kept from one poll, whatever the server lists (twice "
        "`max_listed_collections`: room for each kept collection's newest success and newest "
        "failure): unfinished jobs first, then each collection's newest finished job (failed "
        "before succeeded), then the newest of each other finished state, then older finished"
        " jobs, newest first; a collection's older finished jobs are never kept without its "
        "newest. What is left out is counted in "
        '`milvus_jobs_exporter_unkept_jobs{limit="max_listed_jobs"}`',
    )
    max_listed_collections: int = key(
        10_000,
        Integer(minimum=1),
        "most collections of one target kept from one poll, in the order listed; every job of"
        " a collection past it is left out "
        '(`milvus_jobs_exporter_unkept_jobs{limit="max_listed_collections"}`). A kept '
        "collection's `milvus_refresh_jobs` / `milvus_import_jobs` count all its listed jobs",
    )
    max_import_describes: int = key(
        100,
        Integer(minimum=0),
        "most `import/describe` calls per import target and cycle: jobs never described "
        "first, then those described longest ago; all import targets of a token share what the "
        "rate limit leaves after the lists, oldest first (see [operations](operations.md"
        "#describe-lag)); `0` describes nothing (as `import_details: false`)",
    )
    max_tracked_collections: int = key(
        10_000,
        Integer(minimum=0),
        "collections whose newest refresh success and failure are remembered, and (counted "
        "separately, up to the same number for each kind) collections whose newest finished "
        "import or restore is remembered; beyond it the least recently listed are forgotten "
        "(counted). It also bounds the collections with `milvus_refresh_jobs` / "
        "`milvus_import_jobs` / `milvus_restore_jobs` series, per kind: those with a running, "
        "pending or failed job first, the rest counted in "
        "`milvus_jobs_exporter_untracked_collections`",
    )
    collection_retention: float = key(
        7 * 86_400.0,
        Duration(minimum=60.0),
        "the fallback where no collections list answers (see [polling.md](polling.md)): a "
        "collection neither listed by its jobs nor named by `collections/list` for this long "
        "is forgotten (counted): its last-success and last-failure series go, so do the "
        "per-job series of its newest finished import once the server no longer lists it, and"
        " alerts on it resolve. Where `collections/list` answers, a collection that still "
        "exists is never forgotten by age, and one confirmed gone is forgotten at once "
        '(`reason="dropped"`)',
    )
    discovery_interval: float = key(
        300.0,
        Duration(minimum=1.0),
        "how often a cluster whose `databases` hold a pattern lists its databases (`POST "
        "/v2/vectordb/databases/list`), and how often every watched database's collections "
        "are listed (`POST /v2/vectordb/collections/list`, the evidence that a collection is "
        "gone); a cluster can set its own",
    )
    max_discovered_databases: int = key(
        1_000,
        Integer(minimum=1),
        "most databases of one cluster that its patterns add to the targets, in name order (a"
        " Milvus cluster holds 64 by default); the others are not polled, counted in "
        '`milvus_jobs_exporter_discovery_skipped_databases{reason="limit"}` and logged once '
        "(`discovery.databases_skipped`). Databases named outright do not count",
    )
    state_file: str | None = key(
        None,
        Text(check=_file_path),
        "where to keep what the exporter remembers across restarts (each collection's newest "
        "refresh success and failure, its newest finished import, counted jobs, duration "
        "histograms, the targets it watched, live removal markers, collections confirmed "
        "gone); written atomically every minute and at shutdown; a missing file is a first "
        "start; a file written by an older version loads (a restart then cannot tell which "
        "targets the config removed). At start, temporaries of saves a kill interrupted "
        "(`.state.json.XXXXXXXX[.tmp]` beside it) are removed; every restored entry is "
        "checked (names, plausible times, non-negative counts, finite sums) and a bad one is "
        "left out on its own (logged once, `state.entries_dropped`); a file that cannot be "
        "used is logged and started without, and kept aside first when the next save would "
        "overwrite it: `state.json.too-large.bak` (over `max_state_file_bytes`), "
        "`state.json.v3.bak` (a newer format), `state.json.unreadable.bak` (not a state "
        "file). The container and Kubernetes manifests set "
        "`/var/lib/milvus-jobs-exporter/state.json` on a volume",
    )
    max_state_file_bytes: int = key(
        16 * 1024 * 1024,
        Integer(minimum=1024),
        "the largest state file read at start (16 MiB; reading costs about seven times the "
        "size in memory for a moment) and written (a larger state is not written and counts "
        "in `milvus_jobs_exporter_state_write_errors_total`; the previous file stays). At the"
        " documented sizing the file holds a few MB",
    )
    import_details: bool = key(
        True,
        Boolean(),
        "call `import/describe` for unfinished imports (and once when they finish) for rows, "
        "sizes and times; these requests share the rate limit, and are skipped when they "
        "would stretch the cycle",
    )
    shard_index: int = key(
        0,
        _Shard(),
        "`INDEX/COUNT`: poll only the targets whose stable hash modulo COUNT is INDEX, with "
        "1/COUNT of `requests_per_second` (see [Scaling "
        "out](operations.md#scaling-out-shards)); `--shard` overrides it",
        name="shard",
    )
    shard_count: int = 1
    """Set with ``shard_index`` by the ``shard`` key."""
    source: str = "<memory>"
    warnings: tuple[str, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every token, so the log redactor can scrub them wherever they might leak."""
        return tuple(cluster.token for cluster in self.clusters if cluster.token)
