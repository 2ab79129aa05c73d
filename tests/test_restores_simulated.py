"""Snapshot restores end to end: the real daemon against the simulator's restores, in both
flavours. A failed restore is exported with its reason, a stuck one keeps its frozen progress, and
a server that does not serve the endpoint says so on its target while the others stay up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from exporter.config.loader import ClusterConfig
from exporter.simulator import Simulator, SimulatorOptions

from .conftest import TOKEN_A, RunningExporter, series, value

pytestmark = pytest.mark.slow

REASON = "copy segment task failed: NoSuchKey"


@pytest.fixture(params=["zilliz", "milvus"])
def restoring(request: pytest.FixtureRequest) -> Iterator[tuple[Simulator, str]]:
    """A world with restores enabled (one in each database's history), in one flavour."""
    sim = Simulator(
        SimulatorOptions(
            seed=22,
            flavor=request.param,
            tokens=(TOKEN_A,),
            databases=("default",),
            collections_per_database=2,
            time_scale=1.0,
            knobs={"restore_jobs_per_database": 1},
        )
    )
    with sim.serve("127.0.0.1", 0) as server:
        yield sim, server.url


def _cluster(url: str) -> ClusterConfig:
    return ClusterConfig(
        name="prod",
        endpoint=url,
        token=TOKEN_A,
        databases=("default",),
        jobs=("refresh", "import", "restore"),
    )


def _until(exporter: RunningExporter, check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        exporter.wait_for_cycles(1)


def test_a_failed_restore_is_exported_with_its_reason(
    restoring: tuple[Simulator, str], start_exporter: Callable[..., RunningExporter]
) -> None:
    sim, url = restoring
    collection = sim.databases()["default"]["importCollections"][0]
    job_id = sim.start_job(
        "restore", "default", collection, outcome="failed", duration_seconds=0.2, reason=REASON
    )
    exporter = start_exporter(_cluster(url))
    labels = {"milvus_cluster": "prod", "database": "default", "collection": collection}
    job = {**labels, "job_id": str(job_id)}

    def failed() -> bool:
        return value(exporter.scrape(), "milvus_restore_job_state", **job,
                     state="RestoreSnapshotFailed") == 1.0  # fmt: skip

    _until(exporter, failed, "the restore to be exported failed")
    scraped = exporter.scrape()
    assert value(scraped, "milvus_restore_job_failure_info", **job, reason=REASON) == 1.0
    assert (
        value(scraped, "milvus_restore_jobs", **labels, state="RestoreSnapshotFailed") or 0
    ) >= 1
    assert value(scraped, "milvus_restore_job_start_timestamp_seconds", **job) is not None
    assert value(scraped, "milvus_jobs_exporter_target_up", milvus_cluster="prod",
                 database="default", kind="restore") == 1.0  # fmt: skip


def test_a_stuck_restore_keeps_its_frozen_progress_while_executing(
    restoring: tuple[Simulator, str], start_exporter: Callable[..., RunningExporter]
) -> None:
    sim, url = restoring
    collection = sim.databases()["default"]["importCollections"][0]
    job_id = sim.start_job("restore", "default", collection, outcome="hang", duration_seconds=0.5)
    exporter = start_exporter(_cluster(url))
    job = {"milvus_cluster": "prod", "database": "default", "collection": collection,
           "job_id": str(job_id)}  # fmt: skip

    def executing() -> bool:
        return value(exporter.scrape(), "milvus_restore_job_state", **job,
                     state="RestoreSnapshotExecuting") == 1.0  # fmt: skip

    _until(exporter, executing, "the restore to be executing")
    time.sleep(1.0)  # simulated time runs on: a hung job stays where it stopped
    _until(exporter, executing, "the restore still executing")
    progress = [value(exporter.scrape(), "milvus_restore_job_progress_ratio", **job)]
    exporter.wait_for_cycles(2)
    progress.append(value(exporter.scrape(), "milvus_restore_job_progress_ratio", **job))
    assert progress[0] is not None and progress[0] < 1.0
    assert progress[0] == progress[1]


def test_a_server_without_snapshot_jobs_says_so_on_the_restore_target_only(
    restoring: tuple[Simulator, str], start_exporter: Callable[..., RunningExporter]
) -> None:
    sim, url = restoring
    sim.set_knobs({"restore_not_served": True})
    exporter = start_exporter(_cluster(url))
    scraped = exporter.scrape()
    target = {"milvus_cluster": "prod", "database": "default"}
    assert value(scraped, "milvus_jobs_exporter_target_up", **target, kind="restore") == 0.0
    errors = [
        labels
        for labels in series(scraped, "milvus_jobs_exporter_target_error_info")
        if labels.get("kind") == "restore"
    ]
    assert [labels["reason"] for labels in errors] == ["not_served"]
    for kind in ("refresh", "import"):
        assert value(scraped, "milvus_jobs_exporter_target_up", **target, kind=kind) == 1.0
