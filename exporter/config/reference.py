"""The keys table of docs/configuration.md, generated from the key declarations in ``keys``.

The table sits between two marker comments in the page; the prose around it is written by hand.
``markdown()`` is the table, ``page(text)`` is the page's text with the table replaced, and

    python -m exporter.config.reference [--check]

writes docs/configuration.md (or, with ``--check``, exits 1 when it is stale), the way the
other generated outputs are kept current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .keys import Config
from .schema import Declared, declared

BEGIN = (
    "<!-- keys table: generated from exporter/config/keys.py by "
    "`python -m exporter.config.reference`; do not edit -->"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the page is stale instead of writing it"
    )
    parser.add_argument("--page", type=Path, default=PAGE, help=f"default {PAGE}")
    args = parser.parse_args(argv)
    try:
        current = args.page.read_text(encoding="utf-8")
        wanted = page(current)
    except (OSError, ValueError) as error:
        print(f"{args.page}: {error}", file=sys.stderr)
        return 2
    if current == wanted:
        return 0
    if args.check:
        print(
            f"{args.page}: the keys table is stale; run python -m exporter.config.reference",
            file=sys.stderr,
        )
        return 1
    args.page.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
