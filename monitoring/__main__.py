"""``python -m monitoring generate [--check] [--thresholds FILE] [--output-dir DIR]``: write, or
check, every file generated from the monitoring-as-code (``outputs.py`` lists them).

Exit codes: 0 written or current; 1 with ``--check``, when a file is stale (each is named on
stderr, nothing is written); 2 for a wrong thresholds file (every problem on a line of its own)
or a usage error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import COMMAND
from .outputs import CONFIG_DOC, REPOSITORY, generated_files, write_or_check
from .settings import THRESHOLDS_FILE, SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring",
        description="The monitoring-as-code of milvus-jobs-exporter: alert rules, dashboards, "
        "and every file generated from them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser(
        "generate",
        help="write every generated file (alert rules, dashboards, Kubernetes manifests, mixin, "
        "docs/metrics.md)",
        description="Write every generated file whose text differs from what the sources give.",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming every generated file that is stale",
    )
    generate.add_argument(
        "--thresholds",
        type=Path,
        default=THRESHOLDS_FILE,
        metavar="FILE",
        help=f"the thresholds file (default {THRESHOLDS_FILE.relative_to(REPOSITORY)})",
    )
    generate.add_argument(
        "--output-dir",
        type=Path,
        default=REPOSITORY,
        metavar="DIR",
        help="write (or check) the files under DIR, at their paths in the repository "
        "(default: the repository)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.thresholds)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    command = COMMAND
    if args.thresholds != THRESHOLDS_FILE:
        command += f" --thresholds {shlex.quote(str(args.thresholds))}"
    if args.output_dir != REPOSITORY:
        command += f" --output-dir {shlex.quote(str(args.output_dir))}"
    try:
        files = generated_files(settings)
    except ValueError as error:  # a source page whose generated part cannot be found
        print(f"{CONFIG_DOC}: {error}", file=sys.stderr)
        return 2
    return write_or_check(files, args.output_dir, args.check, command)


if __name__ == "__main__":
    sys.exit(main())
