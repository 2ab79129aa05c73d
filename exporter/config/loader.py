"""Load and validate the YAML config into frozen dataclasses.

Every problem is reported, not just the first, each as one line naming the key path and the line
in the file (``config.yaml:12: clusters[1].endpoint: must start with http:// or https://``), so a
user fixes the whole file in one go. Secrets are kept out of ``repr`` and out of every message.

Which keys there are, and how each is read, is declared once in ``keys`` (``Config``,
``ClusterConfig``); here a section of the file is read key by key as declared, with ``${VAR}``
expanded from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .keys import (
    DEFAULT_LISTEN_ADDRESS,
    DEFAULT_PORT,
    JOB_KINDS,
    PATTERN_CHARACTERS,
    ClusterConfig,
    Config,
    parse_shard,
    split_listen_address,
)
from .reader import (
    Checker,
    ConfigFileError,
    ConfigProblem,
    number_text,
    parse_yaml,
    read_text,
    readable_by_others,
    type_name,
)
from .schema import Arguments, declared, key_names

__all__ = [
    "CLUSTER_KEYS",
    "DEFAULT_LISTEN_ADDRESS",
    "DEFAULT_PORT",
    "JOB_KINDS",
    "PATTERN_CHARACTERS",
    "TOP_LEVEL_KEYS",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",  # the lines of a ConfigError
    "load_config",
    "parse_config",
    "parse_shard",
    "split_listen_address",
]


class ConfigError(ConfigFileError):
    """The config cannot be used; ``str()`` gives one line per problem."""


TOP_LEVEL_KEYS = key_names(Config)
CLUSTER_KEYS = key_names(ClusterConfig)
_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """Collects problems while converting the parsed document into a ``Config``: the
    ``schema.Reading`` the key readers read through."""

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
        return Config(**self.section(Config, document, ""), source=source)

    def section(self, kind: type, mapping: dict[str, Any], path: str) -> Arguments:
        """The constructor arguments of ``kind`` from ``mapping`` (the section at ``path``),
        each key read as ``kind`` declares it; unknown keys are problems."""
        keys = declared(kind)
        self.unknown_keys(mapping, [entry.name for entry in keys], path)
        arguments: Arguments = {}
        for entry in keys:
            arguments.update(entry.key.reader.read(self, mapping, entry, path, arguments))
        return arguments

    def is_literal(self, mapping: dict[str, Any], key: str) -> bool:
        value = mapping.get(key)
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
