"""The export rules: which series exist, with which values, across cycles."""

from __future__ import annotations

from dataclasses import replace

from exporter.metrics.model import MetricsModel
from exporter.polling.targets import Target

from .helpers import (
    CLUSTER,
    IMPORT,
    REFRESH,
    T0,
    cycle,
    failed,
    import_job,
    ok,
    refresh_job,
    samples,
    series,
    value,
)

JOB = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books"}
BIG_ID = 449503829274509311  # above 2**53: a float would turn it into ...300


def model(max_tracked_jobs: int = 1000, poll_interval: float = 30.0) -> MetricsModel:
    return MetricsModel(max_tracked_jobs=max_tracked_jobs, poll_interval=poll_interval)


def test_running_refresh_exports_progress_state_start_and_running_duration():
    running = refresh_job(BIG_ID, "RefreshInProgress", progress=0.42, start=T0)
    parsed = samples(model().update(cycle(ok(REFRESH, T0 + 90, (running,))), T0 + 90))
    labels = {**JOB, "job_id": str(BIG_ID)}
    assert value(parsed, "milvus_refresh_job_progress_ratio", **labels) == 0.42
    assert value(parsed, "milvus_refresh_job_start_timestamp_seconds", **labels) == T0
    assert value(parsed, "milvus_refresh_job_duration_seconds", **labels) == 90.0
    assert value(parsed, "milvus_refresh_job_end_timestamp_seconds", **labels) is None
    states = {
        s["state"]: value(parsed, "milvus_refresh_job_state", **s)
        for s in series(parsed, "milvus_refresh_job_state")
    }
    assert states == {
        "RefreshPending": 0,
        "RefreshInProgress": 1,
        "RefreshCompleted": 0,
        "RefreshFailed": 0,
    }


def test_failed_refresh_carries_its_reason_and_sets_last_failure_time():
    failed_job = refresh_job(
        7,
        "RefreshFailed",
        progress=0.3,
        start=T0,
        end=T0 + 60,
        reason="iceberg snapshot 12 not found",
    )
    parsed = samples(model().update(cycle(ok(REFRESH, T0 + 100, (failed_job,))), T0 + 100))
    assert (
        value(
            parsed,
            "milvus_refresh_job_failure_info",
            **JOB,
            job_id="7",
            reason="iceberg snapshot 12 not found",
        )
        == 1
    )
    assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **JOB) == T0 + 60
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) is None
    assert value(parsed, "milvus_refresh_job_duration_seconds", **JOB, job_id="7") == 60.0


def test_job_counts_list_every_documented_state_including_zero():
    jobs = (
        refresh_job(3, "RefreshInProgress"),
        refresh_job(2, "RefreshCompleted", start=T0 - 100, end=T0 - 50),
        refresh_job(1, "RefreshCompleted", start=T0 - 300, end=T0 - 200),
    )
    parsed = samples(model().update(cycle(ok(REFRESH, T0, jobs)), T0))
    counts = {
        s["state"]: value(parsed, "milvus_refresh_jobs", **s)
        for s in series(parsed, "milvus_refresh_jobs")
    }
    assert counts == {
        "RefreshPending": 0,
        "RefreshInProgress": 1,
        "RefreshCompleted": 2,
        "RefreshFailed": 0,
    }
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) == T0 - 50


def test_only_unfinished_jobs_and_the_newest_finished_job_get_per_job_series():
    jobs = (
        refresh_job(4, "RefreshPending", start=None),
        refresh_job(3, "RefreshInProgress", start=T0 - 10),
        refresh_job(2, "RefreshFailed", start=T0 - 100, end=T0 - 50, reason="boom"),
        refresh_job(1, "RefreshCompleted", start=T0 - 300, end=T0 - 200),
    )
    parsed = samples(model().update(cycle(ok(REFRESH, T0, jobs)), T0))
    tracked = {s["job_id"] for s in series(parsed, "milvus_refresh_job_progress_ratio")}
    assert tracked == {"4", "3", "2"}


