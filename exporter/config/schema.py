"""How a config key is declared: once, as a field of the config's dataclass.

The field names the key, its type and default; its ``key(...)`` says how the value is read and
checked (a ``Reader``: a duration with a minimum, a whole number, a list of names...) and gives
the doc line::

    poll_interval: float = key(30.0, Duration(minimum=0.1), "time between two poll cycles")

From the declarations come the known keys (and so the did-you-mean for a misspelt one), the
reading of a file (``loader``) and the keys table of docs/configuration.md (``reference``). A
new key of a kind that exists is that one field, the code that uses it, and a line of
config.example.yaml; a new kind of value is a ``Reader`` here, or beside its keys in ``keys``
when only they need it.

Readers never touch the file or the environment themselves: they read through a ``Reading``
(the loader's checker), which expands ``${VAR}``, keeps every problem with its key path and line,
and never quotes a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Protocol, TypeVar

from .durations import format_duration

T = TypeVar("T")
METADATA = "exporter.config.key"
"""Where a field's ``Key`` sits in its ``dataclasses.Field.metadata``."""
Arguments = dict[str, Any]
"""Constructor arguments of a config dataclass, by attribute name."""


class Reading(Protocol):
    """What a reader may ask of the file being read (``loader._Checker`` provides it)."""

    def fail(self, path: str, message: str) -> None: ...

    def shown(self, path: str, value: str, quote: bool = True) -> str: ...

    def is_literal(self, mapping: dict[str, Any], key: str) -> bool: ...

    def string(
        self, mapping: dict[str, Any], key: str, default: str | None, path: str = ""
    ) -> str | None: ...

    def string_list(
        self, mapping: dict[str, Any], key: str, default: tuple[str, ...], path: str
    ) -> tuple[str, ...]: ...

    def duration(
        self,
        mapping: dict[Any, Any],
        key: str,
        default: float | None,
        minimum: float,
        path: str = "",
    ) -> float | None: ...

    def integer(
        self, mapping: dict[Any, Any], key: str, default: int, minimum: int, path: str = ""
    ) -> int: ...

    def number(
        self, mapping: dict[Any, Any], key: str, default: float, minimum: float, path: str = ""
    ) -> float: ...

    def boolean(self, mapping: dict[Any, Any], key: str, default: bool, path: str = "") -> bool: ...

    def section(self, kind: type, mapping: dict[str, Any], path: str) -> Arguments: ...


@dataclass(frozen=True)
class Declared:
    """One key as a config dataclass declares it."""

    attribute: str
    """The dataclass attribute (``shard_index`` for the key ``shard``)."""
    name: str
    """The key as written in the file."""
    key: Key
    default: Any
    """The field's default, or ``dataclasses.MISSING`` for a key without one."""

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def path(self, section: str) -> str:
        """The key path in messages: ``poll_interval``, ``clusters[1].endpoint``."""
        return f"{section}.{self.name}" if section else self.name

    def shown_default(self) -> str:
        """The docs' default column."""
        if self.key.shown_default:
            return self.key.shown_default
        if self.required:
            return "required"
        return self.key.reader.shown(self.default)


