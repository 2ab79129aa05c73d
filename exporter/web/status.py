"""What the HTTP server shows of the running exporter: target rows and reload outcomes.

Produced by the daemon, read by the server, so the server needs nothing of the daemon itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetStatus:
    """One row of the landing page."""

    cluster: str
    database: str
    kind: str
    up: bool
    reason: str
    last_success: float | None


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class DiscoveryStatus:
    """One cluster whose databases are found by discovery, for the landing page and check."""

    cluster: str
    patterns: tuple[str, ...]
    excluded: tuple[str, ...]
    ok: bool | None
    """None until its first discovery ends."""
    matched: int
    reason: str
    last_success: float | None