def test_same_job_id_in_two_collections_is_two_jobs_and_a_repeated_record_is_one():
    books = refresh_job(BIG_ID, "RefreshCompleted", collection="ext_books", start=T0 - 60, end=T0)
    movies = refresh_job(BIG_ID, "RefreshInProgress", collection="ext_movies", progress=0.42)
    parsed = samples(model().update(cycle(ok(REFRESH, T0, (books, movies, movies))), T0))
    progress = series(parsed, "milvus_refresh_job_progress_ratio")
    assert sorted(s["collection"] for s in progress) == ["ext_books", "ext_movies"]
    assert (
        value(
            parsed,
            "milvus_refresh_jobs",
            **{**JOB, "collection": "ext_movies"},
            state="RefreshInProgress",
        )
        == 1
    )


def test_unknown_state_is_kept_as_sent_and_counted():
    paused = refresh_job(9, "RefreshPaused")
    parsed = samples(model().update(cycle(ok(REFRESH, T0, (paused,))), T0))
    assert value(parsed, "milvus_refresh_job_state", **JOB, job_id="9", state="RefreshPaused") == 1
    assert value(parsed, "milvus_refresh_jobs", **JOB, state="RefreshPaused") == 1
    labels = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
    assert value(parsed, "milvus_jobs_exporter_unknown_state_jobs", **labels) == 1


def test_duration_histogram_observes_jobs_seen_finishing_but_not_those_finished_at_start():
    subject = model()
    old = refresh_job(1, "RefreshCompleted", start=T0 - 1000, end=T0 - 900)
    running = refresh_job(2, "RefreshInProgress", collection="ext_movies", start=T0 - 30)
    subject.update(cycle(ok(REFRESH, T0, (running, old))), T0)
    done = refresh_job(2, "RefreshCompleted", collection="ext_movies", start=T0 - 30, end=T0 + 40)
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 30, (done, old))), T0 + 30))
    labels = {"milvus_cluster": "prod", "database": "default", "state": "RefreshCompleted"}
    assert value(parsed, "milvus_refresh_duration_seconds_count", **labels) == 1
    assert value(parsed, "milvus_refresh_duration_seconds_sum", **labels) == 70
    assert value(parsed, "milvus_refresh_duration_seconds_bucket", **labels, le="120.0") == 1
    assert value(parsed, "milvus_refresh_duration_seconds_bucket", **labels, le="60.0") == 0
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 60, (done, old))), T0 + 60))
    assert value(parsed, "milvus_refresh_duration_seconds_count", **labels) == 1


def test_failed_target_goes_down_at_once_and_keeps_its_last_known_series_for_the_whole_outage():
    subject = model(poll_interval=30)
    running = refresh_job(5, "RefreshInProgress", progress=0.2)
    subject.update(cycle(ok(REFRESH, T0, (running,))), T0)
    up_labels = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}

    parsed = samples(subject.update(cycle(failed(REFRESH, T0 + 30, "http_503")), T0 + 30))
    assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels) == 0
    assert (
        value(parsed, "milvus_jobs_exporter_target_error_info", **up_labels, reason="http_503") == 1
    )
    assert (
        value(parsed, "milvus_jobs_exporter_poll_errors_total", **up_labels, reason="http_503") == 1
    )
    assert value(parsed, "milvus_refresh_job_progress_ratio", **JOB, job_id="5") == 0.2
    assert value(parsed, "milvus_jobs_exporter_last_success_timestamp_seconds", **up_labels) == T0

    parsed = samples(subject.update(cycle(failed(REFRESH, T0 + 90, "http_503")), T0 + 90))
    assert value(parsed, "milvus_refresh_job_progress_ratio", **JOB, job_id="5") == 0.2
    # hours later, still down: an outage resolves no job alert, it pages as an outage
    parsed = samples(subject.update(cycle(failed(REFRESH, T0 + 7200, "http_503")), T0 + 7200))
    assert value(parsed, "milvus_refresh_job_progress_ratio", **JOB, job_id="5") == 0.2
    assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels) == 0
    assert series(parsed, "milvus_refresh_jobs") != []
    assert (
        value(parsed, "milvus_jobs_exporter_poll_errors_total", **up_labels, reason="http_503") == 3
    )


