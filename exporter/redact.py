"""Scrub secrets from any text that leaves the process (logs, pages, CLI output)."""

from __future__ import annotations

REDACTED = "<redacted>"


def redact(text: str, *secrets: str) -> str:
    """Replace every occurrence of each secret, and of each half of a ``user:password`` pair."""
    for secret in secrets:
        for piece in _pieces(secret):
            if piece in text:
                text = text.replace(piece, REDACTED)
    return text


def _pieces(secret: str) -> list[str]:
    if not secret:
        return []
    pieces = [secret]
    if ":" in secret:
        _user, _, password = secret.partition(":")
        if len(password) >= 4:
            pieces.append(password)
    return pieces
