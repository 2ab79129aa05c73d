"""Every kind of Milvus background job the exporter watches, each declared once in its own module
(``refresh``, ``imports``, ``restore``; the shape of a declaration in ``declaration``), and the
registry the machinery iterates over (``KINDS``, ``kind_named``). A new kind is one module here,
its metrics in the catalogue, its line below, and docs; nothing else names it.

The values ``jobs describe`` shows are formatted by ``view``; a state file entry's fields are
read by ``saved``.

May import ``upstream`` (the record parsers and their field readers), ``exposition`` (the
catalogue's metrics) and ``guards``. Holds data and pure functions only, never machinery:
``config``, ``polling``, ``memory`` and ``metrics`` import it.

A test adds a kind of its own for as long as it runs::

    with KINDS.added(FAKE):
        ...  # the config accepts jobs: [fake], the daemon polls and exports it
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, overload

from .declaration import JobKind
from .imports import IMPORT
from .refresh import REFRESH
from .restore import RESTORE

AnyKind = JobKind[Any, Any]


class UnknownKind(KeyError):
    """A kind name no declaration has."""


class Registry(Sequence[AnyKind]):
    """The declared kinds in order (the order of /metrics, the docs, the dashboards and the
    rules); iterated live, so a kind added by a test is seen by everything while it is added."""

    def __init__(self, *kinds: AnyKind) -> None:
        self._kinds: list[AnyKind] = []
        for kind in kinds:
            self._add(kind)

    @overload
    def __getitem__(self, index: int) -> AnyKind: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AnyKind]: ...

    def __getitem__(self, index: int | slice) -> AnyKind | Sequence[AnyKind]:
        return self._kinds[index]

    def __len__(self) -> int:
        return len(self._kinds)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(kind.name for kind in self._kinds)

    @property
    def defaults(self) -> tuple[str, ...]:
        """What a cluster without ``jobs`` polls."""
        return tuple(kind.name for kind in self._kinds if kind.default)

    def named(self, name: str) -> AnyKind:
        for kind in self._kinds:
            if kind.name == name:
                return kind
        raise UnknownKind(name)

    @contextlib.contextmanager
    def added(self, kind: AnyKind) -> Iterator[AnyKind]:
        """``kind`` is declared until the block ends (for tests)."""
        self._add(kind)
        try:
            yield kind
        finally:
            self._kinds.remove(kind)

    def _add(self, kind: AnyKind) -> None:
        if kind.name in self.names:
            raise ValueError(f"a kind named {kind.name!r} is declared already")
        prefixes = {other.metric_prefix for other in self._kinds}
        if kind.metric_prefix in prefixes:
            raise ValueError(f"another kind's series start with {kind.metric_prefix!r}")
        self._kinds.append(kind)


KINDS = Registry(REFRESH, IMPORT, RESTORE)
"""Every declared kind, in order."""


def kind_named(name: str) -> AnyKind:
    """The declaration of the kind called ``name`` (``UnknownKind`` if none is)."""
    return KINDS.named(name)


__all__ = ["KINDS", "AnyKind", "JobKind", "Registry", "UnknownKind", "kind_named"]
