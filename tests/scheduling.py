"""The suite in parallel: a test file on one worker, the longest files first.

``scripts/test`` runs pytest with ``-n`` workers (pytest-xdist), ``--dist loadfile`` and
``--no-loadscope-reorder`` (both in pyproject's addopts, idle without ``-n``):

- **A file is the unit.** Its tests run on one worker, in file order, so a module fixture (an
  end-to-end stack of real processes that the module's tests drive in order) starts once and
  sees its tests in order. (``--dist loadgroup``, which could group finer, silently stops
  grouping with pytest 9.2: pytest-dev/pytest-xdist#1386.)
- **The longest first.** Each worker sorts its collection, the same way, by what each file cost
  last time, longest first, and xdist hands the files out in that order: the long ones start at
  once and the short ones fill the gaps at the end. The costs (setup, call and teardown of each
  test, in seconds) come from ``tests/durations.json``; a test missing from it is estimated by
  its markers (``ESTIMATES``), so a new end-to-end file starts early before it has a figure.

- **Time first.** A test that measures real time against a bound it exists to prove (the rate
  limit on the wire, a staleness bound) is marked ``timing`` (``soak`` tests are); it runs, with
  every thread and process it starts, at niceness ``PROMPT_NICENESS`` where the user may raise
  priority (root, as in CI), so tests crunching beside it on the same two cores, and other work
  on the machine, do not make the exporter it watches late. Elsewhere it runs as before.

After adding a long test or making one shorter, refresh the file with a full run:
``scripts/test --record-durations`` (it updates the entries of the tests it ran and drops
those of test files that no longer exist). ``--durations-file PATH`` reads and writes another
file instead.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

DURATIONS = Path(__file__).resolve().parent / "durations.json"
ESTIMATES = {"soak": 60.0, "e2e": 30.0, "slow": 3.0}
"""Seconds a test not in the durations file is taken to cost, by marker (first match)."""
UNMARKED_ESTIMATE = 0.1
PROMPT_NICENESS = -5
TIMING_MARKERS = ("timing", "soak")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        help="write what each test cost into the durations file, for the order of parallel runs",
    )
    parser.addoption(
        "--durations-file",
        type=Path,
        default=DURATIONS,
        help="the seconds each test cost, by node id (default: tests/durations.json)",
    )


def file_of(node_id: str) -> str:
    return node_id.split("::")[0]


def estimate(item: pytest.Item, known: dict[str, float]) -> float:
    if item.nodeid in known:
        return known[item.nodeid]
    for marker, seconds in ESTIMATES.items():
        if item.get_closest_marker(marker) is not None:
            return seconds
    return UNMARKED_ESTIMATE


def load_durations(path: Path) -> dict[str, float]:
    try:
        return {str(key): float(value) for key, value in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # a serial run keeps the file order
    known = load_durations(config.getoption("durations_file"))
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(file_of(item.nodeid), []).append(item)
    cost = {name: sum(estimate(item, known) for item in tests) for name, tests in files.items()}
    ordered = sorted(files, key=lambda name: -cost[name])  # stable: ties keep the file order
    items[:] = [item for name in ordered for item in files[name]]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Run a timing test (setup and teardown included) at ``PROMPT_NICENESS`` if allowed.

    Linux keeps a niceness per thread: this sets the thread that runs the test, and the threads
    and processes it starts inherit it."""
    if not any(item.get_closest_marker(marker) for marker in TIMING_MARKERS):
        yield
        return
    previous = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, PROMPT_NICENESS)
    except OSError:  # not allowed: run as before
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, previous)


class DurationRecorder:
    """Adds up each test's setup, call and teardown as the reports come in (on the controller
    when xdist runs the tests)."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self) -> None:
        merged = {
            node_id: seconds
            for node_id, seconds in load_durations(self.path).items()
            if (self.root / file_of(node_id)).exists()
        }
        merged.update(self.seconds)
        text = json.dumps({key: round(merged[key], 2) for key in sorted(merged)}, indent=0)
        self.path.write_text(text + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("record_durations") and not hasattr(config, "workerinput"):
        recorder = DurationRecorder(config.getoption("durations_file"), config.rootpath)
        config.pluginmanager.register(recorder, "record-durations")
