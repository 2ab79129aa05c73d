"""Plain metric families: what the model produces and the exposition renders.

They are deliberately simpler than prometheus_client's classes: built once per poll cycle from
immutable snapshots, then rendered once to bytes. Scrapes never touch them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]
"""(suffix after the family name such as ``""`` / ``"_total"`` / ``"_bucket"``, labels, value)"""


@dataclass(slots=True)
class MetricFamily:
    """One ``# HELP`` / ``# TYPE`` block; ``name`` of a counter excludes ``_total``."""

    name: str
    type: str
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, labels: Labels, value: float, suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))


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
        family.samples.extend(state.samples(labels))
    return family


def format_float(value: float) -> str:
    """Go-style float text, as Prometheus clients write it (``1.0``, ``+Inf``, ``1e+18``)."""
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