def test_recovered_target_is_up_and_drops_its_error_info():
    subject = model()
    subject.update(cycle(failed(REFRESH, T0, "connect")), T0)
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 30, ())), T0 + 30))
    up_labels = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels) == 1
    assert series(parsed, "milvus_jobs_exporter_target_error_info") == []


def test_count_series_follow_max_tracked_collections_with_active_collections_first():
    jobs = (
        refresh_job(1, "RefreshCompleted", collection="a_quiet", start=T0, end=T0 + 1),
        refresh_job(2, "RefreshFailed", collection="b_failed", start=T0, end=T0 + 1),
        refresh_job(3, "RefreshInProgress", collection="c_running", start=T0),
    )
    subject = MetricsModel(1000, 30.0, max_tracked_collections=2)
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 100, jobs)), T0 + 100))
    shown = {labels["collection"] for labels in series(parsed, "milvus_refresh_jobs")}
    assert shown == {"b_failed", "c_running"}
    assert value(parsed, "milvus_jobs_exporter_untracked_collections") == 1


def test_listed_jobs_left_out_are_counted_per_target_and_limit():
    kept = replace(
        ok(REFRESH, T0, (refresh_job(1, "RefreshInProgress"),)),
        collection_counts={"ext_books": {"RefreshInProgress": 7}},
        unkept={"max_listed_jobs": 6, "max_listed_collections": 40},
    )
    parsed = samples(model().update(cycle(kept), T0))
    target = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
    unkept = "milvus_jobs_exporter_unkept_jobs"
    assert value(parsed, unkept, **target, limit="max_listed_jobs") == 6
    assert value(parsed, unkept, **target, limit="max_listed_collections") == 40
    assert value(parsed, "milvus_refresh_jobs", **JOB, state="RefreshInProgress") == 7
    never_polled = {"milvus_cluster": "prod", "database": "default", "kind": "import"}
    assert value(parsed, unkept, **never_polled, limit="max_listed_jobs") is None


def test_cardinality_guard_leaves_out_the_oldest_finished_jobs_first():
    finished = [
        refresh_job(100 + i, "RefreshCompleted", collection=f"c{i}", start=T0 + i, end=T0 + i + 1)
        for i in range(5)
    ]
    jobs = (
        *finished,
        refresh_job(1, "RefreshInProgress", collection="c_running", start=T0 - 10_000),
    )
    parsed = samples(model(max_tracked_jobs=3).update(cycle(ok(REFRESH, T0 + 100, jobs)), T0 + 100))
    tracked = {s["job_id"] for s in series(parsed, "milvus_refresh_job_progress_ratio")}
    assert tracked == {"1", "104", "103"}
    assert value(parsed, "milvus_jobs_exporter_untracked_jobs") == 3
    assert (
        value(
            parsed,
            "milvus_refresh_jobs",
            milvus_cluster="prod",
            database="default",
            collection="c0",
            state="RefreshCompleted",
        )
        == 1
    )


def test_series_of_a_removed_target_vanish():
    subject = model()
    subject.update(cycle(ok(REFRESH, T0, (refresh_job(5, "RefreshInProgress"),))), T0)
    other = Target(CLUSTER, "analytics", "refresh")
    parsed = samples(subject.update(cycle(ok(other, T0 + 30, ()), targets=(other,)), T0 + 30))
    assert series(parsed, "milvus_refresh_job_progress_ratio") == []
    assert {s["database"] for s in series(parsed, "milvus_jobs_exporter_target_up")} == {
        "analytics"
    }


