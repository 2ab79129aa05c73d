"""structlog set-up: JSON lines in production, readable lines in a terminal, secrets scrubbed.

The redactor runs last before rendering, over every string value of every event, so a token that
slipped into an upstream error message or an exception text is replaced before it is written.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from .redact import redact

LEVELS = ("debug", "info", "warning", "error")


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


redactor = SecretRedactor()


def configure_logging(
    level: str = "info", log_format: str = "auto", stream: TextIO | None = None
) -> None:
    """Route structlog to ``stream`` (stderr) as JSON or console lines at ``level``."""
    stream = stream or sys.stderr
    if log_format == "auto":
        log_format = "console" if stream.isatty() else "json"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
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
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
