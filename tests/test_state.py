"""The state file: what a restart must not forget, written atomically, read forgivingly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import structlog
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.exposition.families import HistogramState
from exporter.kinds.restore import RestoreJob
from exporter.memory.history import CollectionHistory
from exporter.memory.newest_finished import RememberedJob
from exporter.memory.removals import RemovedTarget
from exporter.memory.state import KindMemory, SavedState, StateError, load_state, save_state
from exporter.metrics.model import REFRESH_DURATION_BUCKETS, MetricsModel
from exporter.upstream.records import ImportJob, ImportJobDetails

from . import hostile
from .conftest import TOKEN_A, value
from .helpers import REFRESH, T0, cycle, ok, refresh_job, samples
from .test_cli import REPO, free_port

JOB = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books"}


def test_a_saved_state_reads_back_as_it_was(tmp_path):
    path = tmp_path / "state.json"
    histogram = HistogramState(REFRESH_DURATION_BUCKETS)
    histogram.observe(42.0)
    saved = SavedState(
        kinds={
            "refresh": KindMemory(
                history=[
                    (
                        ("prod", "default", "ext_books"),
                        CollectionHistory(T0, T0 + 5, T0 + 9, "7", "boom"),
                    )
                ],
                seen={("prod", "default"): {"7"}},
                durations={("prod", "default", "RefreshFailed"): histogram},
            ),
            "import": KindMemory(seen={("prod", "default"): {"job-abc"}}),
        }
    )
    save_state(path, saved, T0)
    loaded = load_state(path)
    assert loaded == saved
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_a_missing_state_file_is_a_first_start(tmp_path):
    assert load_state(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"version": 1, "collections": [', id="truncated"),
        pytest.param(b'{"version": 99}', id="another-version"),
        pytest.param(b"\xff\xfe", id="not-text"),
        pytest.param(b"[1, 2]", id="not-an-object"),
    ],
)
def test_a_state_file_that_cannot_be_used_is_one_line_and_never_fatal(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        load_state(path)
    assert "\n" not in str(caught.value)
    config = Config(
        clusters=(ClusterConfig("prod", "http://127.0.0.1:1", "t"),), state_file=str(path)
    )
    Daemon(config).poller.close()  # starts without it


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"version": 1, "collections": [[1, 2]]}', id="wrong-shape"),
        pytest.param(
            b'{"version": 1, "collections": [["a","b","c",1e999,null,1,"",""]]}', id="inf"
        ),
        pytest.param(b'{"version": 1, "collections": 7}', id="not-a-list"),
    ],
)
def test_an_unusable_entry_costs_only_itself_not_the_file(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.of("refresh").history == []
    assert loaded.dropped == {"collections": 1}


def test_a_restored_model_remembers_last_success_failure_and_counted_jobs():
    before = MetricsModel(1000, 30.0)
    done = refresh_job(1, "RefreshCompleted", start=T0 - 100, end=T0 - 50)
    failed = refresh_job(2, "RefreshFailed", start=T0 - 40, end=T0 - 20, reason="boom")
    before.update(cycle(ok(REFRESH, T0, (done,))), T0)
    before.update(cycle(ok(REFRESH, T0 + 30, (done, failed))), T0 + 30)

    after = MetricsModel(1000, 30.0)
    after.restore(before.saved_state())
    parsed = samples(after.families(T0 + 86_400 * 2))  # served before the first poll
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) == T0 - 50
    assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **JOB) == T0 - 20
    assert value(parsed, "milvus_refresh_last_failure_info", **JOB, job_id="2", reason="boom") == 1
    assert (
        value(parsed, "milvus_refresh_duration_seconds_count", **JOB | {"state": "RefreshFailed"})
        is None
    )

    # while the exporter was away, job 3 finished; the server still lists 2 and 3, not 1
    third = refresh_job(3, "RefreshCompleted", start=T0 + 100, end=T0 + 160)
    parsed = samples(after.update(cycle(ok(REFRESH, T0 + 200, (failed, third))), T0 + 200))
    counted = {"milvus_cluster": "prod", "database": "default"}
    assert (
        value(parsed, "milvus_refresh_duration_seconds_count", **counted, state="RefreshFailed")
        == 1
    )
    assert (
        value(parsed, "milvus_refresh_duration_seconds_count", **counted, state="RefreshCompleted")
        == 1
    )
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) == T0 + 160


def test_a_restarted_daemon_serves_what_the_server_has_forgotten(tmp_path):
    state = tmp_path / "state.json"
    failing = hostile.records(
        hostile.refresh_record(1, "ext_books", "RefreshCompleted", endTime=hostile.NOW_MS - 90_000),
        hostile.refresh_record(2, "ext_books", "RefreshFailed", reason="snapshot gone"),
    )
    with hostile.hostile_server({"default": failing}) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        config = Config(
            clusters=(cluster,), poll_interval=0.2, request_timeout=0.5, state_file=str(state)
        )
        first = Daemon(config)
        first.run_cycle()
        first.stop()
        assert json.loads(state.read_text())["kinds"]["refresh"]["history"]

    with hostile.hostile_server({"default": hostile.records()}) as forgetful:  # lists nothing now
        cluster = ClusterConfig("prod", forgetful.url, TOKEN_A, jobs=("refresh",))
        config = Config(
            clusters=(cluster,), poll_interval=0.2, request_timeout=0.5, state_file=str(state)
        )
        second = Daemon(config)
        before_poll = samples_of(second)
        second.run_cycle()
        after_poll = samples_of(second)
        second.stop()
    for parsed in (before_poll, after_poll):
        assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **JOB) is not None
        assert (
            value(
                parsed,
                "milvus_refresh_last_failure_info",
                **JOB,
                job_id="2",
                reason="snapshot gone",
            )
            == 1
        )
        assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) is not None


def samples_of(daemon: Daemon):
    from prometheus_client.parser import text_string_to_metric_families

    body = daemon.cache.scrape().body.decode()
    parsed = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def test_a_state_file_that_cannot_be_written_is_counted_and_polling_goes_on(tmp_path):
    in_the_way = tmp_path / "state.json"
    in_the_way.mkdir()  # a directory where the file should go: every write fails, even as root
    with hostile.hostile_server({}) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        config = Config(
            clusters=(cluster,), poll_interval=0.2, request_timeout=0.5, state_file=str(in_the_way)
        )
        daemon = Daemon(config)
        daemon.run_cycle()
        parsed = samples_of(daemon)
        daemon.stop()
    assert value(parsed, "milvus_jobs_exporter_state_write_errors_total") == 1
    assert value(parsed, "milvus_jobs_exporter_poll_cycles_total") == 1


def test_a_state_file_in_a_directory_that_does_not_exist_is_counted_and_polling_goes_on(tmp_path):
    with hostile.hostile_server({}) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        config = Config(
            clusters=(cluster,),
            poll_interval=0.2,
            request_timeout=0.5,
            state_file=str(tmp_path / "not-mounted" / "state.json"),
        )
        daemon = Daemon(config)
        daemon.run_cycle()
        parsed = samples_of(daemon)
        daemon.stop()
    assert value(parsed, "milvus_jobs_exporter_state_write_errors_total") == 1
    assert (
        value(
            parsed,
            "milvus_jobs_exporter_target_up",
            milvus_cluster="prod",
            database="default",
            kind="refresh",
        )
        == 1
    )


# --- what a hostile host or a broken file does to the state file -------------------------------


def state_daemon(path, **settings) -> Daemon:
    cluster = ClusterConfig("prod", "http://127.0.0.1:1", "t", jobs=("refresh",))
    return Daemon(Config(clusters=(cluster,), state_file=str(path), **settings))


def test_leftovers_of_interrupted_saves_are_removed_at_start_and_nothing_else(tmp_path):
    """A kill during a save left a full-size temporary each time, never removed (an OOM kill
    during the save, itself a memory peak, filled the volume until every save failed)."""
    state = tmp_path / "state.json"
    state.write_text('{"version": 1}')
    leftovers = [tmp_path / ".state.json.k3j_x9a2", tmp_path / ".state.json.ab12cd34.tmp"]
    for path in leftovers:
        path.write_bytes(b"x" * 1000)
    others = [
        tmp_path / ".state.json.notes-by-hand",
        tmp_path / ".other.json.k3j_x9a2",
        tmp_path / "state.json.v2.bak",
        tmp_path / "state.json.k3j_x9a2",
    ]
    for path in others:
        path.write_text("keep me")
    (tmp_path / ".state.json.dir12345").mkdir()
    with structlog.testing.capture_logs() as logs:
        state_daemon(state).poller.close()
    assert [path for path in leftovers if path.exists()] == []
    assert all(path.read_text() == "keep me" for path in others)
    assert (tmp_path / ".state.json.dir12345").is_dir()
    removed = [line for line in logs if line["event"] == "state.leftovers_removed"]
    assert len(removed) == 1 and removed[0]["files"] == 2


T_NOW = time.time()


def test_restored_values_are_checked_entry_by_entry_and_a_bad_one_costs_only_itself(tmp_path):
    """Negative histogram counts or a NaN sum were served as they were (the OpenMetrics parser
    rejected the whole page) and saved back; one bad collection cost the whole file."""
    good_time = T_NOW - 3600
    buckets = [0] * len(REFRESH_DURATION_BUCKETS)
    document = {
        "version": 1,
        "written_at": good_time,
        "collections": [
            ["prod", "default", "good", good_time, None, good_time, "", ""],
            ["prod", "default", "infinite", float("inf"), None, good_time, "", ""],
            ["prod", "default", "in_1970", 1000.0, None, good_time, "", ""],
            ["prod", "default", "next_year", T_NOW + 365 * 86_400, None, good_time, "", ""],
            ["prod", "default", "short"],
        ],
        "refresh_seen": [["prod", "default", [["good", "7"]]], ["prod", "default", 5]],
        "imports_seen": [],
        "refresh_durations": [
            ["prod", "default", "RefreshCompleted", [1, *buckets[1:]], 5.0, 1],
            ["prod", "default", "RefreshFailed", [-3, *buckets[1:]], 5.0, 1],
            ["prod", "other", "RefreshCompleted", [1, *buckets[1:]], float("nan"), 1],
            ["prod", "third", "RefreshCompleted", [5, *buckets[1:]], 5.0, 2],
        ],
        "import_durations": [],
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))  # json writes NaN and Infinity, as Python reads them
    with structlog.testing.capture_logs() as logs:
        daemon = state_daemon(path)
    body = daemon.cache.scrape(openmetrics=True).body.decode()
    daemon.poller.close()
    families = list(openmetrics_families(body))  # raises on an invalid exposition
    names = {family.name for family in families}
    assert "milvus_refresh_duration_seconds" in names
    collections = {
        sample.labels["collection"]
        for family in families
        if family.name == "milvus_refresh_last_success_timestamp_seconds"
        for sample in family.samples
    }
    assert collections == {"good"}
    histograms = {
        (sample.labels["database"], sample.labels["state"])
        for family in families
        if family.name == "milvus_refresh_duration_seconds"
        for sample in family.samples
    }
    assert histograms == {("default", "RefreshCompleted")}
    dropped = [line for line in logs if line["event"] == "state.entries_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["dropped"] == {
        "collections": 4,
        "refresh_seen": 1,
        "refresh_durations": 3,
    }  # a file of an older version counts by its own sections


def test_a_state_file_over_the_size_limit_is_kept_aside_and_start_is_quick(tmp_path):
    """A 200 MB state file held /healthz for 21 s and RSS at 961 MB. Now a file over
    max_state_file_bytes is not read: one line says so, and it is kept aside, never
    overwritten by the next save."""
    path = tmp_path / "state.json"
    content = b'{"version": 1, "collections": [' + b'["p","d","c",1,null,1,"",""],' * 600_000
    content += b'["p","d","c",1,null,1,"",""]]}'
    path.write_bytes(content)
    assert len(content) > 16 * 1024 * 1024  # the default max_state_file_bytes
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        daemon = state_daemon(path)
    assert time.monotonic() - started < 2.0
    daemon.poller.close()
    aside = tmp_path / "state.json.too-large.bak"
    assert aside.read_bytes() == content
    assert not path.exists()
    said = [line for line in logs if line["event"] == "state.too_large"]
    assert len(said) == 1 and "16777216" in said[0]["error"]


def test_a_state_too_large_to_be_read_back_is_not_written_and_the_previous_file_stays(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, SavedState(), T0)
    before = path.read_bytes()
    many = [
        (("prod", "default", f"c{index}"), CollectionHistory(T0, None, T0)) for index in range(100)
    ]
    with pytest.raises(OSError) as caught:
        save_state(
            path, SavedState(kinds={"refresh": KindMemory(history=many)}), T0, max_bytes=2048
        )
    assert "max_state_file_bytes (2048)" in str(caught.value)
    assert path.read_bytes() == before
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.json"]


def test_a_state_file_of_a_newer_format_is_kept_aside_not_overwritten(tmp_path):
    path = tmp_path / "state.json"
    newer = b'{"version": 4, "collections_by_name": {}}'
    path.write_bytes(newer)
    with hostile.hostile_server({}) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        config = Config(
            clusters=(cluster,), poll_interval=0.2, request_timeout=0.5, state_file=str(path)
        )
        with structlog.testing.capture_logs() as logs:
            daemon = Daemon(config)
            daemon.run_cycle()  # saves its own state
            daemon.stop()
    assert (tmp_path / "state.json.v4.bak").read_bytes() == newer
    assert json.loads(path.read_text())["version"] == 3
    said = [line for line in logs if line["event"] == "state.newer_format"]
    assert len(said) == 1


def leftover_saves(directory) -> list:
    return [path for path in directory.iterdir() if path.name.startswith(".state.json.")]


@pytest.mark.slow
def test_kill_9_during_a_save_leaves_no_temporary_after_the_restart(tmp_path):
    """The real process, a state file of about 12 MB, SIGKILL while it is being saved."""
    now = time.time()
    collections = [
        ["prod", "default", f"c{index:06d}", now - 60, None, now, "", ""]
        for index in range(150_000)
    ]
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "written_at": now,
                "collections": collections,
                "refresh_seen": [],
                "imports_seen": [],
                "refresh_durations": [],
                "import_durations": [],
            }
        )
    )
    with hostile.hostile_server({}) as server:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"state_file: {state}\nmax_tracked_collections: 1000000\npoll_interval: 1s\n"
            "max_state_file_bytes: 67108864\n"  # 150,000 collections keyed by name: ~30 MB
            "clusters:\n"
            f"  - {{name: prod, endpoint: '{server.url}', token: {TOKEN_A}, jobs: [refresh]}}\n"
        )
        command = [
            sys.executable, "-m", "exporter", "serve", "--config", str(config),
            "--listen", f"127.0.0.1:{free_port()}",
        ]  # fmt: skip
        caught = []
        for _attempt in range(3):
            process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30  # a loaded machine: the restore itself takes seconds
            while not caught and time.monotonic() < deadline and process.poll() is None:
                if leftover_saves(tmp_path):
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
                    caught = leftover_saves(tmp_path)
                time.sleep(0.001)
            process.kill()
            process.wait(timeout=10)
            if caught:
                break
        assert caught, "never caught a save in progress"
        restarted = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while leftover_saves(tmp_path):
                assert time.monotonic() < deadline, f"left over: {leftover_saves(tmp_path)}"
                time.sleep(0.05)
        finally:
            restarted.kill()
            restarted.wait(timeout=10)
    assert load_state(state, max_bytes=2**26) is not None  # whole


# --- the format: each kind under its name (version 3), versions 1 and 2 still read --------------


def legacy_sections() -> SavedState:
    """A state with an entry in each section versions 1 and 2 had (refresh and import), imports
    with and without details."""
    histogram = HistogramState(REFRESH_DURATION_BUCKETS)
    histogram.observe(42.0)
    failed = ImportJob("4487", "books", "Failed", 0.3, "row count mismatch")
    details = ImportJobDetails(
        "4487", "Failed", 7, 100, 4096, T0 - 600, None, "books", 0.3, "row count mismatch"
    )
    return SavedState(
        kinds={
            "refresh": KindMemory(
                history=[
                    (
                        ("prod", "default", "ext_books"),
                        CollectionHistory(T0, T0 + 5, T0 + 9, "7", "boom"),
                    ),
                    (("prod", "default", "ext_films"), CollectionHistory(None, None, T0 + 9)),
                ],
                seen={("prod", "default"): {"7", "8"}},
                durations={("prod", "default", "RefreshFailed"): histogram},
            ),
            "import": KindMemory(
                newest_finished=[
                    (
                        ("prod", "default", "books"),
                        RememberedJob(failed, details, (T0 - 600, "k"), T0),
                    ),
                    (
                        ("prod", "default", "songs"),
                        RememberedJob(
                            ImportJob("job-a1", "songs", "Completed", 1.0), None, (T0, "job-a1"), T0
                        ),
                    ),
                ],
                seen={("prod", "default"): {"4487", "job-a1"}},
                durations={
                    ("prod", "default", "Completed"): HistogramState(REFRESH_DURATION_BUCKETS)
                },
            ),
        },
        watched={("prod", "default", "refresh"), ("prod", "default", "import")},
        removed=[RemovedTarget(("staging", "default", "refresh"), "config", T0 + 1)],
        gone=[(("prod", "default", "ext_old"), T0 + 2)],
    )


RESTORE_FAILED = RestoreJob(
    449, "films", "RestoreSnapshotFailed", 0.4, T0 - 300, 12.5, "segment copy failed", snapshot="s1"
)


def every_section() -> SavedState:
    """``legacy_sections()`` and a kind that came later: a failed restore remembered."""
    state = legacy_sections()
    state.kinds["restore"] = KindMemory(
        newest_finished=[
            (
                ("prod", "default", "films"),
                RememberedJob(RESTORE_FAILED, None, (T0 - 300, f"{449:020d}"), T0),
            )
        ],
        seen={("prod", "default"): {"449"}},
    )
    state.watched.add(("prod", "default", "restore"))
    return state


def version_1_document() -> dict:
    """``legacy_sections()`` as version 1 wrote it: positional lists."""
    buckets = [0] * len(REFRESH_DURATION_BUCKETS)
    failed_buckets = list(buckets)
    failed_buckets[REFRESH_DURATION_BUCKETS.index(60.0)] = 1
    return {
        "version": 1,
        "written_at": T0,
        "collections": [
            ["prod", "default", "ext_books", T0, T0 + 5, T0 + 9, "7", "boom"],
            ["prod", "default", "ext_films", None, None, T0 + 9, "", ""],
        ],
        "imports": [
            {
                "key": ["prod", "default", "books"],
                "last_listed": T0,
                "order": [T0 - 600, "k"],
                "job": ["4487", "books", "Failed", 0.3, "row count mismatch"],
                "details": ["Failed", 7, 100, 4096, T0 - 600, None, 0.3, "row count mismatch"],
            },
            {
                "key": ["prod", "default", "songs"],
                "last_listed": T0,
                "order": [T0, "job-a1"],
                "job": ["job-a1", "songs", "Completed", 1.0, ""],
                "details": None,
            },
        ],
        "refresh_seen": [["prod", "default", [["ext_books", "7"], ["ext_films", "8"]]]],
        "imports_seen": [["prod", "default", ["4487", "job-a1"]]],
        "refresh_durations": [["prod", "default", "RefreshFailed", failed_buckets, 42.0, 1]],
        "import_durations": [["prod", "default", "Completed", buckets, 0.0, 0]],
        "watched": [["prod", "default", "import"], ["prod", "default", "refresh"]],
        "removed": [["staging", "default", "refresh", "config", T0 + 1]],
        "gone": [["prod", "default", "ext_old", T0 + 2]],
    }


def version_2_document() -> dict:
    """``legacy_sections()`` as version 2 wrote it: every entry keyed, the refresh and import
    memories in sections of their own."""
    failed_buckets = [0] * len(REFRESH_DURATION_BUCKETS)
    failed_buckets[REFRESH_DURATION_BUCKETS.index(60.0)] = 1
    database = {"cluster": "prod", "database": "default"}
    return {
        "version": 2,
        "written_at": T0,
        "collections": [
            {**database, "collection": "ext_books", "last_success": T0, "last_failure": T0 + 5,
             "last_listed": T0 + 9, "failure_job_id": "7", "failure_reason": "boom"},
            {**database, "collection": "ext_films", "last_success": None, "last_failure": None,
             "last_listed": T0 + 9, "failure_job_id": "", "failure_reason": ""},
        ],
        "imports": [
            {**database, "collection": "books", "last_listed": T0,
             "order": {"time": T0 - 600, "id": "k"},
             "job": {"job_id": "4487", "collection": "books", "state": "Failed",
                     "progress_ratio": 0.3, "reason": "row count mismatch"},
             "details": {"state": "Failed", "imported_rows": 7, "total_rows": 100,
                         "file_size_bytes": 4096, "create_time": T0 - 600, "complete_time": None,
                         "progress_ratio": 0.3, "reason": "row count mismatch"}},
            {**database, "collection": "songs", "last_listed": T0,
             "order": {"time": T0, "id": "job-a1"},
             "job": {"job_id": "job-a1", "collection": "songs", "state": "Completed",
                     "progress_ratio": 1.0, "reason": ""},
             "details": None},
        ],
        "refresh_seen": [
            {**database, "collections": [{"collection": "ext_books", "job_ids": ["7"]},
                                         {"collection": "ext_films", "job_ids": ["8"]}]}
        ],
        "imports_seen": [{**database, "job_ids": ["4487", "job-a1"]}],
        "refresh_durations": [
            {**database, "state": "RefreshFailed", "buckets": failed_buckets, "sum": 42.0,
             "count": 1}
        ],
        "import_durations": [
            {**database, "state": "Completed", "buckets": [0] * len(REFRESH_DURATION_BUCKETS),
             "sum": 0.0, "count": 0}
        ],
        "watched": [{**database, "kind": "import"}, {**database, "kind": "refresh"}],
        "removed": [{"cluster": "staging", "database": "default", "kind": "refresh",
                     "cause": "config", "at": T0 + 1}],
        "gone": [{**database, "collection": "ext_old", "at": T0 + 2}],
    }  # fmt: skip


def loaded_from(tmp_path, document: dict) -> SavedState:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    loaded = load_state(path, now=T0)
    assert loaded is not None
    return loaded


def test_every_section_reads_back_as_it_was_saved(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, every_section(), T0)
    loaded = load_state(path, now=T0)
    assert loaded == every_section()
    assert loaded is not None and loaded.dropped == {}


def test_each_kind_is_kept_under_its_name_and_every_entry_is_keyed_by_field_name(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, every_section(), T0)
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert set(document["kinds"]) == {"refresh", "import", "restore"}
    assert set(document["kinds"]["refresh"]) == {"history", "seen", "durations"}
    assert set(document["kinds"]["restore"]) == {"newest_finished", "seen", "durations"}
    sections = [
        *(entries for kind in document["kinds"].values() for entries in kind.values()),
        document["watched"],
        document["removed"],
        document["gone"],
    ]
    for entries in sections:
        assert all(isinstance(entry, dict) for entry in entries), entries
    (restore,) = document["kinds"]["restore"]["newest_finished"]
    assert restore["job"]["job_id"] == "449" and restore["job"]["time_cost"] == 12.5


@pytest.mark.parametrize(
    "document",
    [pytest.param(version_1_document, id="v1"), pytest.param(version_2_document, id="v2")],
)
def test_a_file_of_an_older_version_loads_every_section_and_saves_as_version_3(tmp_path, document):
    loaded = loaded_from(tmp_path, document())
    assert loaded == legacy_sections()
    assert loaded.dropped == {}
    path = tmp_path / "state.json"
    save_state(path, loaded, T0)
    assert json.loads(path.read_text())["version"] == 3
    assert load_state(path, now=T0) == legacy_sections()


def with_added_field(value):
    """Every object of a saved document, at any depth, with a field this exporter never wrote."""
    if isinstance(value, dict):
        return {**{key: with_added_field(item) for key, item in value.items()}, "added_later": 1}
    if isinstance(value, list):
        return [with_added_field(item) for item in value]
    return value


def test_an_entry_with_a_field_this_exporter_does_not_know_still_loads(tmp_path):
    """A positional entry with one field more failed to unpack and was dropped: a newer
    exporter that added a field cost the older one every entry on a downgrade."""
    path = tmp_path / "state.json"
    save_state(path, every_section(), T0)
    document = json.loads(path.read_text())
    document["kinds"] = {
        name: with_added_field(sections) for name, sections in document["kinds"].items()
    }
    for section in ("watched", "removed", "gone"):
        document[section] = with_added_field(document[section])
    loaded = loaded_from(tmp_path, document)
    assert loaded == every_section()
    assert loaded.dropped == {}


def test_the_memory_of_a_kind_this_exporter_does_not_declare_is_written_back_unchanged(tmp_path):
    """A newer exporter's kind survives a downgrade and the upgrade after it."""
    path = tmp_path / "state.json"
    save_state(path, every_section(), T0)
    document = json.loads(path.read_text())
    later = {"newest_finished": [{"cluster": "prod", "anything": [1, 2]}], "seen": []}
    document["kinds"]["export"] = later
    loaded = loaded_from(tmp_path, document)
    assert loaded.unknown_kinds == {"export": later}
    save_state(path, loaded, T0)
    assert json.loads(path.read_text())["kinds"]["export"] == later