def test_import_states_beyond_the_documented_four_appear_only_while_current():
    jobs = (
        import_job("448761313698322013", "Uncommitted"),
        import_job("448761313698322012", "Completed", progress=1.0),
        import_job("448761313698322011", "Completed", progress=1.0),
        import_job("448761313698322010", "Failed", reason="file not found"),
    )
    parsed = samples(model().update(cycle(ok(IMPORT, T0, imports=jobs)), T0))
    labels = {"milvus_cluster": "prod", "database": "default", "collection": "books"}
    states = {
        s["state"]
        for s in series(parsed, "milvus_import_job_state")
        if s["job_id"] == "448761313698322013"
    }
    assert states == {"Pending", "Importing", "Completed", "Failed", "Uncommitted"}
    assert (
        value(
            parsed,
            "milvus_import_job_state",
            **labels,
            job_id="448761313698322013",
            state="Uncommitted",
        )
        == 1
    )
    tracked = {s["job_id"] for s in series(parsed, "milvus_import_job_progress_ratio")}
    assert tracked == {"448761313698322013", "448761313698322012"}
    assert value(parsed, "milvus_import_jobs", **labels, state="Completed") == 2
    assert value(parsed, "milvus_import_jobs", **labels, state="Failed") == 1
    assert value(parsed, "milvus_import_jobs", **labels, state="Uncommitted") == 1


def test_newest_failed_import_carries_its_reason():
    jobs = (import_job("20", "Failed", reason="row count mismatch"), import_job("10", "Completed"))
    parsed = samples(model().update(cycle(ok(IMPORT, T0, imports=jobs)), T0))
    labels = {"milvus_cluster": "prod", "database": "default", "collection": "books"}
    assert (
        value(
            parsed,
            "milvus_import_job_failure_info",
            **labels,
            job_id="20",
            reason="row count mismatch",
        )
        == 1
    )


def test_last_success_time_is_remembered_after_the_server_drops_the_job_from_its_list():
    subject = model()
    done = refresh_job(1, "RefreshCompleted", start=T0 - 100, end=T0 - 50)
    subject.update(cycle(ok(REFRESH, T0, (done,))), T0)
    later_failure = refresh_job(2, "RefreshFailed", start=T0 + 10, end=T0 + 20, reason="boom")
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 30, (later_failure,))), T0 + 30))
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) == T0 - 50
    assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **JOB) == T0 + 20


def _details(job_id: str, state: str, created: float, completed: float | None, rows: int = 50):
    from exporter.upstream.records import ImportJobDetails

    return ImportJobDetails(job_id, state, rows, 100, 4096, created, completed)


def test_import_details_add_rows_bytes_times_and_a_duration_observed_once_at_finish():
    subject = model()
    running = import_job("30", "Importing", progress=0.5)
    first = cycle(ok(IMPORT, T0, imports=(running,)))
    subject.update(first, T0)
    with_details = cycle(ok(IMPORT, T0 + 30, imports=(running,)))
    with_details = replace(
        with_details, follow_ups=((IMPORT.key, _details("30", "Importing", T0 - 60, None)),)
    )
    parsed = samples(subject.update(with_details, T0 + 30))
    labels = {
        "milvus_cluster": "prod",
        "database": "default",
        "collection": "books",
        "job_id": "30",
    }
    assert value(parsed, "milvus_import_job_imported_rows", **labels) == 50
    assert value(parsed, "milvus_import_job_total_rows", **labels) == 100
    assert value(parsed, "milvus_import_job_file_size_bytes", **labels) == 4096
    assert value(parsed, "milvus_import_job_create_timestamp_seconds", **labels) == T0 - 60
    assert value(parsed, "milvus_import_job_complete_timestamp_seconds", **labels) is None
    assert value(parsed, "milvus_import_job_duration_seconds", **labels) == 90

    done = import_job("30", "Completed", progress=1.0)
    finished = cycle(ok(IMPORT, T0 + 60, imports=(done,)))
    finished = replace(
        finished,
        follow_ups=((IMPORT.key, _details("30", "Completed", T0 - 60, T0 + 45, rows=100)),),
    )
    parsed = samples(subject.update(finished, T0 + 60))
    histogram = {"milvus_cluster": "prod", "database": "default", "state": "Completed"}
    assert value(parsed, "milvus_import_job_duration_seconds", **labels) == 105
    assert value(parsed, "milvus_import_duration_seconds_count", **histogram) == 1
    parsed = samples(subject.update(finished, T0 + 90))
    assert value(parsed, "milvus_import_duration_seconds_count", **histogram) == 1


