"""Make text from outside safe to pass on: secrets scrubbed, always valid UTF-8.

Everything that leaves the process (logs, labels, pages, CLI output) goes through here. Upstream
JSON may hold a lone UTF-16 surrogate (``"c\\ud800x"`` is valid JSON); Python keeps it in the
``str`` and the first ``encode()`` fails, which once broke every poll of a target and every
``jobs list``. A failure reason may also quote the caller's own token back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4
_SURROGATES = re.compile("[\ud800-\udfff]")


def redact(text: str, *secrets: str) -> str:
    """Replace every occurrence of each secret, and of each half of a ``user:password`` pair."""
    for secret in secrets:
        for piece in _pieces(secret):
            if piece in text:
                text = text.replace(piece, REDACTED)
    return text


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it always encodes as UTF-8."""
    if text.isascii():
        return text
    return _SURROGATES.sub("\ufffd", text)


def _pieces(secret: str) -> list[str]:
    if not secret:
        return []
    pieces = [secret]
    if ":" in secret:
        _user, _, password = secret.partition(":")
        if len(password) >= 4:
            pieces.append(password)
    return pieces


class Scrubber:
    """Cleans every string of a parsed JSON answer, but only when its raw text calls for it.

    Walking 100,000 records costs a noticeable part of a poll; the raw text tells for free
    whether any string can hold a surrogate (only a ``\\uD8xx``-style escape makes one) or a
    secret (as written, or as a JSON encoder escapes it), so the walk runs only then.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        # A secret of 1 to 3 characters (a test token) would mangle every label it occurs in.
        self._secrets = tuple(secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH)
        forms: set[str] = set()
        for secret in self._secrets:
            for piece in _pieces(secret):
                forms |= _encoded_forms(piece)
        self._forms = tuple(sorted(forms))

    def __repr__(self) -> str:
        return f"Scrubber({len(self._secrets)} secrets)"

    def text(self, text: str) -> str:
        return redact(valid_text(text), *self._secrets)

    def needed(self, raw: str) -> bool:
        return "\\ud" in raw or "\\uD" in raw or any(form in raw for form in self._forms)

    def scrub(self, value: Any) -> Any:
        """``value`` with every string value cleaned; containers are rebuilt. Keys only lose
        lone surrogates: they name fields, and redacting inside them would hide the data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {valid_text(key): self.scrub(item) for key, item in value.items()}
        return value


def _encoded_forms(piece: str) -> set[str]:
    """How ``piece`` may appear inside a JSON string: as is, escaped the way Python or Go do."""
    escaped = json.dumps(piece)[1:-1]
    go_style = escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return {piece, escaped, go_style, escaped.replace("/", "\\/")}
