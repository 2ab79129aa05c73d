"""Tables on stdout and ``benchmarks/results.json``, shared by every benchmark part.

Each part saves its section of ``results.json`` under its own key (``scrape``, ``polling``,
``scale``, ``startup``, ``paging``, ``listing``, ``fleet``), next to a description of the
machine, so running one part refreshes its figures and leaves the others as they were.
``--quick`` runs save nothing unless given ``--output``: their small sizes are for smoke tests,
not for the README.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results file to update (default {RESULTS_PATH.name} for full runs, none for --quick)",
    )


def output_path(args: argparse.Namespace) -> Path | None:
    if args.output is not None:
        return Path(args.output)
    return None if args.quick else RESULTS_PATH


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "processor": _processor_name(),
    }


def _processor_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(args: argparse.Namespace, key: str, result: dict[str, Any]) -> Path | None:
    """Merge ``result`` under ``key`` into the results file (if this run writes one)."""
    path = output_path(args)
    if path is None:
        return None
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = json.loads(path.read_text())
        except ValueError:
            document = {}
    document["machine"] = machine()
    document[key] = {
        **result,
        "quick": bool(args.quick),
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def load(path: Path = RESULTS_PATH) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print aligned columns: the first left-aligned, the others right-aligned."""
    widths = [
        max(len(headers[index]), *(len(row[index]) for row in rows))
        for index in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "   " + "  ".join((first, *rest)).rstrip()

    print(line(headers))
    print(line(["-" * width for width in widths]))
    for row in rows:
        print(line(row))


def megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


Verdict = tuple[str, float, str, float, str]
"""(what, measured, "<" / "<=" / ">=", target, unit)"""


def met(measured: float, operator: str, target: float) -> bool:
    if operator == "<":
        return measured < target
    if operator == "<=":
        return measured <= target
    if operator == ">=":
        return measured >= target
    raise ValueError(f"unknown operator {operator!r}")


def verdicts(items: Sequence[Verdict], judged: bool = True) -> list[dict[str, Any]]:
    """Print one line per target; return them for ``results.json``.

    ``judged`` False (``--quick``): the targets are for the full sizes, so none is printed."""
    if not judged:
        print("   targets: judged at full size only (this run used --quick sizes)")
        return []
    outcomes = []
    for what, measured, operator, target, unit in items:
        ok = met(measured, operator, target)
        print(
            f"   target: {what} {_with_unit(measured, unit)} {operator} "
            f"{_with_unit(target, unit)}: {'met' if ok else 'NOT MET'}"
        )
        outcomes.append(
            {"what": what, "measured": measured, "operator": operator, "target": target, "met": ok}
        )
    return outcomes


def _with_unit(value: float, unit: str) -> str:
    if value == int(value) and abs(value) < 1e6:
        number = str(int(value))
    elif value >= 100:
        number = f"{value:.0f}"
    elif value >= 10:
        number = f"{value:.1f}"
    else:
        number = f"{value:.2f}"
    if not unit or unit == "x":
        return number + unit
    return f"{number} {unit}"
