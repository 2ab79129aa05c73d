"""Load and validate the YAML config into frozen dataclasses.

Every problem is reported, not just the first, each as one line naming the key path and the line
in the file (``config.yaml:12: clusters[1].endpoint: must start with http:// or https://``), so a
user fixes the whole file in one go. Secrets are kept out of ``repr`` and out of every message.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .reader import (
    Checker,
    ConfigFileError,
    ConfigProblem,
    number_text,
    parse_yaml,
    read_text,
    readable_by_others,
    suggest,
    type_name,
)

JOB_KINDS = ("refresh", "import")
PATTERN_CHARACTERS = frozenset("*?[")
"""A database item holding any of these is a shell-style pattern (Milvus names never do)."""
DEFAULT_PORT = 9969
DEFAULT_LISTEN_ADDRESS = f"0.0.0.0:{DEFAULT_PORT}"


@dataclass(frozen=True)
class ClusterConfig:
    """One Milvus / Zilliz Cloud cluster: where it is, how to authenticate, what to poll."""

    name: str
    endpoint: str
    token: str = field(repr=False)
    databases: tuple[str, ...] = ("default",)
    jobs: tuple[str, ...] = JOB_KINDS
    token_file: str | None = None
    inline_token: bool = False
    """The token is written literally in the config file (not ${VAR}, not token_file)."""
    tls_ca_file: str | None = None
    tls_insecure_skip_verify: bool = False
    exclude_databases: tuple[str, ...] = ()
    """Patterns of discovered databases to leave out."""
    discovery_interval: float | None = None
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


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration; see config.example.yaml for every key."""

    clusters: tuple[ClusterConfig, ...]
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    poll_interval: float = 30.0
    request_timeout: float = 10.0
    requests_per_second: float = 20.0
    max_tracked_jobs: int = 50_000
    max_concurrent_requests: int = 32
    max_retries: int = 2
    max_response_bytes: int = 16 * 1024 * 1024
    max_import_pages: int = 100
    max_listing_bytes: int = 64 * 1024 * 1024
    max_listed_jobs: int = 20_000
    max_listed_collections: int = 10_000
    max_import_describes: int = 100
    max_tracked_collections: int = 10_000
    collection_retention: float = 7 * 86_400.0
    discovery_interval: float = 300.0
    max_discovered_databases: int = 1_000
    state_file: str | None = None
    max_state_file_bytes: int = 16 * 1024 * 1024
    import_details: bool = True
    shard_index: int = 0
    shard_count: int = 1
    source: str = "<memory>"
    warnings: tuple[str, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every token, so the log redactor can scrub them wherever they might leak."""
        return tuple(cluster.token for cluster in self.clusters if cluster.token)


class ConfigError(ConfigFileError):
    """The config cannot be used; ``str()`` gives one line per problem."""


__all__ = ["ConfigError", "ConfigProblem"]  # ConfigProblem: the lines of a ConfigError


TOP_LEVEL_KEYS = (
    "listen_address",
    "poll_interval",
    "request_timeout",
    "requests_per_second",
    "max_tracked_jobs",
    "max_concurrent_requests",
    "max_retries",
    "max_response_bytes",
    "max_import_pages",
    "max_listing_bytes",
    "max_listed_jobs",
    "max_listed_collections",
    "max_import_describes",
    "max_tracked_collections",
    "collection_retention",
    "discovery_interval",
    "max_discovered_databases",
    "state_file",
    "max_state_file_bytes",
    "import_details",
    "shard",
    "clusters",
)
CLUSTER_KEYS = (
    "name",
    "endpoint",
    "token",
    "token_file",
    "databases",
    "jobs",
    "tls_ca_file",
    "tls_insecure_skip_verify",
    "exclude_databases",
    "discovery_interval",
)
_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand ``${VAR}`` references in, and validate the config at ``path``."""
    source = str(path)
    text = read_text(path, "config file", ConfigError)
    config = parse_config(text, source, os.environ if environ is None else environ)
    return _with_file_warnings(config, Path(path))


def _with_file_warnings(config: Config, path: Path) -> Config:
    """Warn when a literal token sits in a file that other users may read."""
    inline = [cluster.name for cluster in config.clusters if cluster.inline_token]
    if not inline:
        return config
    if not readable_by_others(path):
        return config
    warning = (
        f"{config.source} is readable by other users and holds a literal token "
        f"(clusters {', '.join(inline)}); use ${{VAR}} or token_file, or chmod o-r the file"
    )
    return replace(config, warnings=(*config.warnings, warning))


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> Config:
    """Validate config ``text``; ``source`` names it in error messages."""
    document, lines = parse_yaml(text, source, ConfigError)
    checker = _Checker(source, lines, environ)
    config = checker.config(document, source)
    if checker.problems or config is None:
        raise ConfigError(source, checker.problems)
    if config.request_timeout >= config.poll_interval:
        warning = (
            f"request_timeout ({config.request_timeout:g}s) is not shorter than poll_interval "
            f"({config.poll_interval:g}s): a slow cluster will stretch every poll cycle"
        )
        config = replace(config, warnings=(*config.warnings, warning))
    return config


class _Checker(Checker):
    """Collects problems while converting the parsed document into a ``Config``."""

    def __init__(self, source: str, lines: dict[str, int], environ: Mapping[str, str]) -> None:
        super().__init__(source, lines)
        self.environ = environ
        self.written: dict[str, str] = {}  # key path -> text before ${VAR} expansion

    def shown(self, path: str, value: str, quote: bool = True) -> str:
        """A value as messages show it: as written when it came from ``${VAR}``.

        The environment may hold secrets (the same variable often feeds a token), so a message
        quotes the file, never what a reference expanded to.
        """
        written = self.written.get(path)
        if written is not None:
            return f"{written!r} (expanded from the environment)"
        return repr(value) if quote else value

    def config(self, document: Any, source: str) -> Config | None:
        if document is None:
            self.fail("", "the config is empty; it needs at least a 'clusters' list")
            return None
        if not isinstance(document, dict):
            self.fail("", f"the config must be a mapping of keys, not {type_name(document)}")
            return None
        self.unknown_keys(document, TOP_LEVEL_KEYS, "")
        defaults = Config(clusters=())
        listen_address = self.string(document, "listen_address", defaults.listen_address)
        if listen_address and not _valid_listen_address(listen_address):
            self.fail(
                "listen_address",
                f"expected HOST:PORT such as 0.0.0.0:{DEFAULT_PORT}, "
                f"got {self.shown('listen_address', listen_address)}",
            )
        poll_interval = self.duration(
            document, "poll_interval", defaults.poll_interval, minimum=0.1
        )
        request_timeout = self.duration(
            document, "request_timeout", defaults.request_timeout, minimum=0.05
        )
        rate = self.number(
            document, "requests_per_second", defaults.requests_per_second, minimum=0.01
        )
        max_tracked = self.integer(
            document, "max_tracked_jobs", defaults.max_tracked_jobs, minimum=0
        )
        concurrency = self.integer(
            document, "max_concurrent_requests", defaults.max_concurrent_requests, minimum=1
        )
        retries = self.integer(document, "max_retries", defaults.max_retries, minimum=0)
        max_bytes = self.integer(
            document, "max_response_bytes", defaults.max_response_bytes, minimum=1024
        )
        max_pages = self.integer(document, "max_import_pages", defaults.max_import_pages, minimum=1)
        max_listing_bytes = self.integer(
            document, "max_listing_bytes", defaults.max_listing_bytes, minimum=1024
        )
        max_listed_jobs = self.integer(
            document, "max_listed_jobs", defaults.max_listed_jobs, minimum=1
        )
        max_listed_collections = self.integer(
            document, "max_listed_collections", defaults.max_listed_collections, minimum=1
        )
        max_describes = self.integer(
            document, "max_import_describes", defaults.max_import_describes, minimum=0
        )
        max_collections = self.integer(
            document, "max_tracked_collections", defaults.max_tracked_collections, minimum=0
        )
        collection_retention = self.duration(
            document, "collection_retention", defaults.collection_retention, minimum=60.0
        )
        discovery_interval = self.duration(
            document, "discovery_interval", defaults.discovery_interval, minimum=1.0
        )
        max_databases = self.integer(
            document, "max_discovered_databases", defaults.max_discovered_databases, minimum=1
        )
        state_file = self.state_file(document)
        max_state_bytes = self.integer(
            document, "max_state_file_bytes", defaults.max_state_file_bytes, minimum=1024
        )
        import_details = self.boolean(document, "import_details", defaults.import_details, "")
        shard_index, shard_count = 0, 1
        if "shard" in document:
            try:
                shard_index, shard_count = parse_shard(document["shard"])
            except ValueError as error:
                self.fail("shard", str(error))
        clusters = self.clusters(document.get("clusters"))
        return Config(
            clusters=clusters,
            listen_address=listen_address or defaults.listen_address,
            poll_interval=poll_interval,
            request_timeout=request_timeout,
            requests_per_second=rate,
            max_tracked_jobs=max_tracked,
            max_concurrent_requests=concurrency,
            max_retries=retries,
            max_response_bytes=max_bytes,
            max_import_pages=max_pages,
            max_listing_bytes=max_listing_bytes,
            max_listed_jobs=max_listed_jobs,
            max_listed_collections=max_listed_collections,
            max_import_describes=max_describes,
            max_tracked_collections=max_collections,
            collection_retention=collection_retention,
            discovery_interval=discovery_interval,
            max_discovered_databases=max_databases,
            state_file=state_file,
            max_state_file_bytes=max_state_bytes,
            import_details=import_details,
            shard_index=shard_index,
            shard_count=shard_count,
            source=source,
        )

    def clusters(self, value: Any) -> tuple[ClusterConfig, ...]:
        if value is None:
            self.fail("clusters", "missing: list at least one cluster (name, endpoint, token)")
            return ()
        if not isinstance(value, list):
            self.fail("clusters", f"expected a list of clusters, got {type_name(value)}")
            return ()
        if not value:
            self.fail("clusters", "the list is empty: add at least one cluster")
            return ()
        clusters: list[ClusterConfig] = []
        seen_names: dict[str, int] = {}
        for index, item in enumerate(value):
            cluster = self.cluster(item, f"clusters[{index}]")
            if cluster is None:
                continue
            if cluster.name in seen_names:
                first = seen_names[cluster.name]
                self.fail(
                    f"clusters[{index}].name",
                    f"duplicate cluster name {self.shown(f'clusters[{index}].name', cluster.name)}"
                    f" (also clusters[{first}])",
                )
            seen_names.setdefault(cluster.name, index)
            clusters.append(cluster)
        return tuple(clusters)

    def cluster(self, item: Any, path: str) -> ClusterConfig | None:
        if not isinstance(item, dict):
            self.fail(
                path, f"expected a mapping with name, endpoint and token, got {type_name(item)}"
            )
            return None
        self.unknown_keys(item, CLUSTER_KEYS, path)
        name = self.string(item, "name", None, path)
        if name is not None and not name.strip():
            self.fail(f"{path}.name", "must not be empty")
        endpoint = self.string(item, "endpoint", None, path)
        if endpoint is not None:
            endpoint = self.endpoint(endpoint, f"{path}.endpoint")
        token, token_file = self.token(item, path)
        databases = self.string_list(item, "databases", ("default",), path)
        jobs = self.string_list(item, "jobs", JOB_KINDS, path)
        for index, kind in enumerate(jobs):
            if kind not in JOB_KINDS:
                self.fail(
                    f"{path}.jobs[{index}]",
                    f"unknown job kind {self.shown(f'{path}.jobs[{index}]', kind)}"
                    f"{suggest(kind, JOB_KINDS)}; use refresh and/or import",
                )
        ca_file = self.string(item, "tls_ca_file", None, path) if "tls_ca_file" in item else None
        if ca_file is not None and ("\x00" in ca_file or not os.access(ca_file, os.R_OK)):
            shown = self.shown(f"{path}.tls_ca_file", ca_file, quote=False)
            self.fail(f"{path}.tls_ca_file", f"cannot read CA file {shown}")
        insecure = self.boolean(item, "tls_insecure_skip_verify", False, path)
        excluded = self.string_list(item, "exclude_databases", (), path)
        if excluded and not any(PATTERN_CHARACTERS & set(database) for database in databases):
            self.fail(
                f"{path}.exclude_databases",
                "only applies to databases found through a pattern; databases has none "
                '(e.g. "*" or "prod_*")',
            )
        discovery_interval = (
            self.duration(item, "discovery_interval", 300.0, minimum=1.0, path=path)
            if "discovery_interval" in item
            else None
        )
        if name is None or endpoint is None:
            return None
        return ClusterConfig(
            name=name,
            endpoint=endpoint,
            token=token,
            databases=databases,
            jobs=tuple(dict.fromkeys(jobs)),
            token_file=token_file,
            inline_token=bool(token) and self.is_literal(item, "token"),
            tls_ca_file=ca_file,
            tls_insecure_skip_verify=insecure,
            exclude_databases=excluded,
            discovery_interval=discovery_interval,
        )

    def state_file(self, document: dict[str, Any]) -> str | None:
        """A path, not checked against this machine's disk: a container config names a volume
        that is mounted only where it runs. A missing or read-only directory is logged and
        counted at run time (state_write_errors_total); polling goes on without the file."""
        if "state_file" not in document:
            return None
        path = self.string(document, "state_file", None)
        if path is None:
            return None
        if not path.strip() or "\x00" in path:
            self.fail("state_file", "expected a file path")
            return None
        return path

    def endpoint(self, value: str, path: str) -> str | None:
        if not re.match(r"^https?://[^/\s]+", value):
            self.fail(
                path,
                "must start with http:// or https:// followed by a host, "
                f"got {self.shown(path, value)}",
            )
            return None
        if "?" in value or "#" in value:
            self.fail(path, "must not carry a query string or fragment")
            return None
        return value.rstrip("/")

    def token(self, item: dict[str, Any], path: str) -> tuple[str, str | None]:
        """The secret, from ``token`` (with ``${VAR}``) or ``token_file``; never both."""
        has_inline = "token" in item
        has_file = "token_file" in item
        if has_inline and has_file:
            self.fail(f"{path}.token_file", "give either token or token_file, not both")
            return "", None
        if has_file:
            file_path = self.string(item, "token_file", None, path)
            if file_path is None:
                return "", None
            shown = self.shown(f"{path}.token_file", file_path, quote=False)
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
                self.fail(f"{path}.token_file", f"cannot read token file {shown}: {reason}")
                return "", file_path
            if not token:
                self.fail(f"{path}.token_file", f"token file {shown} is empty")
            return token, file_path
        if not has_inline:
            return "", None
        inline = self.string(item, "token", None, path)
        if inline is not None and not inline.strip():
            self.fail(
                f"{path}.token", "is empty (remove the key for a Milvus without authentication)"
            )
        return (inline or "").strip(), None

    def is_literal(self, item: dict[str, Any], key: str) -> bool:
        value = item.get(key)
        return isinstance(value, str) and not _ENV_REFERENCE.search(value)

    def raw(self, mapping: dict[str, Any], key: str, path: str) -> tuple[str, Any]:
        return (f"{path}.{key}" if path else key), mapping.get(key)

    def string(
        self, mapping: dict[str, Any], key: str, default: str | None, path: str = ""
    ) -> str | None:
        key_path, value = self.raw(mapping, key, path)
        if key not in mapping:
            if default is None:
                self.fail(key_path, "missing")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(key_path, f"expected a string, got {type_name(value)}")
            return default
        if isinstance(value, int) and value.bit_length() > 1000:  # str() refuses 4300 digits
            self.fail(key_path, f"expected a string, got {number_text(value)}")
            return default
        return self.expand(str(value), key_path)

    def expand(self, value: str, path: str) -> str | None:
        """Replace ``${VAR}`` / ``${VAR:-default}`` from the environment; ``$$`` is a literal ``$``."""
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, fallback = match.group(1), match.group(2)
            if name in self.environ:
                return self.environ[name]
            if fallback is not None:
                return fallback
            missing.append(name)
            return ""

        expanded = _ENV_REFERENCE.sub(replace, value)
        if expanded != value:
            self.written[path] = value
        for name in missing:
            self.fail(path, f"environment variable {name} is not set")
        if not missing and _SURROGATE.search(expanded):
            # "\ud800" in a YAML string, or undecodable bytes in an environment variable: it
            # could never be encoded into a label, a log line or a header. Never echoed.
            self.fail(path, "is not valid Unicode text (it holds a lone UTF-16 surrogate)")
            return None
        return None if missing else expanded

    def string_list(
        self, mapping: dict[str, Any], key: str, default: tuple[str, ...], path: str
    ) -> tuple[str, ...]:
        key_path, value = self.raw(mapping, key, path)
        if key not in mapping:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(key_path, f"expected a non-empty list of names, got {type_name(value)}")
            return default
        items: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int)) or not str(item).strip():
                self.fail(
                    f"{key_path}[{index}]", f"expected a non-empty name, got {type_name(item)}"
                )
                continue
            expanded = self.expand(str(item), f"{key_path}[{index}]")
            if expanded is None:
                continue
            if expanded in items:
                shown = self.shown(f"{key_path}[{index}]", expanded)
                self.fail(f"{key_path}[{index}]", f"{shown} is listed twice")
                continue
            items.append(expanded)
        return tuple(items) if items else default


def _valid_listen_address(value: str) -> bool:
    match = _LISTEN.match(value)
    return bool(match) and 0 <= int(match.group(2)) <= 65535  # type: ignore[union-attr]


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
