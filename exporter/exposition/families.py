"""Plain metric families: what the model produces and the exposition renders.

They are deliberately simpler than prometheus_client's classes: built once per poll cycle from
immutable snapshots, then rendered once to bytes. Scrapes never touch them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]
"""(suffix after the family name such as ``""`` / ``"_total"`` / ``"_bucket"``, labels, value)"""


class MetricFamily:
    """One ``# HELP`` / ``# TYPE`` block; ``name`` of a counter excludes ``_total``.

    Samples are rendered to exposition bytes as they are added: 100,000 jobs make about 700,000
    samples, and keeping them as label tuples until render time cost more memory than the text.
    The sample lines are the same in the Prometheus text format and in OpenMetrics; only the
    ``# HELP`` / ``# TYPE`` header differs, so one body serves both.
    """

    __slots__ = ("_body", "help", "name", "type")

    def __init__(self, name: str, type: str, help: str) -> None:
        self.name = name
        self.type = type
        self.help = help
        self._body = bytearray()

    def add(self, labels: Labels, value: float, suffix: str = "") -> None:
        self.add_rendered(render_labels(labels), value, suffix)

    def add_rendered(self, label_text: str, value: float, suffix: str = "") -> None:
        """Add a sample whose labels are already rendered (``{a="b"}``, or ``""`` for none)."""
        self._body += f"{self.name}{suffix}{label_text} {format_float(value)}\n".encode()

    def add_text(self, lines: bytes) -> None:
        """Add sample lines rendered before (``mark`` / ``since``): what an unchanged job or
        collection wrote last cycle, taken again as it is."""
        self._body += lines

    def add_slice(self, source: bytearray, start: int, end: int) -> None:
        """Add ``source[start:end]``, lines of an earlier cycle's body (``buffer``) taken again
        as they are, without an intermediate copy."""
        with memoryview(source) as view:
            self._body += view[start:end]

    def buffer(self) -> bytearray:
        """The body as written so far, not a copy: what the next cycle may take lines from
        (``add_slice``). Nothing changes a body once its cycle is published."""
        return self._body

    def mark(self) -> int:
        """Where the next sample starts: ``since(mark)`` gives what was added after it."""
        return len(self._body)

    def since(self, mark: int) -> bytes:
        with memoryview(self._body) as view:
            return bytes(view[mark:])

    def extend(self, samples: Iterable[Sample]) -> None:
        for suffix, labels, value in samples:
            self.add(labels, value, suffix)

    @property
    def body(self) -> bytes:
        return bytes(self._body)

    def take_body(self) -> bytearray:
        """Hand the rendered samples over without a copy; the family is empty afterwards.

        At 100,000 jobs the bodies are ~100 MB: copying them at publish, while the previous
        exposition is still served, pushed peak memory from ~390 to ~500 MB."""
        body, self._body = self._body, bytearray()
        return body


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def render_label_pairs(labels: Labels) -> str:
    """``a="1",b="2"`` (no braces), escaped, for building longer label sets by prefix."""
    return ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels)


def render_labels(labels: Labels) -> str:
    return "{" + render_label_pairs(labels) + "}" if labels else ""


@dataclass(slots=True)
class HistogramState:
    """Cumulative histogram buckets kept across cycles (the model owns the only copy)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def samples(self, labels: Labels) -> Iterator[Sample]:
        cumulative = 0
        for bound, bucket_count in zip(self.bounds, self.counts, strict=True):
            cumulative += bucket_count
            yield ("_bucket", (*labels, ("le", format_float(bound))), float(cumulative))
        yield ("_bucket", (*labels, ("le", "+Inf")), float(self.count))
        yield ("_sum", labels, self.total)
        yield ("_count", labels, float(self.count))


def histogram_family(
    name: str, help_text: str, series: Sequence[tuple[Labels, HistogramState]]
) -> MetricFamily:
    family = MetricFamily(name, "histogram", help_text)
    for labels, state in series:
        family.extend(state.samples(labels))
    return family


_COMMON_FLOATS = {0.0: "0.0", 1.0: "1.0"}


def format_float(value: float) -> str:
    """Go-style float text, as Prometheus clients write it (``1.0``, ``+Inf``, ``1e+18``)."""
    common = _COMMON_FLOATS.get(value)
    if common is not None:
        return common
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    if value != value:
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}.0"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
    return text
