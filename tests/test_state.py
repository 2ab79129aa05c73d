"""The state file: what a restart must not forget, written atomically, read forgivingly."""

from __future__ import annotations

import json

import pytest

from exporter.config import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.families import HistogramState
from exporter.history import CollectionHistory
from exporter.model import REFRESH_DURATION_BUCKETS, MetricsModel
from exporter.state import SavedState, StateError, load_state, save_state

from . import hostile
from .conftest import TOKEN_A, value
from .helpers import REFRESH, T0, cycle, ok, refresh_job, samples

JOB = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books"}


def test_a_saved_state_reads_back_as_it_was(tmp_path):
    path = tmp_path / "state.json"
    histogram = HistogramState(REFRESH_DURATION_BUCKETS)
    histogram.observe(42.0)
    saved = SavedState(
        collections=[
            (("prod", "default", "ext_books"), CollectionHistory(T0, T0 + 5, T0 + 9, "7", "boom"))
        ],
        refresh_seen={("prod", "default"): {("ext_books", "7")}},
        imports_seen={("prod", "default"): {"job-abc"}},
        refresh_durations={("prod", "default", "RefreshFailed"): histogram},
    )
    save_state(path, saved, T0)
    loaded = load_state(path, REFRESH_DURATION_BUCKETS)
    assert loaded == saved
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_a_missing_state_file_is_a_first_start(tmp_path):
    assert load_state(tmp_path / "absent.json", REFRESH_DURATION_BUCKETS) is None


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"version": 1, "collections": [', id="truncated"),
        pytest.param(b'{"version": 99}', id="another-version"),
        pytest.param(b'{"version": 1, "collections": [[1, 2]]}', id="wrong-shape"),
        pytest.param(b"\xff\xfe", id="not-text"),
        pytest.param(
            b'{"version": 1, "collections": [["a","b","c",1e999,null,1,"",""]]}', id="inf"
        ),
    ],
)
def test_a_state_file_that_cannot_be_used_is_one_line_and_never_fatal(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        load_state(path, REFRESH_DURATION_BUCKETS)
    assert "\n" not in str(caught.value)
    config = Config(
        clusters=(ClusterConfig("prod", "http://127.0.0.1:1", "t"),), state_file=str(path)
    )
    Daemon(config).poller.close()  # starts without it


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
        assert json.loads(state.read_text())["collections"]

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