class Reader:
    """Reads and checks one key's value; a subclass says how for one kind of value."""

    section: type | None = None
    """The dataclass of each item, for a key that holds a list of sections (``clusters``)."""

    def read(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> Arguments:
        """The constructor arguments this key gives, from ``mapping`` (the section at ``path``;
        ``so_far`` holds what the keys before it gave)."""
        return {declared.attribute: self.value(reading, mapping, declared, path, so_far)}

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> Any:
        raise NotImplementedError

    def shown(self, default: Any) -> str:
        """``default`` as the docs show it."""
        return "none" if default is None else f"`{default}`"


@dataclass(frozen=True)
class Key:
    """A field's declaration as a config key: how it is read, and its doc line."""

    reader: Reader
    doc: str
    name: str = ""
    """The key in the file, when it is not the attribute's name."""
    shown_default: str = ""
    """The docs' default column, when the reader cannot tell it from the default."""


def key(default: T, reader: Reader, doc: str, *, name: str = "", shown_default: str = "") -> T:
    """Declare a config key with a default: ``max_retries: int = key(2, Integer(minimum=0), ...)``."""
    declaration = Key(reader, doc, name, shown_default)
    return field(default=default, metadata={METADATA: declaration})


def required(reader: Reader, doc: str, *, shown_default: str = "") -> Mapping[str, Key]:
    """The metadata of a key without a default: ``name: str = field(metadata=required(...))``
    (a plain ``field`` keeps the constructor argument required for mypy too)."""
    return {METADATA: Key(reader, doc, "", shown_default)}


def declared(kind: type) -> tuple[Declared, ...]:
    """The keys of a config dataclass in the order they are read and documented: its own keys
    as declared, then those holding a list of sections (``clusters``), as a file is laid out."""
    keys = [
        Declared(item.name, declaration.name or item.name, declaration, item.default)
        for item in dataclasses.fields(kind)
        if isinstance(declaration := item.metadata.get(METADATA), Key)
    ]
    return tuple(sorted(keys, key=lambda entry: entry.key.reader.section is not None))


def key_names(kind: type) -> tuple[str, ...]:
    """The keys a section of this dataclass may hold, as written in the file."""
    return tuple(entry.name for entry in declared(kind))


TextCheck = Callable[[Reading, str, str, Arguments], str | None]
"""Refines a string read: ``(reading, value, key path, what the keys before gave) -> value``;
it reports a problem with ``reading.fail`` and returns what the config should hold (None: the
key's default, or nothing for a key without one)."""
NamesCheck = Callable[[Reading, tuple[str, ...], str, Arguments], tuple[str, ...]]
"""Refines a list of names read, the same way."""


@dataclass(frozen=True)
class Duration(Reader):
    """A Prometheus duration (``30s``, ``1h30m``) of at least ``minimum`` seconds."""

    minimum: float

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> float | None:
        return reading.duration(mapping, declared.name, declared.default, self.minimum, path)

    def shown(self, default: Any) -> str:
        if default is None:
            return "none"
        days, rest = divmod(default, 86_400)
        return f"`{days:g}d`" if days and not rest else f"`{format_duration(default)}`"


@dataclass(frozen=True)
class Integer(Reader):
    """A whole number of at least ``minimum`` (and at most int64)."""

    minimum: int

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> int:
        return reading.integer(mapping, declared.name, declared.default, self.minimum, path)


@dataclass(frozen=True)
class Number(Reader):
    """A finite number of at least ``minimum``."""

    minimum: float

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> float:
        return reading.number(mapping, declared.name, declared.default, self.minimum, path)

    def shown(self, default: Any) -> str:
        return f"`{default:g}`"


@dataclass(frozen=True)
class Boolean(Reader):
    """``true`` or ``false``."""

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> bool:
        return reading.boolean(mapping, declared.name, declared.default, path)

    def shown(self, default: Any) -> str:
        return "`true`" if default else "`false`"


@dataclass(frozen=True)
class Text(Reader):
    """A string, ``${VAR}`` expanded; ``check`` may refuse or normalise it. A key without a
    default is reported missing; one whose default is None is read only when given."""

    check: TextCheck | None = None

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> str | None:
        default = None if declared.required else declared.default
        if declared.name not in mapping and not declared.required:
            return default
        text = reading.string(mapping, declared.name, default, path)
        if text is not None and self.check is not None:
            text = self.check(reading, text, declared.path(path), so_far)
        return default if text is None else text


@dataclass(frozen=True)
class Names(Reader):
    """A non-empty list of distinct names (one name alone counts as a list of one), each
    ``${VAR}`` expanded; ``check`` may refuse some."""

    check: NamesCheck | None = None

    def value(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> tuple[str, ...]:
        names = reading.string_list(mapping, declared.name, declared.default, path)
        if self.check is not None:
            names = self.check(reading, names, declared.path(path), so_far)
        return names

    def shown(self, default: Any) -> str:
        return f"`[{', '.join(default)}]`" if default else "none"


@dataclass(frozen=True)
class Alongside(Reader):
    """A key read by another key's reader (``token_file`` by ``token``'s: one without the other
    cannot be judged); it adds no arguments of its own."""

    reader_of: str

    def read(
        self,
        reading: Reading,
        mapping: dict[str, Any],
        declared: Declared,
        path: str,
        so_far: Arguments,
    ) -> Arguments:
        return {}
