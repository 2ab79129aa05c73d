"""Reading a YAML config file: one layer for the exporter config and the web config.

Every problem is collected, not just the first, each as one line naming the file, the line and
the key path (``config.yaml:12: clusters[1].endpoint: must start with http://``), so a user fixes
the whole file in one go. Messages never quote a value that may be secret. Both
``loader.py`` and ``web/webconfig.py`` subclass ``Checker`` with what only they know.

What YAML itself can throw at a reader is handled here once: unprintable characters, nesting
deep enough to exhaust the stack, constructor errors for tags a value does not fit
(``!!int abc``), duplicate keys (PyYAML would silently keep the last one) and alias bombs
(each node is walked once).

Why not a validation library: pydantic 2.14, given the same broken file, reports the key path but
no line, quotes every offending value (``input_value=12345`` for a token written as a number),
answers a misspelt key with "Extra inputs are not permitted" and no suggestion, and takes no part
in the YAML guards above. Keeping today's messages would keep everything here but the typed
readers of ``Checker`` (about 90 lines of 1,271 in the three config modules) and add a
translation of its error types plus ~10 MB of dependency; so the readers stay.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .durations import parse_duration

MAX_INTEGER_SETTING = 2**63 - 1  # beyond int64 a count is a typo, and too long to even print


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        # One line per problem, even when a YAML key or a parser message holds a line break.
        return " ".join(text.splitlines())


class ConfigFileError(Exception):
    """A config file that cannot be used; ``str()`` gives one line per problem."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problem.render(source) for problem in problems))


