"""Prometheus history without waiting for it: samples written as TSDB blocks by promtool.

A test that needs a Prometheus full of data need not scrape for it: the first scrape of a target
waits up to a whole scrape interval (Prometheus picks each target's phase), and history takes as
long to gather as it spans. Instead ``promtool tsdb create-blocks-from openmetrics`` writes the
samples, with the timestamps the test chooses, as blocks into the TSDB directory before
Prometheus starts, and the queries ask about those timestamps.

What it takes, with Debian's Prometheus 2.42:

- the blocks must lie before anything in the head, so they go into a fresh TSDB directory before
  the server starts (and the server scrapes nothing that could land before them);
- every series carries the labels a scrape would have added (``job``, ``instance``), and ``up``
  is written too, so queries with the scrape job selector match as they would;
- OpenMetrics wants a timestamp on every sample and ``# EOF`` at the end; metadata is dropped, so
  every series is untyped, which PromQL does not mind;
- a block of 700,000 series takes promtool about 15 s and 1.7 GB of memory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from monitoring.stack import batch, binary


def openmetrics(exposition: Iterable[str], at: float, target: Mapping[str, str]) -> Iterable[str]:
    """The lines of a text exposition as OpenMetrics samples at ``at`` (epoch seconds), each
    with the ``target`` labels added, followed by ``up`` for the target and ``# EOF``."""
    added = ",".join(f'{name}="{value}"' for name, value in target.items())
    stamp = f"{at:.3f}"
    for line in exposition:
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if not series.endswith("}"):
            series = f"{series}{{{added}}}"
        elif series.endswith("{}"):
            series = f"{series[:-1]}{added}}}"
        else:
            series = f"{series[:-1]},{added}}}"
        yield f"{series} {value} {stamp}"
    yield f"up{{{added}}} 1 {stamp}"
    yield "# EOF"


def create_blocks(samples: Iterable[str], tsdb: Path) -> None:
    """Write ``samples`` (OpenMetrics lines, as :func:`openmetrics` makes them) as TSDB blocks
    into ``tsdb``, a directory Prometheus has not started on yet."""
    promtool = binary("promtool")
    assert promtool, "promtool is not installed (Debian package prometheus)"
    tsdb.mkdir(parents=True, exist_ok=True)
    source = tsdb.parent / f"{tsdb.name}.om"
    with source.open("w") as output:
        for line in samples:
            output.write(line + "\n")
    try:
        command = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)]
        result = subprocess.run(
            batch(command),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        source.unlink()
    assert result.returncode == 0, f"promtool could not backfill: {result.stderr[-2000:]}"
