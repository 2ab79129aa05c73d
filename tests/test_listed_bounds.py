"""Bounded by what it is given, not by what it is sent: a server that lists far more jobs than the
exporter tracks costs the exporter its configured limits, in memory, in /metrics and in
``import/describe`` requests, never the size of the list.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.kinds import imports
from exporter.upstream.records import ImportJob, parse_import_job

from . import hostile
from .conftest import TOKEN_A, Series, value
from .test_cli import REPO, free_port
from .test_state import samples_of

MANIFEST_MEMORY_LIMIT = 256 * 1024 * 1024
"""deploy/kubernetes/base/deployment.yaml: limits.memory 256Mi."""


def unfinished_imports(count: int, first: int = 0) -> list[dict[str, object]]:
    """``count`` running imports, each in a collection of its own."""
    return [
        {
            "jobId": str(448_700_000_000_000_000 + index),
            "collectionName": f"c{index:07d}",
            "state": "Importing",
            "progress": 50,
        }
        for index in range(first, first + count)
    ]


def import_daemon(url: str, **settings: object) -> Daemon:
    values: dict[str, object] = {"poll_interval": 5.0, "request_timeout": 5.0, "max_retries": 0}
    values.update(settings)
    cluster = ClusterConfig("prod", url, TOKEN_A, databases=("default",), jobs=("import",))
    return Daemon(Config(clusters=(cluster,), **values))  # type: ignore[arg-type]


def count_series(parsed: Series, name: str) -> int:
    return sum(1 for sample_name, _labels in parsed if sample_name == name)


def test_sixty_thousand_listed_collections_get_count_series_only_up_to_max_tracked_collections():
    """60k running imports, each in its own collection, with 1,000 tracked jobs and collections:
    /metrics gave 245k samples; now it holds what the limits allow, and says what it left out."""
    listed = hostile.raw_json(
        json.dumps({"code": 0, "data": {"records": unfinished_imports(60_000)}})
    )
    with hostile.hostile_server({"default": listed}) as server:
        daemon = import_daemon(
            server.url, max_tracked_jobs=1_000, max_tracked_collections=1_000, import_details=False
        )
        daemon.run_cycle()
        parsed = samples_of(daemon)
        body = daemon.cache.scrape().body
        daemon.stop()
    assert count_series(parsed, "milvus_import_jobs") <= 1_000 * 4
    assert count_series(parsed, "milvus_import_job_state") <= 1_000 * 4
    assert len(parsed) < 12_000, f"{len(parsed)} samples"
    assert len(body) < 2_000_000
    target = {"milvus_cluster": "prod", "database": "default", "kind": "import"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **target) == 1
    assert value(parsed, "milvus_jobs_exporter_untracked_jobs") == 10_000 - 1_000
    assert value(parsed, "milvus_jobs_exporter_untracked_collections") == 10_000 - 1_000
    left_out = value(
        parsed, "milvus_jobs_exporter_unkept_jobs", **target, limit="max_listed_collections"
    )
    assert left_out == 60_000 - 10_000


def test_describes_are_bounded_per_round_and_the_rest_come_in_later_rounds():
    """250 running imports: every one was described in every round; now at most
    ``max_import_describes`` (default 100) per round, the least recently described first."""
    pages = hostile.import_pages(unfinished_imports(250), 1)
    with hostile.hostile_server({"default": hostile.paged(pages)}) as server:
        daemon = import_daemon(server.url, requests_per_second=2_000.0)
        described_per_round = []
        for _ in range(3):
            before = len(server.seen)
            daemon.run_cycle()
            round_requests = server.seen[before:]
            described_per_round.append(
                [str(e.body.get("jobId")) for e in round_requests if "describe" in e.path]
            )
        daemon.stop()
    assert [len(round_ids) for round_ids in described_per_round] == [100, 100, 100]
    every = {str(job["jobId"]) for job in unfinished_imports(250)}
    assert set().union(*described_per_round) == every  # none waits more than three rounds
    assert set(described_per_round[0]).isdisjoint(described_per_round[1])


def test_the_pages_of_one_answer_share_one_byte_budget():
    """Each page under max_response_bytes, together over max_listing_bytes (64 MiB): the whole
    answer was read (up to 100 pages x 16 MiB); now reading stops at the budget and the target
    is down with a reason that says so."""
    padding = "x" * 1000
    records = [
        {**record, "reason": padding} for record in unfinished_imports(5 * 14_000)
    ]  # about 15 MB a page
    pages = hostile.import_pages(records, 5)
    assert all(len(page) < 16 * 1024 * 1024 for page in pages)
    assert sum(len(page) for page in pages) > 64 * 1024 * 1024
    with hostile.hostile_server({"default": hostile.paged(pages)}) as server:
        daemon = import_daemon(server.url, import_details=False, request_timeout=10.0)
        daemon.run_cycle()
        parsed = samples_of(daemon)
        daemon.stop()
        list_requests = [e for e in server.seen if e.path.endswith("/import/list")]
    target = {"milvus_cluster": "prod", "database": "default", "kind": "import"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **target) == 0
    assert (
        value(
            parsed, "milvus_jobs_exporter_target_error_info", **target, reason="listing_too_large"
        )
        == 1
    )
    assert len(list_requests) == 5  # never asked again in the round: not a temporary failure


def live_import_jobs() -> int:
    return sum(1 for thing in gc.get_objects() if type(thing) is ImportJob)


def test_a_list_its_caps_cut_holds_what_they_keep_not_the_pages_read(monkeypatch):
    """Three pages of 10,000 running imports, 100 collections and jobs kept: every job of
    pages already read stayed alive to the end of the list (each page's reading was held for
    the next list, which never uses it: a list the caps cut is not remembered), and so did
    every job of the page being read until it was whole. Now a job the caps leave out is let
    go as it is read."""
    per_page, pages = 10_000, 3
    alive_at: dict[int, int] = {}
    parsed = 0

    def counting(record: object, shared: dict[str, str]) -> ImportJob:
        nonlocal parsed
        parsed += 1
        if parsed % per_page in (1, 0):  # each page's first and last record
            alive_at[parsed] = live_import_jobs()
        return parse_import_job(record, shared)

    monkeypatch.setattr(imports, "parse_import_job", counting)
    listed = hostile.import_pages(unfinished_imports(per_page * pages), pages)
    with hostile.hostile_server(
        {"default": hostile.without_collections_list(hostile.paged(listed))}
    ) as server:
        daemon = import_daemon(
            server.url, max_listed_jobs=100, max_listed_collections=100, import_details=False
        )
        daemon.run_cycle()
        parsed_samples = samples_of(daemon)
        daemon.stop()
    target = {"milvus_cluster": "prod", "database": "default", "kind": "import"}
    assert value(parsed_samples, "milvus_jobs_exporter_target_up", **target) == 1
    assert parsed == per_page * pages
    assert max(alive_at.values()) <= 2 * 100 + 1, alive_at


def peak_memory(pid: int) -> int:
    """VmHWM of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_half_a_million_listed_imports_cost_the_exporter_its_limits_not_the_list(tmp_path):
    """500k running imports in collections of their own, over 3 pages, default limits: the
    exporter peaked at 1.1 GB with 2.25M samples on /metrics. Now the shipped manifest's
    256 Mi holds it, over more than one round (the second round's peak was the higher, 291 MB:
    each page's jobs were held to the end of the list), and /metrics holds what the limits
    allow. ``collections/list`` is not served: a Milvus holds at most 65,536 collections, and a
    page of 500,000 imports given as its answer is another test's hostility."""
    pages = hostile.import_pages(unfinished_imports(500_000), 3)
    served = hostile.without_collections_list(hostile.paged(pages))
    with hostile.hostile_server({"default": served}) as server:
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(
            "poll_interval: 2s\nclusters:\n"
            f"  - {{name: prod, endpoint: '{server.url}', token: {TOKEN_A},"
            " databases: [default], jobs: [import]}\n"
        )
        command = [
            sys.executable, "-m", "exporter", "serve", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", "--log-format", "json",
        ]  # fmt: skip
        process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)

        def list_requests() -> int:
            return sum(1 for seen in list(server.seen) if seen.path.endswith("/import/list"))

        try:
            body = b""
            deadline = time.monotonic() + 90  # machine speed (three pages of 160 MB of JSON)
            while b"milvus_import_jobs{" not in body or list_requests() <= 2 * len(pages):
                assert process.poll() is None, "the exporter died"
                assert time.monotonic() < deadline, "no two rounds of the imports within 90 s"
                time.sleep(0.5)
                try:
                    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).content
                except requests.RequestException:
                    continue
            peak = peak_memory(process.pid)  # a third round began: two are whole
        finally:
            process.kill()
            process.wait(timeout=10)
    samples = [line for line in body.splitlines() if line and not line.startswith(b"#")]
    count_series_of = sum(1 for line in samples if line.startswith(b"milvus_import_jobs{"))
    assert count_series_of <= 10_000 * 4  # max_tracked_collections x documented states
    assert len(samples) < 120_000, f"{len(samples)} samples"
    assert len(body) < 20_000_000
    assert peak < MANIFEST_MEMORY_LIMIT, f"peak {peak / 1e6:.0f} MB"
    assert (
        b'milvus_jobs_exporter_unkept_jobs{milvus_cluster="prod",database="default",'
        b'kind="import",limit="max_listed_collections"} 490000.0' in body
    )
