"""How cycle time, scrape time and memory grow with jobs and with targets.

Two curves, each point a fresh upstream and exporter process (as in ``scrape.py``):

- **jobs**: 1 cluster, 50 databases x 20 external collections, refresh only (50 targets), with
  1, 10 and 100 hung refreshes per collection: 1,000, 10,000 and 100,000 jobs. No upstream limit.
- **targets** (clusters x databases x kinds): 1 x 5 x 2 = 10, 10 x 5 x 2 = 100 and
  10 x 50 x 2 = 1,000, one token per cluster so the upstream's 20 requests/s per (token, path),
  enforced here, allows 1,000 targets in one cycle. Each database holds 4 external collections
  with 3 finished refreshes each and 5 imports.

Cycle figures are medians of three more cycles, asked for one after another with
``POST /-/reload`` once the scrapes are timed. A reload builds a fresh poller, so each is a full
cycle like the first (finished imports are described again, which a timed cycle of a running
exporter skips). "poll" is the poller's time, "publish" adds the model, rendering and gzip
(reload to ``cycle.finished``); RSS is the largest VmRSS read after cycle 1 and after each later
cycle, "peak" is VmHWM. ``--plot`` draws
``benchmarks/scale.png``; ``--plot --from-results`` redraws it from ``results.json`` alone.

    python -m benchmarks.scale [--quick] [--plot] [--from-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import report
from .harness import (
    REPEATED_CYCLES,
    Deployment,
    World,
    exporter,
    measure_exporter,
    upstream,
)

PLOT_PATH = Path(__file__).resolve().parent / "scale.png"
RATE_LIMIT = 20
BOUND_FACTOR = 1.1
SCRAPES = 5


@dataclass(frozen=True)
class Point:
    curve: str
    world: World
    deployment: Deployment

    @property
    def jobs(self) -> int:
        """Jobs the exporter is shown: every cluster lists the same databases."""
        per_database = self.world.collections * (self.world.running + self.world.history)
        imports = self.world.imports if "import" in self.deployment.kinds else 0
        return self.deployment.clusters * self.deployment.databases * (per_database + imports)


def jobs_point(running: int, databases: int = 50, collections: int = 20) -> Point:
    return Point(
        "jobs",
        World(databases=databases, collections=collections, running=running),
        Deployment(clusters=1, databases=databases),
    )


def targets_point(clusters: int, databases: int) -> Point:
    return Point(
        "targets",
        World(
            databases=databases,
            collections=4,
            history=3,
            imports=5,
            tokens=clusters,
            requests_per_second=RATE_LIMIT,
        ),
        Deployment(clusters=clusters, databases=databases, kinds=("refresh", "import")),
    )


FULL_POINTS = (
    jobs_point(1),
    jobs_point(10),
    jobs_point(100),
    targets_point(1, 5),
    targets_point(10, 5),
    targets_point(10, 50),
)
QUICK_POINTS = (jobs_point(10, databases=5, collections=4), targets_point(2, 2))


def measure_point(
    point: Point, scrapes: int = SCRAPES, repeated_cycles: int = REPEATED_CYCLES
) -> dict[str, Any]:
    with upstream(point.world) as endpoint, exporter(point.deployment, endpoint) as running:
        figures = measure_exporter(
            running, point.jobs, point.deployment.targets, scrapes, repeated_cycles
        )
    return describe(point, dataclasses.asdict(figures))


def describe(point: Point, figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "curve": point.curve,
        "clusters": point.deployment.clusters,
        "databases": point.deployment.databases,
        "kinds": list(point.deployment.kinds),
        "bound_s": BOUND_FACTOR * figures["cycle_busiest_window"] / RATE_LIMIT,
        **figures,
    }


def run(
    points: Sequence[Point] = FULL_POINTS,
    reuse: tuple[Point, dict[str, Any]] | None = None,
    repeated_cycles: int = REPEATED_CYCLES,
) -> dict[str, Any]:
    """Measure every point; ``reuse`` is a point already measured elsewhere with its figures
    (the scrape benchmark's exporter run), so ``python -m benchmarks`` does not run it twice."""
    measured = []
    for point in points:
        if reuse is not None and point == reuse[0]:
            measured.append(describe(point, reuse[1]))
        else:
            measured.append(measure_point(point, repeated_cycles=repeated_cycles))
    return {"points": measured, "rate_limit": RATE_LIMIT}


def print_table(result: dict[str, Any]) -> None:
    print(
        "3. Scale: a fresh upstream and exporter per point; cycle figures: medians of "
        f"{result['points'][0]['repeated_cycles']} full cycles started with POST /-/reload; "
        f"medians of {SCRAPES} scrapes"
    )
    rows = []
    for point in result["points"]:
        rows.append(
            [
                point["curve"],
                f"{point['clusters']}x{point['databases']}x{len(point['kinds'])}",
                f"{point['targets']:,}",
                f"{point['jobs']:,}",
                f"{point['cycle_requests']:,}",
                f"{point['cycle_poll_s']:.2f}",
                f"{point['bound_s']:.2f}",
                f"{point['cycle_publish_s']:.2f}",
                f"{point['plain_ms']:.1f}",
                f"{point['gzip_ms']:.1f}",
                report.megabytes(point["plain_bytes"]),
                f"{max(point['rss_mb'], point['rss_steady_mb']):.0f}",
                f"{point['peak_rss_mb']:.0f}",
                f"{point['targets_up']}/{point['targets']}",
                str(point["rate_limited"]),
            ]
        )
    report.table(
        [
            "curve",
            "cl x db x kinds",
            "targets",
            "jobs",
            "requests",
            "poll s",
            "bound s",
            "publish s",
            "plain ms",
            "gzip ms",
            "plain size",
            "RSS MB",
            "peak MB",
            "up",
            "429s",
        ],
        rows,
    )
    print(
        f"   bound = {BOUND_FACTOR} x (most requests for one token and path) / {RATE_LIMIT} s; "
        "publish = poll + model + render + gzip; RSS = largest VmRSS after a cycle; peak = VmHWM"
    )


def plot(result: dict[str, Any], path: Path = PLOT_PATH) -> Path:
    """Three panels, log x: times against jobs, times against targets, memory against jobs."""
    # matplotlib is the optional ``bench`` extra: imported by name so the type check and the
    # smoke test run without it.
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    points = result["points"]
    by_jobs = sorted((p for p in points if p["curve"] == "jobs"), key=lambda p: p["jobs"])
    by_targets = sorted((p for p in points if p["curve"] == "targets"), key=lambda p: p["targets"])
    figure, axes = pyplot.subplots(1, 3, figsize=(15, 4.6))

    def times(axis: Any, series: list[dict[str, Any]], x_key: str, label: str) -> None:
        x = [p[x_key] for p in series]
        axis.plot(x, [p["cycle_poll_s"] * 1000 for p in series], "o-", label="poll cycle")
        axis.plot(
            x, [p["cycle_publish_s"] * 1000 for p in series], "s-", label="cycle incl. render"
        )
        axis.plot(x, [p["bound_s"] * 1000 for p in series], "k:", label="rate-limit bound")
        axis.plot(x, [p["plain_ms"] for p in series], "^-", label="scrape, plain")
        axis.plot(x, [p["gzip_ms"] for p in series], "v-", label="scrape, gzip")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("milliseconds")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="center right")

    times(axes[0], by_jobs, "jobs", "running refresh jobs (50 targets, 1 token)")
    axes[0].set_title("Time against jobs")
    times(axes[1], by_targets, "targets", "targets (clusters x databases x kinds)")
    axes[1].set_title("Time against targets")
    memory = axes[2]
    for series, marker, label in (
        (by_jobs, "o-", "jobs curve"),
        (by_targets, "s-", "targets curve"),
    ):
        x = [p["jobs"] for p in series]
        memory.plot(
            x,
            [max(p["rss_mb"], p["rss_steady_mb"]) for p in series],
            marker,
            label=f"RSS, {label}",
        )
        memory.plot(
            x, [p["peak_rss_mb"] for p in series], marker.replace("-", "--"), label=f"peak, {label}"
        )
    memory.axhline(400, color="red", linestyle=":", label="target 400 MB")
    memory.set_xscale("log")
    memory.set_xlabel("jobs shown to the exporter")
    memory.set_ylabel("MB")
    memory.set_title("Exporter memory")
    memory.grid(True, which="both", alpha=0.3)
    memory.legend(fontsize=8)
    figure.suptitle("milvus-jobs-exporter scale (python -m benchmarks.scale --plot)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def plot_path(args: argparse.Namespace) -> Path | None:
    """Where ``--plot`` draws: ``--plot-path``, else beside ``--output``, else ``scale.png`` for
    full runs; a ``--quick`` run without ``--output`` must not overwrite the committed plot."""
    if args.plot_path is not None:
        return Path(args.plot_path)
    if args.output is not None:
        return Path(args.output).parent / PLOT_PATH.name
    return None if args.quick else PLOT_PATH


def draw(result: dict[str, Any], path: Path | None) -> None:
    if path is None:
        print("   plot: not drawn for --quick without --output")
        return
    try:
        print(f"   plot: {plot(result, path)}")
    except ModuleNotFoundError:
        print("   plot: skipped, matplotlib is not installed (pip install -e '.[bench]')")


def main(
    argv: list[str] | None = None, reuse: tuple[Point, dict[str, Any]] | None = None
) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    report.add_common_arguments(parser)
    parser.add_argument("--plot", action="store_true", help=f"draw {PLOT_PATH.name}")
    parser.add_argument(
        "--from-results", action="store_true", help="only redraw the plot from results.json"
    )
    parser.add_argument("--plot-path", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.from_results:
        result = report.load(args.output or report.RESULTS_PATH)["scale"]
    else:
        if args.quick:
            result = run(QUICK_POINTS, reuse, repeated_cycles=1)
        else:
            result = run(FULL_POINTS, reuse)
        report.save(args, "scale", result)
    print_table(result)
    if args.plot or args.from_results:
        draw(result, plot_path(args))
    return result


if __name__ == "__main__":
    main()
