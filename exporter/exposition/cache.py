"""Render metric families once per poll cycle and hand scrapes cached bytes.

The data only changes when a poll cycle finishes, while Prometheus (often an HA pair) scrapes
far more often, so rendering per scrape would redo the same work many times. Families arrive
already rendered (see ``MetricFamily``); ``ExpositionCache.publish`` keeps their bodies and the
two headers of each (Prometheus text and OpenMetrics differ only there), so both formats share
one copy of the sample lines. A scrape is a list of cached chunks written to the socket as they
are; nothing is joined or copied. Gzip is compressed once per cycle and format, on first use,
and only the families whose bytes changed since the cycle before (``_Variant``).

Only the exporter's own process metrics (a few lines) are rendered per scrape and appended; for
gzip the compressor state after the cached body is kept, so the tail is compressed on a copy and
the answer stays one gzip member.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .families import MetricFamily

Chunks = tuple[bytes | bytearray, ...]
"""Cached pieces of an answer; bodies stay bytearrays (handed over, never copied or mutated)."""

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_GZIP_WINDOW_BITS = 31  # zlib wbits for a gzip container
_GZIP_LEVEL = 6
_GZIP_LEVEL_LARGE = 1  # past a few MB, level 6 costs 3x the time for a few % of size
_LARGE_BODY_BYTES = 4 * 1024 * 1024


def _escape_help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def header(family: MetricFamily, openmetrics: bool) -> bytes:
    """The ``# HELP`` and ``# TYPE`` lines of ``family`` in one of the two formats."""
    name, family_type = family.name, family.type
    if family_type == "counter" and not openmetrics:
        name = name + "_total"
    if openmetrics and family_type == "gauge" and name.endswith("_info"):
        family_type, name = "info", name[: -len("_info")]
    return f"# HELP {name} {_escape_help(family.help, openmetrics)}\n# TYPE {name} {family_type}\n".encode()


def render(families: Iterable[MetricFamily], openmetrics: bool = False) -> str:
    """The whole exposition text of ``families`` (without the OpenMetrics ``# EOF`` line)."""
    return b"".join(header(family, openmetrics) + family.body for family in families).decode()


@dataclass(frozen=True, slots=True)
class ScrapeBody:
    """An answer as chunks to write in order; ``length`` is their total size."""

    content_type: str
    chunks: Chunks
    gzipped: bool

    @property
    def length(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""A gzip member's header: deflate, no name, no time, unknown system (RFC 1952)."""

Segments = dict[bytes, tuple[bytes | bytearray, bytes]]
"""Per family header, its body and that body's deflate segment (``_Variant``)."""


def _segment(level: int, *chunks: bytes | bytearray) -> bytes:
    """``chunks`` as deflate blocks of their own: no reference to any earlier bytes, not final,
    ending on a byte boundary (a sync flush), so segments made apart follow one another in one
    deflate stream."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return b"".join(compressor.compress(chunk) for chunk in chunks) + compressor.flush(
        zlib.Z_SYNC_FLUSH
    )


class _Variant:
    """One format's cached chunks (a header, then a body, for each family), with its gzip
    prefix built on first use.

    The prefix is one gzip member's header and a deflate segment per family. A family whose
    header and body are the same bytes as in the variant before (``previous``) takes that
    variant's segment again: at fleet scale nine tenths of the exposition are the same from one
    cycle to the next (finished jobs), and compressing them again was most of the publish. Each
    scrape adds its live tail as the final block, and the member's CRC and size."""

    def __init__(self, chunks: Chunks, previous: Segments | None = None) -> None:
        self.chunks = chunks
        self._previous = previous
        self._gzip_state: tuple[bytes, int, int] | None = None
        self.segments: Segments = {}
        self.compressed_bytes = 0
        """Body bytes compressed when the prefix was built (not taken from ``previous``)."""
        self._lock = threading.Lock()

    def gzip_with_tail(self, tail: bytes) -> bytes:
        with self._lock:
            if self._gzip_state is None:
                self._gzip_state = self._prefix()
            prefix, crc, size = self._gzip_state
        final = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, -15)
        ending = final.compress(tail) + final.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(tail, crc), (size + len(tail)) & 0xFFFFFFFF)
        return prefix + ending + trailer

    def _prefix(self) -> tuple[bytes, int, int]:
        """(the member's header and every family's segment, the CRC and size of their bytes)."""
        size = sum(len(chunk) for chunk in self.chunks)
        level = _GZIP_LEVEL_LARGE if size > _LARGE_BODY_BYTES else _GZIP_LEVEL
        previous, self._previous = self._previous or {}, None
        parts = [_GZIP_HEADER]
        crc = 0
        for index in range(0, len(self.chunks), 2):
            head, body = self.chunks[index], self.chunks[index + 1]
            crc = zlib.crc32(body, zlib.crc32(head, crc))
            known = previous.get(bytes(head))
            if known is not None and known[0] == body:
                segment = known[1]
            else:
                segment = _segment(level, head, body)
                self.compressed_bytes += len(head) + len(body)
            self.segments[bytes(head)] = (body, segment)
            parts.append(segment)
        return b"".join(parts), crc, size


def _chunks(families: list[MetricFamily]) -> tuple[Chunks, Chunks]:
    """(text chunks, OpenMetrics chunks): the same body bytes behind two sets of headers."""
    text: list[bytes | bytearray] = []
    openmetrics: list[bytes | bytearray] = []
    for family in families:
        body = family.take_body()
        text += (header(family, False), body)
        openmetrics += (header(family, True), body)
    return tuple(text), tuple(openmetrics)


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
        self._text = _Variant(())
        self._openmetrics = _Variant(())
        self._main: tuple[Chunks, Chunks] = ((), ())
        self._extra: tuple[Chunks, Chunks] = ((), ())
        self.generation = 0

    def publish(self, families: list[MetricFamily]) -> None:
        """A new poll cycle: keep its bodies with both headers; the families themselves can go."""
        rendered = _chunks(families)
        with self._lock:
            self._main = rendered
            self._rebuild_locked()
            self.generation += 1

    def publish_extra(self, families: list[MetricFamily]) -> None:
        """Replace the few families that change between cycles (the reload status)."""
        rendered = _chunks(families)
        with self._lock:
            self._extra = rendered
            self._rebuild_locked()

    def _rebuild_locked(self) -> None:
        # Only a variant whose gzip was built hands its segments on: never more than one
        # cycle's bodies are held for it.
        self._text = _Variant(self._main[0] + self._extra[0], self._text.segments)
        self._openmetrics = _Variant(self._main[1] + self._extra[1], self._openmetrics.segments)

    @property
    def gzip_compressed_bytes(self) -> int:
        """Bytes the last ``prepare_gzip`` compressed: those of the families that changed."""
        with self._lock:
            return self._text.compressed_bytes

    def prepare_gzip(self) -> None:
        """Compress the text format now (Prometheus asks for gzip), off the scrape path."""
        with self._lock:
            variant = self._text
        variant.gzip_with_tail(b"")

    def scrape(self, openmetrics: bool = False, gzip: bool = False) -> ScrapeBody:
        with self._lock:
            variant = self._openmetrics if openmetrics else self._text
        if openmetrics:
            tail = self._live_openmetrics() + b"# EOF\n"
            content_type = OPENMETRICS_CONTENT_TYPE
        else:
            tail = self._live_text()
            content_type = TEXT_CONTENT_TYPE
        if gzip:
            return ScrapeBody(content_type, (variant.gzip_with_tail(tail),), gzipped=True)
        return ScrapeBody(content_type, (*variant.chunks, tail), gzipped=False)