def read_text(path: str | os.PathLike[str], what: str, error: type[ConfigFileError]) -> str:
    """The file's text, or ``error`` naming why it cannot be read (never a traceback)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        reason = (
            problem.strerror
            if isinstance(problem, OSError) and problem.strerror
            else "not UTF-8 text"
        )
        raise error(str(path), [ConfigProblem("", f"cannot read {what}: {reason}")]) from None


def parse_yaml(text: str, source: str, error: type[ConfigFileError]) -> tuple[Any, dict[str, int]]:
    """The document and a map of every key path to its 1-based line; ``error`` if unusable."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # its reader already refuses unprintable characters
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            duplicates = _index_lines(node, lines)
            if duplicates:
                raise error(source, duplicates)
        document = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as problem:
        # Only the problem and the line: the snippet PyYAML quotes could hold a secret.
        mark = problem.problem_mark or problem.context_mark
        line = mark.line + 1 if mark else None
        described = problem.problem or problem.context or "not valid YAML"
        raise error(source, [ConfigProblem("", f"invalid YAML: {described}", line)]) from None
    except yaml.reader.ReaderError as problem:
        line = text.count("\n", 0, problem.position) + 1
        character = (
            f"#x{problem.character:04x}" if isinstance(problem.character, int) else "character"
        )
        described = f"invalid YAML: unacceptable character {character}: {problem.reason}"
        raise error(source, [ConfigProblem("", described, line)]) from None
    except yaml.YAMLError as problem:
        raise error(source, [ConfigProblem("", f"invalid YAML: {problem}")]) from None
    except RecursionError:
        raise error(source, [ConfigProblem("", "invalid YAML: nested too deeply")]) from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as problem:
        # PyYAML's constructors let these through for a tag the value does not fit
        # (``!!int abc``, ``!!bool maybe``, ``!!timestamp 2001-13-45``, an int of 5000 digits).
        detail = " ".join(str(problem).split())[:100]
        described = f"invalid YAML: a value does not fit its type or tag ({detail})"
        raise error(source, [ConfigProblem("", described)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return document, lines


def _index_lines(root: yaml.Node, lines: dict[str, int]) -> list[ConfigProblem]:
    """Map every key path (``clusters[1].endpoint``) to its line; return duplicate keys.

    Each node is walked once: an alias points back at a node already walked, and walking it
    again would make ``&a [*a]`` endless and a "billion laughs" document take for ever.
    """
    duplicates: list[ConfigProblem] = []
    seen: set[int] = set()
    pending: list[tuple[yaml.Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                child = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                if key in keys and key != "<<":
                    duplicates.append(
                        ConfigProblem(child, "duplicate key (only one may be given)", line)
                    )
                keys.add(key)
                lines[child] = line
                pending.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                pending.append((item, f"{path}[{index}]"))
    duplicates.sort(key=lambda problem: problem.line or 0)
    return duplicates


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, ignoring case; "" if none is close."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def number_text(value: float) -> str:
    """``str()`` of a number, which for an int over 4300 digits raises instead of printing."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"a number of about {int(value.bit_length() * math.log10(2))} digits"
    return str(value)


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """True if users other than the owner may read the file (and so a secret in it)."""
    try:
        return bool(Path(path).stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


class Checker:
    """Collects problems and warnings, each with its key path and line, while reading."""

    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[ConfigProblem] = []
        self.warnings: list[str] = []

    def line_of(self, path: str) -> int | None:
        line = self.lines.get(path)
        if line is None and "." in path:
            line = self.lines.get(path.rsplit(".", 1)[0])
        return line

    def fail(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path, message, self.line_of(path)))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ConfigProblem(path, message, self.line_of(path)).render(self.source))

    def mapping(self, value: Any, path: str) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            subject = "must be" if path else "the file must be"
            self.fail(path, f"{subject} a mapping of keys, not {type_name(value)}")
            return None
        return value

    def unknown_keys(
        self, mapping: dict[Any, Any], known: Sequence[str], path: str, list_known: bool = False
    ) -> None:
        """One problem per key not in ``known``, with the closest known key (or all of them)."""
        for key in mapping:
            if key in known:
                continue
            name = number_text(key) if isinstance(key, int) else str(key)
            child = f"{path}.{name}" if path else name
            hint = suggest(name, known)
            if not hint and list_known:
                hint = f"; known keys: {', '.join(known)}"
            self.fail(child, f"unknown key{hint}")

    def boolean(self, mapping: dict[Any, Any], key: str, default: bool, path: str = "") -> bool:
        key_path = f"{path}.{key}" if path else key
        value = mapping.get(key)
        if key not in mapping or value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key_path, f"expected true or false, got {_shown(value)}")
            return default
        return value

    def duration(
        self,
        mapping: dict[Any, Any],
        key: str,
        default: float | None,
        minimum: float,
        path: str = "",
    ) -> float | None:
        if key not in mapping:
            return default
        value = mapping[key]
        key = f"{path}.{key}" if path else key
        if isinstance(value, bool) or not isinstance(value, str):
            # Never repr() an arbitrary value: an alias bomb makes it enormous.
            shown = number_text(value) if isinstance(value, (int, float)) else type_name(value)
            self.fail(key, f"expected a duration with a unit such as 30s or 5m, got {shown}")
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            self.fail(key, str(error))
            return default
        if seconds < minimum:
            self.fail(key, f"{value!r} is too short; at least {minimum:g}s")
            return default
        return seconds

    def number(
        self, mapping: dict[Any, Any], key: str, default: float, minimum: float, path: str = ""
    ) -> float:
        if key not in mapping:
            return default
        value = mapping[key]
        key = f"{path}.{key}" if path else key
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {type_name(value)}")
            return default
        if isinstance(value, int) and abs(value) > 10**300:  # float() and isfinite() overflow
            self.fail(key, f"must be a finite number, got {number_text(value)}")
            return default
        if not math.isfinite(value):
            self.fail(key, f"must be a finite number, got {value}")
            return default
        if value < minimum:
            self.fail(key, f"must be at least {minimum:g}, got {value}")
            return default
        return float(value)

    def integer(
        self, mapping: dict[Any, Any], key: str, default: int, minimum: int, path: str = ""
    ) -> int:
        if key not in mapping:
            return default
        value = mapping[key]
        key = f"{path}.{key}" if path else key
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected a whole number, got {type_name(value)}")
            return default
        if value < minimum:
            self.fail(key, f"must be at least {minimum}, got {number_text(value)}")
            return default
        if value > MAX_INTEGER_SETTING:
            self.fail(key, f"must be at most {MAX_INTEGER_SETTING}, got {number_text(value)}")
            return default
        return value


def _shown(value: Any) -> str:
    """A short, non-secret value as it was written; anything else by its type."""
    if isinstance(value, str) and len(value) <= 40:
        return repr(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_text(value)
    return type_name(value)
