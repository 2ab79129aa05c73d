"""structlog set-up: JSON lines in production, readable lines in a terminal, secrets scrubbed,
and logging that can never stop polling.

The redactor runs last before rendering, over every string value of every event, so a token that
slipped into an upstream error message or an exception text is replaced before it is written.

Lines go to stderr through a bounded queue and one writer thread. A write to a pipe that nobody
reads blocks once the pipe holds 64 KiB; written from the poll thread, it used to freeze polling
while /metrics kept answering with old data. Now a full queue drops the line and counts it
(``milvus_jobs_exporter_log_lines_dropped_total``); a broken pipe (EPIPE) or a closed stderr
makes the writer count instead of write; no caller ever waits for stderr.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from .guards.redact import redact

LEVELS = ("debug", "info", "warning", "error")
QUEUE_LINES = 10_000
"""At most this many lines wait for stderr (a few MB); beyond, lines are dropped and counted."""


class SecretRedactor:
    """A structlog processor holding the current set of secrets (replaced on config reload)."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def set_secrets(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = tuple(secret for secret in secrets if secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        secrets = self._secrets
        if not secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = redact(value, *secrets)
            elif value is not None and not isinstance(value, (int, float, bool)):
                text = str(value)
                cleaned = redact(text, *secrets)
                if cleaned != text:
                    event[key] = cleaned
        return event


class _DropCounter:
    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self, lines: int = 1) -> None:
        with self._lock:
            self._count += lines

    @property
    def value(self) -> int:
        return self._count


_dropped = _DropCounter()


def dropped_log_lines() -> int:
    """Lines dropped since the process started (full queue, broken or closed stderr)."""
    return _dropped.value


class QueuedStream:
    """A write-only text stream that hands lines to a writer thread and never blocks.

    ``write`` returns at once; the writer thread is the only one that touches the real stream,
    so only it can be blocked by a full pipe.
    """

    def __init__(self, stream: TextIO | None, capacity: int = QUEUE_LINES) -> None:
        self._stream = stream
        self._queue: queue.Queue[str] = queue.Queue(maxsize=capacity)
        self._broken = stream is None
        self._thread = threading.Thread(target=self._drain, name="log-writer", daemon=True)
        self._thread.start()

    @property
    def stream(self) -> TextIO | None:
        return self._stream

    def write(self, text: str) -> int:
        if self._broken:
            _dropped.add()
            return len(text)
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            _dropped.add()
        return len(text)

    def flush(self) -> None:
        """Nothing to do here: the writer thread flushes after every line."""

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the queued lines to be written (at exit)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _drain(self) -> None:
        while True:
            text = self._queue.get()
            try:
                if self._broken or self._stream is None:
                    _dropped.add()
                    continue
                try:
                    self._stream.write(text)
                    self._stream.flush()
                except (OSError, ValueError):  # EPIPE, EBADF, or the stream was closed
                    self._broken = True
                    _dropped.add()
            finally:
                self._queue.task_done()


_active: QueuedStream | None = None


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


def configure_logging(
    level: str = "info",
    log_format: str = "auto",
    stream: TextIO | None = None,
    redactor: SecretRedactor | None = None,
) -> SecretRedactor:
    """Route structlog (and stdlib logging) to ``stream`` (stderr) through a bounded queue, as
    JSON or console lines at ``level``. A missing or closed stderr is survived, not fatal.

    Returns the redactor every event passes through: whoever learns the secrets (the config,
    a reload) hands them to it."""
    redactor = redactor or SecretRedactor()
    global _active
    stream = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if _isatty(stream) else "json"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(stream))
    queued = _active if _active is not None and _active.stream is stream else QueuedStream(stream)
    _active = queued
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(queued),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Libraries (urllib3) log through the standard library: same queue, never a blocking write.
    handler = logging.StreamHandler(queued)
    logging.basicConfig(handlers=[handler], level=logging.WARNING, force=True)
    return redactor


def logging_configured() -> bool:
    """Whether ``configure_logging`` has run (before it, structlog would write to stdout)."""
    return _active is not None


def flush_logging(timeout: float = 1.0) -> None:
    """Give the last lines (``exporter.stopped``) a moment to reach stderr before exit."""
    if _active is not None:
        _active.drain(timeout)