@pytest.mark.parametrize(
    ("where", "field", "counted"),
    [
        pytest.param(("refresh", "history"), "last_listed", "kinds.refresh.history", id="history"),
        pytest.param(("refresh", "history"), "collection", "kinds.refresh.history", id="name"),
        pytest.param(
            ("import", "newest_finished"), "job", "kinds.import.newest_finished", id="import-job"
        ),
        pytest.param(
            ("restore", "newest_finished"), "order", "kinds.restore.newest_finished", id="restore"
        ),
        pytest.param(("import", "seen"), "job_ids", "kinds.import.seen", id="seen"),
        pytest.param(("refresh", "durations"), "buckets", "kinds.refresh.durations", id="buckets"),
        pytest.param(("watched",), "kind", "watched", id="watched-kind"),
        pytest.param(("removed",), "at", "removed", id="removal-time"),
        pytest.param(("gone",), "cluster", "gone", id="gone-cluster"),
    ],
)
def test_an_entry_missing_a_required_field_is_dropped_alone_and_counted(
    tmp_path, where, field, counted
):
    path = tmp_path / "state.json"
    save_state(path, every_section(), T0)
    document = json.loads(path.read_text())
    section = document
    for name in where[:-1]:
        section = section["kinds"][name]
    entries = section[where[-1]]
    damaged = {key: value for key, value in entries[0].items() if key != field}
    section[where[-1]] = [damaged, *entries]
    loaded = loaded_from(tmp_path, document)
    assert loaded == every_section()
    assert loaded.dropped == {counted: 1}


