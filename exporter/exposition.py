"""Render metric families once per poll cycle and hand scrapes cached bytes.

The data only changes when a poll cycle finishes, while Prometheus (often an HA pair) scrapes
far more often, so rendering per scrape would redo the same work many times. ``ExpositionCache``
renders the text format when a cycle is published and the gzip and OpenMetrics variants on the
first scrape that asks for them. Only the exporter's own process metrics (a few lines) are
rendered per scrape, appended to the cached body; for gzip the compressor state after the cached
body is kept, so the tail is compressed on a copy and the answer stays one gzip member.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .families import MetricFamily, format_float

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_GZIP_WINDOW_BITS = 31  # zlib wbits for a gzip container
_GZIP_LEVEL = 6


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def render(families: Iterable[MetricFamily], openmetrics: bool = False) -> str:
    """The exposition text of ``families`` (without the OpenMetrics ``# EOF`` line)."""
    lines: list[str] = []
    append = lines.append
    label_cache: dict[tuple[tuple[str, str], ...], str] = {}
    for family in families:
        name, family_type = family.name, family.type
        header_name = name
        if family_type == "counter" and not openmetrics:
            header_name = name + "_total"
        if openmetrics and family_type == "gauge" and name.endswith("_info"):
            family_type, header_name = "info", name[: -len("_info")]
        append(f"# HELP {header_name} {_escape_help(family.help, openmetrics)}")
        append(f"# TYPE {header_name} {family_type}")
        for suffix, labels, value in family.samples:
            rendered = label_cache.get(labels)
            if rendered is None:
                if labels:
                    rendered = (
                        "{" + ",".join(f'{key}="{_escape_label(val)}"' for key, val in labels) + "}"
                    )
                else:
                    rendered = ""
                if len(label_cache) < 200_000:
                    label_cache[labels] = rendered
            append(f"{name}{suffix}{rendered} {format_float(value)}")
    lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ScrapeBody:
    content_type: str
    body: bytes
    gzipped: bool


class _Variant:
    """One cached rendering (text or OpenMetrics) with its lazily built gzip prefix."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzip_state: tuple[bytes, zlib._Compress] | None = None
        self._lock = threading.Lock()

    def gzip_with_tail(self, tail: bytes) -> bytes:
        with self._lock:
            if self._gzip_state is None:
                compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WINDOW_BITS)
                prefix = compressor.compress(self.body) + compressor.flush(zlib.Z_SYNC_FLUSH)
                self._gzip_state = (prefix, compressor)
            prefix, compressor = self._gzip_state
            finisher = compressor.copy()
        return prefix + finisher.compress(tail) + finisher.flush(zlib.Z_FINISH)


class ExpositionCache:
    """Holds the rendered exposition of the last published cycle.

    ``live_text`` / ``live_openmetrics`` render the small per-scrape tail (process metrics).
    """

    def __init__(
        self,
        live_text: Callable[[], bytes] = lambda: b"",
        live_openmetrics: Callable[[], bytes] = lambda: b"",
    ) -> None:
        self._live_text = live_text
        self._live_openmetrics = live_openmetrics
        self._lock = threading.Lock()
        self._families: list[MetricFamily] = []
        self._text: _Variant = _Variant(b"")
        self._openmetrics: _Variant | None = None
        self.generation = 0

    def publish(self, families: list[MetricFamily]) -> None:
        """Render the text form now (in the poll thread), keep families for OpenMetrics."""
        text = _Variant(render(families).encode())
        with self._lock:
            self._families = families
            self._text = text
            self._openmetrics = None
            self.generation += 1

    def scrape(self, openmetrics: bool = False, gzip: bool = False) -> ScrapeBody:
        variant = self._variant(openmetrics)
        if openmetrics:
            tail = self._live_openmetrics() + b"# EOF\n"
            content_type = OPENMETRICS_CONTENT_TYPE
        else:
            tail = self._live_text()
            content_type = TEXT_CONTENT_TYPE
        if gzip:
            return ScrapeBody(content_type, variant.gzip_with_tail(tail), gzipped=True)
        return ScrapeBody(content_type, variant.body + tail, gzipped=False)

    def _variant(self, openmetrics: bool) -> _Variant:
        with self._lock:
            if not openmetrics:
                return self._text
            if self._openmetrics is None:
                self._openmetrics = _Variant(render(self._families, openmetrics=True).encode())
            return self._openmetrics
