"""What the two generator commands share: their common flags, and writing or checking output.

``grafana/generate.py`` writes the dashboards and ``prometheus/generate.py`` the alert rules,
both from the thresholds file; each takes ``--check`` (write nothing, exit 1 while an output is
stale) and ``--thresholds``, and rewrites a file only when its text changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from .settings import THRESHOLDS_FILE


def add_common_arguments(parser: argparse.ArgumentParser, check_help: str) -> None:
    parser.add_argument("--check", action="store_true", help=check_help)
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=THRESHOLDS_FILE,
        metavar="FILE",
        help=f"the thresholds file (default {THRESHOLDS_FILE})",
    )


def write_or_check(files: Mapping[Path, str], check: bool, command: str) -> int:
    """Write each file whose text differs (0), or with ``check`` name each stale one (1 if any)."""
    stale = False
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if check:
            print(f"{path}: stale; run {command}", file=sys.stderr)
            stale = True
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 1 if stale else 0