@pytest.mark.parametrize(
    ("section", "field"),
    [
        pytest.param("collections", "last_listed", id="collection-listed"),
        pytest.param("imports", "job", id="import-job"),
        pytest.param("refresh_seen", "collections", id="seen-jobs"),
        pytest.param("imports_seen", "job_ids", id="seen-imports"),
        pytest.param("refresh_durations", "buckets", id="histogram-buckets"),
    ],
)
def test_a_version_2_entry_missing_a_required_field_is_dropped_alone_and_counted(
    tmp_path, section, field
):
    document = version_2_document()
    damaged = {key: value for key, value in document[section][0].items() if key != field}
    document[section] = [damaged, *document[section]]
    loaded = loaded_from(tmp_path, document)
    assert loaded == legacy_sections()
    assert loaded.dropped == {section: 1}


def test_optional_fields_of_a_version_2_entry_may_be_left_out(tmp_path):
    document = {
        "version": 2,
        "collections": [
            {"cluster": "prod", "database": "default", "collection": "c", "last_listed": T0}
        ],
        "imports": [
            {
                "cluster": "prod",
                "database": "default",
                "collection": "songs",
                "last_listed": T0,
                "order": {"time": T0, "id": "job-a1"},
                "job": {
                    "job_id": "job-a1",
                    "collection": "songs",
                    "state": "Completed",
                    "progress_ratio": 1.0,
                },
            }
        ],
    }
    loaded = loaded_from(tmp_path, document)
    assert loaded.of("refresh").history == [
        (("prod", "default", "c"), CollectionHistory(None, None, T0))
    ]
    ((key, remembered),) = loaded.of("import").newest_finished
    assert key == ("prod", "default", "songs") and remembered.details is None
    assert remembered.job == ImportJob("job-a1", "songs", "Completed", 1.0)
    assert loaded.dropped == {}
