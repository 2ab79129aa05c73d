"""The keys table of docs/configuration.md, generated from the key declarations in ``keys``.

The table sits between two marker comments in the page; the prose around it is written by hand.
``markdown()`` is the table and ``page(text)`` the page's text with the table replaced;
``python -m monitoring generate`` writes it with every other generated output (``--check``
tells when it is stale).
"""

from __future__ import annotations

from pathlib import Path

from .keys import Config
from .schema import Declared, declared

BEGIN = (
    "<!-- keys table: generated from exporter/config/keys.py by "
    "`python -m monitoring generate`; do not edit -->"
)
END = "<!-- end of the generated keys table -->"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
"""The page in a source checkout."""


def markdown() -> str:
    """The table of every key: top-level keys, then each section's (``clusters[].name``)."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += _rows(Config, "")
    return "\n".join(lines) + "\n"


def _rows(kind: type, prefix: str) -> list[str]:
    rows = []
    for entry in declared(kind):
        rows.append(_row(f"{prefix}{entry.name}", entry))
        section = entry.key.reader.section
        if section is not None:
            rows += _rows(section, f"{prefix}{entry.name}[].")
    return rows


def _row(name: str, entry: Declared) -> str:
    return f"| `{name}` | {entry.shown_default()} | {entry.key.doc} |"


def page(text: str) -> str:
    """``text`` (docs/configuration.md as it is) with the generated table brought up to date;
    ``ValueError`` if the markers are not there, once each and in order."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the page needs the markers {BEGIN!r} and {END!r}, once each, in order")
    before, rest = text.split(BEGIN, 1)
    _table, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n\n{markdown()}\n{END}{after}"  # blank lines: a table of its own
