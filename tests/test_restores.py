"""Snapshot restores end to end on the product side: the real daemon polls a small fake Milvus 3
on 127.0.0.1 that serves ``jobs/snapshot/list`` and ``/describe`` with the shapes of the facts
file (ids as JSON numbers in records, decimal strings in describe requests, milliseconds), and
exports, remembers and shows what it lists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon

from . import hostile
from .conftest import TOKEN_A, value

REPO = Path(__file__).resolve().parents[1]
NOW_MS = hostile.NOW_MS
BIG_ID = 449503829274509301
"""An int64 above 2**53: a float would make it ...300."""
JOB = {"milvus_cluster": "prod", "database": "default", "collection": "films"}


def restore_record(
    job_id: int, state: str, collection: str = "films", **fields: object
) -> dict[str, object]:
    """A record as Milvus 3 writes it: every key present, reason "" unless failed."""
    finished = state in ("RestoreSnapshotCompleted", "RestoreSnapshotFailed")
    record: dict[str, object] = {
        "jobId": job_id,
        "snapshotName": "nightly",
        "dbName": "default",
        "collectionName": collection,
        "state": state,
        "progress": 100 if state == "RestoreSnapshotCompleted" else 40,
        "reason": "",
        "startTime": NOW_MS - 600_000,
        "timeCost": 125_500 if finished else 0,
    }
    record.update(fields)
    return record


@dataclass
class FakeMilvus:
    """What the fake server lists and describes; change it between cycles."""

    restores: list[dict[str, Any]] = field(default_factory=list)
    serves_restores: bool = True
    describes: list[object] = field(default_factory=list)
    """Every ``jobId`` a restore describe was sent, as sent."""

    def behave(self, exchange: hostile.Exchange) -> None:
        path = exchange.path
        if path.endswith("/jobs/snapshot/list"):
            if not self.serves_restores:
                body = b"404 page not found"  # Go's mux: older Milvus, Zilliz Cloud today
                exchange.send(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            exchange.answer({"code": 0, "data": {"records": self.restores}})
        elif path.endswith("/jobs/snapshot/describe"):
            job_id = exchange.body.get("jobId")
            self.describes.append(job_id)
            known = [record for record in self.restores if str(record["jobId"]) == job_id]
            if not isinstance(job_id, str):
                exchange.answer({"code": 1801, "message": "can only accept json format request"})
            elif known:
                exchange.answer({"code": 0, "data": known[0]})
            else:
                exchange.answer({"code": 2101, "message": f"restore job not found: jobID={job_id}"})
        elif path.endswith("/collections/list"):
            exchange.answer({"code": 0, "data": ["films", "books"]})
        else:  # refresh and import lists: nothing running
            exchange.answer({"code": 0, "data": {"records": []}})


@pytest.fixture
def fake() -> Iterator[tuple[FakeMilvus, str]]:
    world = FakeMilvus()
    with hostile.hostile_server({}, default=world.behave) as server:
        yield world, server.url


def daemon_for(url: str, jobs: tuple[str, ...] = ("refresh", "import", "restore"), **settings):
    cluster = ClusterConfig("prod", url, TOKEN_A, jobs=jobs)
    values: dict[str, Any] = {"poll_interval": 0.2, "request_timeout": 1.0, "max_retries": 0}
    values.update(settings)
    return Daemon(Config(clusters=(cluster,), **values))


def scraped(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    parsed = {}
    for family in text_string_to_metric_families(daemon.cache.scrape().body.decode()):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def one_cycle(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    daemon.run_cycle()
    return scraped(daemon)


def test_a_failed_restore_is_exported_with_its_state_times_reason_and_counts(fake):
    world, url = fake
    world.restores = [
        restore_record(BIG_ID, "RestoreSnapshotFailed", reason="copy segment 7: object not found"),
        restore_record(12, "RestoreSnapshotCompleted", startTime=NOW_MS - 900_000),
    ]
    daemon = daemon_for(url)
    try:
        parsed = one_cycle(daemon)
    finally:
        daemon.stop()
    failed = {**JOB, "job_id": str(BIG_ID)}
    assert value(parsed, "milvus_restore_job_state", **failed, state="RestoreSnapshotFailed") == 1
    for other in ("RestoreSnapshotPending", "RestoreSnapshotExecuting", "RestoreSnapshotCompleted"):
        assert value(parsed, "milvus_restore_job_state", **failed, state=other) == 0
    assert value(parsed, "milvus_restore_job_progress_ratio", **failed) == 0.4
    assert value(parsed, "milvus_restore_job_start_timestamp_seconds", **failed) == (
        (NOW_MS - 600_000) / 1000
    )
    assert value(parsed, "milvus_restore_job_duration_seconds", **failed) == 125.5
    reason = "copy segment 7: object not found"
    assert value(parsed, "milvus_restore_job_failure_info", **failed, reason=reason) == 1
    assert value(parsed, "milvus_restore_jobs", **JOB, state="RestoreSnapshotFailed") == 1
    assert value(parsed, "milvus_restore_jobs", **JOB, state="RestoreSnapshotCompleted") == 1
    assert value(parsed, "milvus_restore_jobs", **JOB, state="RestoreSnapshotPending") == 0
    # only the newest finished restore of a collection gets per-job series
    older = {**JOB, "job_id": "12"}
    assert value(parsed, "milvus_restore_job_progress_ratio", **older) is None
    target = {"milvus_cluster": "prod", "database": "default", "kind": "restore"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **target) == 1


def test_a_running_restore_ages_from_its_start_and_an_unknown_state_is_kept_as_sent(fake):
    world, url = fake
    started_ms = int(time.time() * 1000) - 600_000  # ten minutes ago, now (not at import)
    world.restores = [
        restore_record(20, "RestoreSnapshotExecuting", progress=55, startTime=started_ms),
        restore_record(21, "RestoreSnapshotNone", collection="books"),
    ]
    daemon = daemon_for(url)
    try:
        parsed = one_cycle(daemon)
    finally:
        daemon.stop()
    running = {**JOB, "job_id": "20"}
    assert value(parsed, "milvus_restore_job_progress_ratio", **running) == 0.55
    assert 599 <= value(parsed, "milvus_restore_job_duration_seconds", **running) < 660
    assert not [name for name, labels in parsed if name == "milvus_restore_job_failure_info"]
    unknown = {**JOB, "collection": "books", "job_id": "21"}
    assert value(parsed, "milvus_restore_job_state", **unknown, state="RestoreSnapshotNone") == 1
    target = {"milvus_cluster": "prod", "database": "default", "kind": "restore"}
    assert value(parsed, "milvus_jobs_exporter_unknown_state_jobs", **target) == 1


def test_a_restore_seen_finishing_is_observed_once_by_its_time_cost(fake):
    world, url = fake
    world.restores = [restore_record(30, "RestoreSnapshotExecuting")]
    daemon = daemon_for(url)
    try:
        daemon.run_cycle()
        world.restores = [restore_record(30, "RestoreSnapshotCompleted", timeCost=250_000)]
        daemon.run_cycle()
        parsed = one_cycle(daemon)
    finally:
        daemon.stop()
    labels = {"milvus_cluster": "prod", "database": "default", "state": "RestoreSnapshotCompleted"}
    assert value(parsed, "milvus_restore_duration_seconds_count", **labels) == 1
    assert value(parsed, "milvus_restore_duration_seconds_sum", **labels) == 250.0


def test_a_failed_restore_stays_after_the_server_forgets_it_and_across_a_restart(fake, tmp_path):
    world, url = fake
    state_file = str(tmp_path / "state.json")
    world.restores = [restore_record(40, "RestoreSnapshotFailed", reason="no space left")]
    failed = {**JOB, "job_id": "40", "reason": "no space left"}
    first = daemon_for(url, state_file=state_file)
    try:
        first.run_cycle()
        world.restores = []  # the server forgot the job
        assert value(one_cycle(first), "milvus_restore_job_failure_info", **failed) == 1
    finally:
        first.stop()
    saved = json.loads(Path(state_file).read_text())
    assert saved["kinds"]["restore"]["newest_finished"][0]["job"]["job_id"] == "40"

    second = daemon_for(url, state_file=state_file)
    try:
        assert value(scraped(second), "milvus_restore_job_failure_info", **failed) == 1
        assert value(one_cycle(second), "milvus_restore_job_failure_info", **failed) == 1
        # a later restore of the collection completes: the failure is over
        world.restores = [restore_record(41, "RestoreSnapshotCompleted")]
        parsed = one_cycle(second)
    finally:
        second.stop()
    assert value(parsed, "milvus_restore_job_failure_info", **failed) is None
    assert value(parsed, "milvus_restore_job_state", **JOB, job_id="41",
                 state="RestoreSnapshotCompleted") == 1  # fmt: skip


def test_restores_are_asked_for_only_where_a_cluster_names_them(fake):
    world, _url = fake
    with hostile.hostile_server({}, default=world.behave) as server:
        daemon = daemon_for(server.url, jobs=("refresh", "import"))
        try:
            parsed = one_cycle(daemon)
        finally:
            daemon.stop()
        paths = {exchange.path for exchange in server.seen}
    assert "/v2/vectordb/jobs/snapshot/list" not in paths
    assert "/v2/vectordb/jobs/import/list" in paths
    kinds = {dict(labels)["kind"] for name, labels in parsed
             if name == "milvus_jobs_exporter_target_up"}  # fmt: skip
    assert kinds == {"refresh", "import"}


def test_a_server_that_does_not_serve_restores_says_so_in_one_line_once(fake):
    """Older Milvus and Zilliz Cloud (today) answer Go's plain 404 page: the restore target is
    down with reason not_served, said once, and the other kinds of the cluster poll on."""
    world, url = fake
    world.serves_restores = False
    daemon = daemon_for(url)
    try:
        with structlog.testing.capture_logs() as logs:
            for _cycle in range(3):
                daemon.run_cycle()
        parsed = scraped(daemon)
    finally:
        daemon.stop()
    restore = {"milvus_cluster": "prod", "database": "default", "kind": "restore"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **restore) == 0
    assert value(parsed, "milvus_jobs_exporter_target_error_info", **restore,
                 reason="not_served") == 1  # fmt: skip
    assert value(parsed, "milvus_jobs_exporter_poll_errors_total", **restore,
                 reason="not_served") == 3  # fmt: skip
    for kind in ("refresh", "import"):
        up = {**restore, "kind": kind}
        assert value(parsed, "milvus_jobs_exporter_target_up", **up) == 1
    said = [line for line in logs if line["event"] == "poll.failed"]
    assert len(said) == 1, said
    assert said[0]["reason"] == "not_served" and "\n" not in said[0]["error"]
    assert "snapshot/list" in said[0]["error"] and "Milvus 3.0" in said[0]["error"]


# --- the operator commands --------------------------------------------------------------------


def command_config(tmp_path: Path, url: str, jobs: str = "[refresh, import, restore]") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "request_timeout: 2s\nmax_retries: 0\nclusters:\n"
        f"  - {{name: prod, endpoint: '{url}', token: {TOKEN_A}, jobs: {jobs}}}\n"
    )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "TZ": "UTC"},
    )
    assert "Traceback" not in result.stderr and TOKEN_A not in result.stdout + result.stderr
    return result


def test_jobs_list_kind_restore_lists_the_restores_newest_first(fake, tmp_path):
    world, url = fake
    world.restores = [
        restore_record(12, "RestoreSnapshotCompleted", startTime=NOW_MS - 900_000),
        restore_record(BIG_ID, "RestoreSnapshotFailed", reason="object not found"),
    ]
    config = command_config(tmp_path, url)
    result = run("jobs", "list", "--config", str(config), "--kind", "restore", "--output", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(row["kind"], row["jobId"], row["state"]) for row in rows] == [
        ("restore", str(BIG_ID), "RestoreSnapshotFailed"),
        ("restore", "12", "RestoreSnapshotCompleted"),
    ]
    assert rows[0]["durationSeconds"] == 125.5 and rows[0]["reason"] == "object not found"
    failed = run("jobs", "list", "--config", str(config), "--state", "failed")
    assert failed.returncode == 0 and str(BIG_ID) in failed.stdout and " 12 " not in failed.stdout


def test_jobs_describe_kind_restore_sends_the_id_as_a_decimal_string(fake, tmp_path):
    world, url = fake
    world.restores = [restore_record(BIG_ID, "RestoreSnapshotFailed", reason="object not found")]
    config = command_config(tmp_path, url)
    base = ("jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", "restore")
    shown = run(*base, str(BIG_ID))
    assert shown.returncode == 0, shown.stderr
    assert "Kind:       restore" in shown.stdout and "Snapshot:   nightly" in shown.stdout
    assert "Reason:     object not found" in shown.stdout
    document = json.loads(run(*base, "--output", "json", str(BIG_ID)).stdout)
    assert document["jobId"] == str(BIG_ID) and document["durationSeconds"] == 125.5
    assert world.describes == [str(BIG_ID), str(BIG_ID)]


def test_an_unknown_restore_is_the_same_not_found_line_and_exit_code_as_the_other_kinds(
    fake, tmp_path
):
    _world, url = fake
    config = command_config(tmp_path, url)
    result = run(
        "jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", "restore",
        "42",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "milvus-jobs-exporter: prod: restore job 42 not found "
        "(code 2101: restore job not found: jobID=42)\n"
    )


def test_a_restore_id_that_is_not_a_number_is_refused_before_anything_is_sent(fake, tmp_path):
    world, url = fake
    config = command_config(tmp_path, url)
    result = run(
        "jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", "restore",
        "job-abc",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "milvus-jobs-exporter: JOB_ID 'job-abc' is not a restore job id (a number); "
        "for an import job add --kind import\n"
    )
    assert world.describes == []
