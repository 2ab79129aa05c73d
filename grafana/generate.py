"""Generate the Grafana dashboards of milvus-jobs-exporter: ``generator/`` is their only source.

The JSON under ``grafana/dashboards/`` is written by this script and committed; edit the panels
in ``grafana/generator/`` (one module per dashboard), never the JSON, and the thresholds they
colour by in ``prometheus/thresholds.yml`` (which the alert rules read too). Output is
deterministic (sorted keys, 2-space indent, trailing newline), so a stale file shows up as a
diff::

    python grafana/generate.py            # (re)write grafana/dashboards/*.json
    python grafana/generate.py --check    # exit 1 if a committed file differs from the output

Needs only the standard library and PyYAML (a dependency of the exporter). ``panel_queries``
lists every PromQL expression of a dashboard for the tests that run them against a real
Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # run as a script: the generator package sits beside it

from generator import build_dashboards  # noqa: E402
from generator.command import add_common_arguments, write_or_check  # noqa: E402
from generator.panels import Json  # noqa: E402
from generator.settings import THRESHOLDS_FILE, SettingsError, load_settings  # noqa: E402

DASHBOARDS_DIR = HERE / "dashboards"
COMMAND = "python grafana/generate.py"


def render(dashboard_model: Json) -> str:
    """The committed form: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard_model, indent=2, sort_keys=True) + "\n"


def generated_files(thresholds: Path = THRESHOLDS_FILE) -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    settings = load_settings(thresholds)
    return {name: render(model) for name, model in build_dashboards(settings).items()}


def iter_panels(dashboard_model: Json) -> Iterator[Json]:
    """Every panel, including those inside collapsed rows, rows themselves included."""
    for panel in dashboard_model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Json) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of every panel, in panel order.

    The expressions still hold the Grafana variables (``$milvus_cluster``, ``$__rate_interval``,
    ...): substitute them before sending a query to Prometheus.
    """
    return [
        (panel["title"], query["expr"])
        for panel in iter_panels(dashboard)
        for query in panel.get("targets", [])
        if query.get("expr")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_arguments(
        parser, "write nothing; exit 1 if a file in the output directory differs from the output"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DASHBOARDS_DIR,
        metavar="DIR",
        help=f"where the dashboards go (default {DASHBOARDS_DIR})",
    )
    args = parser.parse_args(argv)
    try:
        files = generated_files(args.thresholds)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    output: Path = args.output
    return write_or_check(
        {output / name: text for name, text in files.items()}, args.check, COMMAND
    )


if __name__ == "__main__":
    sys.exit(main())
