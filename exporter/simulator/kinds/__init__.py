"""The simulated server's job kinds, one module each, and their registry.

Adding a kind to the simulator is one module here (a `SimKind` subclass: its schedule, records,
routes, knobs and fates, see `base.py`) plus one line in `KINDS`; the API, the world, the faults,
the control API (`POST /_simulator/<control_route>`) and the `simulate` flags follow from it.
A test may also hand its own registry to `Simulator(options, kinds=Registry((...)))`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import imports, refresh, restore
from .base import SimKind
from .knobs import Knob


class Registry:
    """An ordered set of kinds with unique names, paths and control routes."""

    def __init__(self, kinds: tuple[SimKind[Any], ...]) -> None:
        self.kinds = kinds
        self._by_path: dict[str, SimKind[Any]] = {}
        for kind in kinds:
            for path in kind.routes():
                if path in self._by_path:
                    raise ValueError(f"two kinds answer {path}")
                self._by_path[path] = kind
        for attribute in ("name", "control_route"):
            values = [getattr(kind, attribute) for kind in kinds]
            if len(set(values)) != len(values):
                raise ValueError(f"two kinds share a {attribute}")
        knob_names = [knob.name for knob in self.knobs()]
        if len(set(knob_names)) != len(knob_names):
            raise ValueError("two knobs share a name")

    def __iter__(self) -> Iterator[SimKind[Any]]:
        return iter(self.kinds)

    def named(self, name: str) -> SimKind[Any]:
        for kind in self.kinds:
            if kind.name == name:
                return kind
        known = ", ".join(kind.name for kind in self.kinds)
        raise KeyError(f"unknown job kind {name!r}; known: {known}")

    def of_path(self, path: str) -> SimKind[Any] | None:
        """The kind that answers `path`, or None (the database and collection lists)."""
        return self._by_path.get(path)

    def paths(self) -> tuple[str, ...]:
        return tuple(self._by_path)

    def knobs(self) -> tuple[Knob, ...]:
        return tuple(knob for kind in self.kinds for knob in kind.knobs)


KINDS = Registry((refresh.KIND, imports.KIND, restore.KIND))
"""Every kind the simulator serves, in the order its answers and flags list them."""
