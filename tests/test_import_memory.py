"""The newest finished import of a collection outlives the server's ~3 h memory of it.

The server forgets a finished import about three hours after it ends. Without the exporter's own
memory, a failed import never followed by another import of its collection vanished from
/metrics then, and MilvusImportJobFailed resolved although nothing had been fixed.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from exporter.config.loader import ClusterConfig
from exporter.memory.state import load_state, save_state
from exporter.metrics.model import MetricsModel
from exporter.simulator import Simulator, SimulatorOptions
from exporter.upstream.records import ImportJobDetails

from .conftest import TOKEN_A, RunningExporter, Series
from .conftest import value as scraped_value
from .helpers import IMPORT, T0, cycle, import_job, ok, samples, value

COLLECTION = {"milvus_cluster": "prod", "database": "default", "collection": "books"}
FAILED = {**COLLECTION, "job_id": "20"}
DAY = 86_400.0


def failure_info(parsed: Series, job_id: str = "20", reason: str = "row count mismatch"):
    return value(
        parsed, "milvus_import_job_failure_info", **COLLECTION, job_id=job_id, reason=reason
    )


def model(**limits: float) -> MetricsModel:
    return MetricsModel(1000, 30.0, **limits)  # type: ignore[arg-type]


def failed_then_forgotten(subject: MetricsModel) -> Series:
    """Poll once with import 20 failed, then once with the server having forgotten it."""
    failed = import_job("20", "Failed", progress=0.3, reason="row count mismatch")
    subject.update(cycle(ok(IMPORT, T0, imports=(failed,))), T0)
    later = T0 + 4 * 3600
    return samples(subject.update(cycle(ok(IMPORT, later, imports=())), later))


def test_a_failed_import_the_server_forgot_is_still_exported_as_failed():
    parsed = failed_then_forgotten(model())
    assert failure_info(parsed) == 1
    assert value(parsed, "milvus_import_job_state", **FAILED, state="Failed") == 1
    assert value(parsed, "milvus_import_job_progress_ratio", **FAILED) == 0.3


def test_listed_counts_stay_counts_of_listed_jobs_only():
    parsed = failed_then_forgotten(model())
    assert [labels for (name, labels) in parsed if name == "milvus_import_jobs"] == []

    subject = model()
    failed_then_forgotten(subject)
    running = import_job("30", "Importing", collection="songs")
    now = T0 + 5 * 3600
    parsed = samples(subject.update(cycle(ok(IMPORT, now, imports=(running,))), now))
    songs = {**COLLECTION, "collection": "songs"}
    assert value(parsed, "milvus_import_jobs", **songs, state="Importing") == 1
    assert value(parsed, "milvus_import_jobs", **COLLECTION, state="Failed") is None
    assert failure_info(parsed) == 1


def test_the_remembered_import_keeps_its_details():
    subject = model()
    failed = import_job("20", "Failed", reason="row count mismatch")
    first = cycle(ok(IMPORT, T0, imports=(failed,)))
    details = ImportJobDetails("20", "Failed", 7, 100, 4096, T0 - 60, None, "books")
    subject.update(replace(first, follow_ups=((IMPORT.key, details),)), T0)
    later = T0 + 4 * 3600
    parsed = samples(subject.update(cycle(ok(IMPORT, later, imports=())), later))
    assert value(parsed, "milvus_import_job_imported_rows", **FAILED) == 7
    assert value(parsed, "milvus_import_job_create_timestamp_seconds", **FAILED) == T0 - 60


def test_a_later_completed_import_replaces_the_remembered_failure():
    subject = model()
    failed_then_forgotten(subject)
    done = import_job("21", "Completed", progress=1.0)
    now = T0 + 5 * 3600
    parsed = samples(subject.update(cycle(ok(IMPORT, now, imports=(done,))), now))
    assert failure_info(parsed) is None
    assert value(parsed, "milvus_import_job_state", **FAILED, state="Failed") is None
    done_labels = {**COLLECTION, "job_id": "21"}
    assert value(parsed, "milvus_import_job_state", **done_labels, state="Completed") == 1

    later = now + 4 * 3600  # the completed one is forgotten by the server too: still no failure
    parsed = samples(subject.update(cycle(ok(IMPORT, later, imports=())), later))
    assert failure_info(parsed) is None
    assert value(parsed, "milvus_import_job_state", **done_labels, state="Completed") == 1


def test_an_unfinished_import_does_not_replace_the_remembered_failure():
    subject = model()
    failed_then_forgotten(subject)
    running = import_job("21", "Importing")
    now = T0 + 5 * 3600
    parsed = samples(subject.update(cycle(ok(IMPORT, now, imports=(running,))), now))
    assert failure_info(parsed) == 1
    assert value(parsed, "milvus_import_jobs", **COLLECTION, state="Importing") == 1
    assert value(parsed, "milvus_import_jobs", **COLLECTION, state="Failed") == 0


def test_a_collection_not_listed_for_the_retention_is_forgotten_and_counted():
    subject = model(collection_retention=DAY)
    failed_then_forgotten(subject)
    now = T0 + DAY + 60
    parsed = samples(subject.update(cycle(ok(IMPORT, now, imports=())), now))
    assert failure_info(parsed) is None
    forgotten = value(
        parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="retention"
    )
    assert forgotten == 1


def test_beyond_the_limit_the_least_recently_listed_collection_is_forgotten_first():
    subject = model(max_tracked_collections=1)
    failed_then_forgotten(subject)
    other = import_job("40", "Failed", collection="songs", reason="bad file")
    now = T0 + 5 * 3600
    parsed = samples(subject.update(cycle(ok(IMPORT, now, imports=(other,))), now))
    assert failure_info(parsed) is None
    songs = {**COLLECTION, "collection": "songs", "job_id": "40"}
    assert value(parsed, "milvus_import_job_failure_info", **songs, reason="bad file") == 1
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="limit") == 1


def test_a_removed_import_target_drops_its_memory():
    subject = model()
    failed_then_forgotten(subject)
    now = T0 + 5 * 3600
    parsed = samples(subject.update(cycle(targets=()), now))
    assert failure_info(parsed) is None


def test_a_restart_serves_the_remembered_failed_import_before_the_first_poll(tmp_path):
    before = model()
    failed_then_forgotten(before)
    path = tmp_path / "state.json"
    save_state(path, before.saved_state(), T0 + 4 * 3600)

    loaded = load_state(path)
    assert loaded is not None
    after = model()
    after.restore(loaded)
    parsed = samples(after.families(T0 + 4 * 3600 + 10))  # no poll yet
    assert failure_info(parsed) == 1
    assert value(parsed, "milvus_import_job_state", **FAILED, state="Failed") == 1

    now = T0 + 5 * 3600  # the first poll still lists nothing: the failure stays
    parsed = samples(after.update(cycle(ok(IMPORT, now, imports=())), now))
    assert failure_info(parsed) == 1


def test_the_daemon_keeps_a_failed_import_on_metrics_after_the_simulator_drops_it(
    start_exporter,
):
    # Nothing happens unless asked (no automatic jobs), and a finished import is forgotten
    # 60 simulated seconds (one real second) after it ends instead of three hours.
    options = SimulatorOptions(
        tokens=(TOKEN_A,),
        databases=("default",),
        collections_per_database=2,
        import_jobs_per_database=0,
        auto_refresh=False,
        time_scale=60.0,
        import_retention_seconds=60.0,
    )
    simulator = Simulator(options)
    with simulator.serve("127.0.0.1", 0) as server:
        collection = simulator.databases()["default"]["importCollections"][0]
        job_id = simulator.start_import(
            "default", collection, outcome="failed", duration_seconds=30.0, reason="bad row 7"
        )
        cluster = ClusterConfig(
            "prod", server.url, TOKEN_A, databases=("default",), jobs=("import",)
        )
        exporter = start_exporter(cluster, poll_interval=0.2)
        labels = {
            "milvus_cluster": "prod",
            "database": "default",
            "collection": collection,
            "job_id": job_id,
        }
        listed = {"milvus_cluster": "prod", "database": "default", "collection": collection}

        def failed(parsed: Series) -> bool:
            info = scraped_value(
                parsed, "milvus_import_job_failure_info", **labels, reason="bad row 7"
            )
            return info == 1

        def dropped(parsed: Series) -> bool:
            return scraped_value(parsed, "milvus_import_jobs", **listed, state="Failed") is None

        parsed = wait_until(exporter, failed, "the failed import on /metrics")
        assert scraped_value(parsed, "milvus_import_jobs", **listed, state="Failed") == 1
        parsed = wait_until(exporter, dropped, "the simulator to drop the import")
        assert failed(parsed)
        exporter.wait_for_cycles(2)
        parsed = exporter.scrape()
        assert failed(parsed)
        assert scraped_value(parsed, "milvus_import_job_state", **labels, state="Failed") == 1


def wait_until(exporter: RunningExporter, check, what: str, timeout: float = 15.0) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        parsed = exporter.scrape()
        if check(parsed):
            return parsed
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.1)


def test_a_state_file_written_before_imports_were_remembered_still_loads(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(
        '{"version": 1, "written_at": 1, "collections": [], "refresh_seen": [],'
        ' "imports_seen": [], "refresh_durations": [], "import_durations": []}'
    )
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.of("import").newest_finished == []


def test_an_import_entry_that_cannot_be_read_costs_only_itself(tmp_path):
    before = model()
    failed_then_forgotten(before)
    path = tmp_path / "state.json"
    save_state(path, before.saved_state(), T0)
    document = json.loads(path.read_text())
    section = document["kinds"]["import"]
    good = section["newest_finished"][0]
    section["newest_finished"] = [
        {**good, "collection": "songs", "order": "not a pair"},
        {**good, "job": {**good["job"], "progress_ratio": 7.5}},  # outside 0..1
        good,
    ]
    path.write_text(json.dumps(document))
    loaded = load_state(path)
    assert loaded is not None
    remembered = loaded.of("import").newest_finished
    assert [key for key, _entry in remembered] == [("prod", "default", "books")]
    assert remembered[0][1].job.reason == "row count mismatch"
