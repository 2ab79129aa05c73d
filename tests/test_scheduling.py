"""The parallel run's order (tests/scheduling.py), checked on a small suite of its own run by a
real pytest with xdist: the longest files start first, a file's tests stay on one worker in file
order, and --record-durations writes what the next run orders by."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .scheduling import PROMPT_NICENESS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

CONFTEST = """
import os

from tests.scheduling import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_protocol,
)


def note(name):
    with open(os.environ["ORDER_LOG"], "a") as log:
        log.write(f"{name} {os.environ.get('PYTEST_XDIST_WORKER', 'main')}\\n")
"""

FILES = {
    "test_a_shared.py": """
import pytest
from conftest import note


@pytest.fixture(scope="module")
def stack():
    note("stack")
    return object()


def test_first(stack):
    note("first")


def test_second(stack):
    note("second")


def test_third():
    note("third")
""",
    "test_b_soak.py": """
import pytest
from conftest import note


@pytest.mark.soak
def test_soak():
    note("soak")
""",
    "test_c_slow.py": """
import pytest
from conftest import note


@pytest.mark.slow
def test_slow():
    note("slow")
""",
    "test_d_known.py": """
from conftest import note


def test_known():
    note("known")
""",
    "test_e_niceness.py": """
import os
import threading

import pytest
from conftest import note


def niceness_of_a_new_thread():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.timing
def test_niceness_timing():
    note(f"timing:{niceness_of_a_new_thread()}")


def test_niceness_plain():
    note(f"plain:{niceness_of_a_new_thread()}")
""",
}


OTHERS = ("-k", "not niceness")


def run_suite(directory: Path, *arguments: str) -> list[tuple[str, str]]:
    """Run the small suite in ``directory``; what ran, in order, and on which worker."""
    (directory / "conftest.py").write_text(CONFTEST)
    for name, text in FILES.items():
        (directory / name).write_text(text)
    log = directory / "order.log"
    log.unlink(missing_ok=True)
    result = subprocess.run(  # nice: in a parallel run, tests measuring time go first
        ["nice", "-n", "10", sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "-W", "ignore::pytest.PytestUnknownMarkWarning",
         "--dist=loadfile", "--no-loadscope-reorder", *arguments],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(REPO), "ORDER_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [
        (name, worker) for name, worker in (line.split() for line in log.read_text().splitlines())
    ]


def test_a_timing_test_and_the_threads_it_starts_run_with_priority_where_allowed(tmp_path):
    ran = dict(line.split(":") for line, _worker in run_suite(tmp_path, "-k", "niceness"))
    base = int(ran["plain"])  # the inner run is nice itself
    if os.geteuid() != 0:
        assert int(ran["timing"]) == base  # not allowed to raise it: as before
    else:
        assert int(ran["timing"]) == PROMPT_NICENESS < base


def test_the_longest_files_start_first_and_the_run_records_what_each_cost(tmp_path):
    durations = tmp_path / "durations.json"
    durations.write_text(
        json.dumps({"gone.py::test_old": 5.0, "test_d_known.py::test_known": 100.0})
    )
    ran = run_suite(
        tmp_path, "-n", "1", "--durations-file", str(durations), "--record-durations", *OTHERS
    )
    assert [name for name, _worker in ran] == [
        "known",  # 100 s in the file
        "soak",  # soak: 60 s
        "slow",  # slow: 3 s
        "stack",  # three unmarked tests: 0.3 s, in file order
        "first",
        "second",
        "third",
    ]
    recorded = json.loads(durations.read_text())
    assert sorted(recorded) == [  # every test that ran; the file of a test that is gone dropped
        "test_a_shared.py::test_first",
        "test_a_shared.py::test_second",
        "test_a_shared.py::test_third",
        "test_b_soak.py::test_soak",
        "test_c_slow.py::test_slow",
        "test_d_known.py::test_known",
    ]
    assert recorded["test_d_known.py::test_known"] < 100.0  # updated, not kept


def test_a_files_tests_stay_on_one_worker(tmp_path):
    ran = run_suite(tmp_path, "-n", "2", "--durations-file", str(tmp_path / "none.json"), *OTHERS)
    workers = {name: worker for name, worker in ran}
    assert [name for name, _worker in ran].count("stack") == 1
    assert workers["stack"] == workers["first"] == workers["second"] == workers["third"]
    assert len(set(workers.values())) == 2  # both workers had work


def test_without_workers_the_file_order_stays(tmp_path):
    ran = run_suite(tmp_path, "--durations-file", str(tmp_path / "none.json"), *OTHERS)
    assert [name for name, _worker in ran] == [
        "stack",
        "first",
        "second",
        "third",
        "soak",
        "slow",
        "known",
    ]
