"""Knobs a kind declares: each one a `SimulatorOptions.knobs` key, a `simulate` flag and, when
it is read per request, a value the control API may change while the simulator serves.

A kind names its knobs after itself (`restore_outcome`, `import_v3_jobs`), so the flat namespace
stays readable however many kinds there are:

    SimulatorOptions(knobs={"restore_jobs_per_database": 2, "restore_outcome": "failed"})
    milvus-jobs-exporter simulate --restore-jobs-per-database 2 --restore-outcome failed
    POST /_simulator/knobs {"restore_not_served": true}       # live knobs only
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast


@dataclass(frozen=True)
class Knob:
    """One declared knob. `check` turns a value given in Python or JSON into the knob's value
    (ValueError when it is not one); `parse` does the same for a command-line word. A `live`
    knob is read on every request, so changing it while serving is safe; `switch` knobs are
    command-line flags without a value."""

    name: str
    default: object
    help: str
    check: Callable[[object], object]
    parse: Callable[[str], object]
    live: bool = False
    switch: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def count(name: str, default: int, help: str, live: bool = False) -> Knob:
    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0")
        return value

    return Knob(name, default, help, check, lambda word: check(_integer(name, word)), live)


def probability(name: str, default: float, help: str, live: bool = False) -> Knob:
    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number between 0 and 1")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
        return float(value)

    return Knob(name, default, help, check, lambda word: check(_number(name, word)), live)


def text(name: str, default: str, help: str, live: bool = False) -> Knob:
    def check(value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value

    return Knob(name, default, help, check, check, live)


def names(name: str, help: str, live: bool = False) -> Knob:
    """A tuple of names; on the command line, comma-separated."""

    def check(value: object) -> object:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list of strings")
        if not all(isinstance(item, str) and item for item in value):
            raise ValueError(f"{name} must be a list of non-empty strings")
        return tuple(value)

    def parse(word: str) -> object:
        return tuple(item.strip() for item in word.split(",") if item.strip())

    return Knob(name, (), help, check, parse, live)


def switch(name: str, help: str, live: bool = False) -> Knob:
    """Off unless given; `--name` on the command line turns it on."""

    def check(value: object) -> object:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value

    return Knob(name, False, help, check, lambda word: check(word == "true"), live, switch=True)


def choice(
    name: str, default: object, choices: tuple[object, ...], help: str, live: bool = False
) -> Knob:
    shown = ", ".join(str(item) for item in choices)

    def check(value: object) -> object:
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"{name} must be one of {shown}")
        return value

    def parse(word: str) -> object:
        for item in choices:
            if str(item) == word:
                return item
        raise ValueError(f"{name} must be one of {shown}")

    return Knob(name, default, help, check, parse, live)


class KnobValues:
    """The value of every declared knob: the option's where given, else the default.

    Unknown names and bad values are refused at once with one line naming the knob. Changes
    (`set`) swap the whole mapping, so a request never sees half of one.
    """

    def __init__(self, declared: Iterable[Knob], given: Mapping[str, object]) -> None:
        self._declared = {knob.name: knob for knob in declared}
        self._lock = threading.Lock()
        self._values = {name: knob.default for name, knob in self._declared.items()}
        self._values.update(self._checked(given, live_only=False))

    def declared(self) -> tuple[Knob, ...]:
        return tuple(self._declared.values())

    def value(self, name: str) -> object:
        return self._values[name]

    def count(self, name: str) -> int:
        return cast(int, self._values[name])

    def number(self, name: str) -> float:
        return cast(float, self._values[name])

    def text(self, name: str) -> str:
        return cast(str, self._values[name])

    def flag(self, name: str) -> bool:
        return cast(bool, self._values[name])

    def names(self, name: str) -> tuple[str, ...]:
        return cast(tuple[str, ...], self._values[name])

    def snapshot(self) -> dict[str, object]:
        return dict(self._values)

    def set(self, values: Mapping[str, object]) -> None:
        """Change live knobs while serving: all of them, or none when one is refused."""
        checked = self._checked(values, live_only=True)
        with self._lock:
            self._values = {**self._values, **checked}

    def _checked(self, values: Mapping[str, object], live_only: bool) -> dict[str, object]:
        checked: dict[str, object] = {}
        for name, value in values.items():
            knob = self._declared.get(name)
            if knob is None:
                known = ", ".join(sorted(self._declared))
                raise ValueError(f"unknown simulator knob {name!r}; known: {known}")
            if live_only and not knob.live:
                raise ValueError(f"knob {name} is fixed when the simulator starts")
            checked[name] = knob.check(value)
        return checked


def _integer(name: str, word: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"{name} must be a whole number >= 0") from None


def _number(name: str, word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ValueError(f"{name} must be a number between 0 and 1") from None