def test_imports_already_finished_at_the_first_poll_are_not_observed():
    subject = model()
    done = import_job("7", "Completed", progress=1.0)
    first = cycle(ok(IMPORT, T0, imports=(done,)))
    first = replace(
        first, follow_ups=((IMPORT.key, _details("7", "Completed", T0 - 600, T0 - 60)),)
    )
    parsed = samples(subject.update(first, T0))
    assert series(parsed, "milvus_import_duration_seconds_count") == []
    labels = {"milvus_cluster": "prod", "database": "default", "collection": "books", "job_id": "7"}
    assert value(parsed, "milvus_import_job_duration_seconds", **labels) == 540


def test_a_collection_not_listed_for_the_retention_is_forgotten_and_counted():
    subject = MetricsModel(1000, 30.0, collection_retention=3600.0)
    done = refresh_job(1, "RefreshCompleted", start=T0 - 100, end=T0 - 50)
    subject.update(cycle(ok(REFRESH, T0, (done,))), T0)
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 3000)), T0 + 3000))
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) == T0 - 50
    parsed = samples(subject.update(cycle(ok(REFRESH, T0 + 3700)), T0 + 3700))
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds", **JOB) is None
    assert value(parsed, "milvus_jobs_exporter_tracked_collections") == 0
    assert (
        value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="retention") == 1
    )


def test_beyond_the_collection_limit_the_least_recently_listed_are_forgotten_first():
    subject = MetricsModel(1000, 30.0, max_tracked_collections=2)
    for index, collection in enumerate(("old", "middle", "new")):
        job = refresh_job(index + 1, "RefreshCompleted", collection, start=T0, end=T0 + 1)
        parsed = samples(subject.update(cycle(ok(REFRESH, T0 + index, (job,))), T0 + index))
    remembered = {
        found["collection"]
        for found in series(parsed, "milvus_refresh_last_success_timestamp_seconds")
    }
    assert remembered == {"middle", "new"}
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="limit") == 1
    assert value(parsed, "milvus_jobs_exporter_tracked_collections") == 2


def test_skipped_records_are_counted_per_target_and_reason():
    subject = model()
    snapshot = replace(ok(REFRESH, T0), skipped_records=(("bad_time", 2, "startTime ..."),))
    subject.update(cycle(snapshot), T0)
    parsed = samples(subject.update(cycle(snapshot), T0 + 30))
    labels = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
    assert (
        value(parsed, "milvus_jobs_exporter_skipped_records_total", **labels, reason="bad_time")
        == 4
    )
    assert value(parsed, "milvus_jobs_exporter_target_up", **labels) == 1


def test_a_newer_failed_import_is_not_hidden_by_an_older_one_whose_id_sorts_higher():
    from exporter.upstream.records import ImportJobDetails

    subject = model()
    older_done = import_job("job-zzz", "Completed")
    newer_failed = import_job("job-aaa", "Failed", reason="schema mismatch")
    subject.update(cycle(ok(IMPORT, T0, imports=(older_done,))), T0)
    for job_id, created in (("job-zzz", T0 - 600), ("job-aaa", T0 - 60)):
        details = ImportJobDetails(job_id, "Completed", 1, 1, 1, created, None)
        subject.update(
            replace(
                cycle(ok(IMPORT, T0 + 30, imports=(older_done, newer_failed))),
                follow_ups=((IMPORT.key, details),),
            ),
            T0 + 30,
        )
    parsed = samples(
        subject.update(cycle(ok(IMPORT, T0 + 60, imports=(older_done, newer_failed))), T0 + 60)
    )
    failures = series(parsed, "milvus_import_job_failure_info")
    assert [(found["job_id"], found["reason"]) for found in failures] == [
        ("job-aaa", "schema mismatch")
    ]


def test_without_create_times_imports_are_ordered_by_when_they_were_first_seen():
    subject = model()
    older_done = import_job("job-zzz", "Completed")
    subject.update(cycle(ok(IMPORT, T0, imports=(older_done,))), T0)
    newer_failed = import_job("job-aaa", "Failed", reason="bad file")
    parsed = samples(
        subject.update(cycle(ok(IMPORT, T0 + 30, imports=(older_done, newer_failed))), T0 + 30)
    )
    assert [found["job_id"] for found in series(parsed, "milvus_import_job_failure_info")] == [
        "job-aaa"
    ]
