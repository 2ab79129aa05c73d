"""Forgetting a collection only on evidence: ``collections/list`` says it is gone.

The rules, on the model: a collection missing from a successful list loses every series and its
memory (counted ``dropped``) unless the exporter learnt of it after the list was sent; a
collection still listed keeps a failure the server has forgotten for as long as it is listed;
a list that failed is no evidence at all; a database that is not found takes all its
collections with it; and what was confirmed gone stays gone across a restart.
"""

from __future__ import annotations

import json

from exporter.memory.state import load_state, save_state
from exporter.metrics.model import MetricsModel
from exporter.polling.snapshots import CollectionsListing, CycleResult, Snapshot

from .helpers import (
    IMPORT,
    REFRESH,
    T0,
    failed,
    import_job,
    ok,
    refresh_job,
    samples,
    series,
    value,
)

BOOKS = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books"}
PLAIN = {"milvus_cluster": "prod", "database": "default", "collection": "books"}
UP = {"milvus_cluster": "prod", "database": "default", "kind": "refresh"}
FAILED_REFRESH = refresh_job(7, "RefreshFailed", start=T0 - 120, end=T0 - 60, reason="gone?")
FAILED_IMPORT = import_job("42", "Failed", progress=0.0, reason="row count mismatch")
OTHER = refresh_job(9, "RefreshCompleted", collection="ext_movies", start=T0 - 90, end=T0 - 80)


def model(**limits: float) -> MetricsModel:
    return MetricsModel(1000, 30.0, **limits)  # type: ignore[arg-type]


def listing(at: float, *names: str, gone: bool = False, reason: str = "") -> CollectionsListing:
    return CollectionsListing(
        "prod", "default", at, ok=not reason, names=frozenset(names), database_gone=gone,
        reason=reason,
    )  # fmt: skip


def cycle(*snapshots: Snapshot, lists: tuple[CollectionsListing, ...] = ()) -> CycleResult:
    return CycleResult(
        targets=(REFRESH, IMPORT), snapshots=snapshots, requests=(), started_at=T0, seconds=0.1,
        collection_lists=lists,
    )  # fmt: skip


def both(at: float, *refreshes: object, imports: tuple[object, ...] = ()) -> tuple[Snapshot, ...]:
    return (ok(REFRESH, at, refreshes), ok(IMPORT, at, imports=imports))  # type: ignore[arg-type]


def failure_series(parsed: dict) -> dict[str, list[dict[str, str]]]:
    """Every series of the ext_books / books collections that a job alert could read."""
    names = (
        "milvus_refresh_job_state",
        "milvus_refresh_job_failure_info",
        "milvus_refresh_jobs",
        "milvus_refresh_last_failure_timestamp_seconds",
        "milvus_refresh_last_failure_info",
        "milvus_import_job_state",
        "milvus_import_job_failure_info",
        "milvus_import_jobs",
    )
    return {
        name: [s for s in series(parsed, name) if s["collection"] in ("ext_books", "books")]
        for name in names
    }


def dropped_count(parsed: dict) -> float | None:
    return value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="dropped")


def test_a_collection_missing_from_the_list_loses_every_series_while_its_target_stays_up():
    subject = model()
    parsed = samples(
        subject.update(cycle(*both(T0, FAILED_REFRESH, OTHER, imports=(FAILED_IMPORT,))), T0)
    )
    assert all(failure_series(parsed).values())
    assert dropped_count(parsed) == 0

    lists = (listing(T0 + 10, "ext_movies"),)
    at = T0 + 30  # the server still lists the jobs of the dropped collections
    parsed = samples(
        subject.update(
            cycle(*both(at, FAILED_REFRESH, OTHER, imports=(FAILED_IMPORT,)), lists=lists), at
        )
    )
    assert not any(failure_series(parsed).values()), failure_series(parsed)
    assert value(parsed, "milvus_jobs_exporter_target_up", **UP) == 1
    assert value(parsed, "milvus_refresh_last_success_timestamp_seconds",
                 **{**BOOKS, "collection": "ext_movies"}) == T0 - 80  # fmt: skip
    assert dropped_count(parsed) == 2  # the refresh history and the import memory, one each

    at = T0 + 60
    parsed = samples(
        subject.update(cycle(*both(at, FAILED_REFRESH, OTHER, imports=(FAILED_IMPORT,))), at)
    )
    assert not any(failure_series(parsed).values())
    assert dropped_count(parsed) == 2


def test_a_collection_created_after_the_list_was_sent_is_kept():
    subject = model()
    subject.update(cycle(*both(T0, OTHER)), T0)
    # the server's clock runs behind: the new job claims to have started before the list
    new = refresh_job(8, "RefreshFailed", start=T0 + 5, end=T0 + 6, reason="bad")
    lists = (listing(T0 + 10, "ext_movies"),)  # sent at T0 + 10, before the job was first seen
    parsed = samples(subject.update(cycle(*both(T0 + 20, new, OTHER), lists=lists), T0 + 20))
    assert value(parsed, "milvus_refresh_job_failure_info", **BOOKS, job_id="8", reason="bad") == 1
    assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **BOOKS) == T0 + 6
    assert dropped_count(parsed) == 0


def test_a_failure_the_server_forgot_stays_while_its_collection_is_listed():
    subject = model(collection_retention=100.0)
    subject.update(cycle(*both(T0, FAILED_REFRESH, imports=(FAILED_IMPORT,))), T0)
    for minutes in range(1, 11):  # the server forgot both jobs; the collections stay listed
        at = T0 + 60 * minutes
        lists = (listing(at - 5, "ext_books", "books"),)
        parsed = samples(subject.update(cycle(*both(at), lists=lists), at))
    assert value(parsed, "milvus_refresh_last_failure_info", **BOOKS, job_id="7",
                 reason="gone?") == 1  # fmt: skip
    assert value(parsed, "milvus_import_job_failure_info", **PLAIN, job_id="42",
                 reason="row count mismatch") == 1  # fmt: skip
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total",
                 reason="retention") == 0  # fmt: skip


def test_without_a_list_the_retention_still_forgets_what_is_not_listed():
    subject = model(collection_retention=100.0)
    subject.update(cycle(*both(T0, FAILED_REFRESH, imports=(FAILED_IMPORT,))), T0)
    failing = (listing(T0 + 200, reason="http_404"),)
    parsed = samples(subject.update(cycle(*both(T0 + 300), lists=failing), T0 + 300))
    assert not any(failure_series(parsed).values())
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total",
                 reason="retention") == 2  # fmt: skip


def test_a_list_that_failed_is_no_evidence():
    subject = model()
    subject.update(cycle(*both(T0, FAILED_REFRESH, imports=(FAILED_IMPORT,))), T0)
    failing = (listing(T0 + 10, reason="timeout"),)
    parsed = samples(
        subject.update(cycle(*both(T0 + 30, FAILED_REFRESH, imports=(FAILED_IMPORT,)),
                             lists=failing), T0 + 30)
    )  # fmt: skip
    assert all(failure_series(parsed).values())
    assert dropped_count(parsed) == 0
    labels = {"milvus_cluster": "prod", "database": "default"}
    assert value(parsed, "milvus_jobs_exporter_collections_list_up", **labels) == 0
    assert value(parsed, "milvus_jobs_exporter_last_collections_list_success_timestamp_seconds",
                 **labels) is None  # fmt: skip


def test_the_list_status_of_each_database_is_exported():
    subject = model()
    parsed = samples(subject.update(cycle(*both(T0), lists=(listing(T0 - 3, "a"),)), T0))
    labels = {"milvus_cluster": "prod", "database": "default"}
    assert value(parsed, "milvus_jobs_exporter_collections_list_up", **labels) == 1
    assert value(parsed, "milvus_jobs_exporter_last_collections_list_success_timestamp_seconds",
                 **labels) == T0 - 3  # fmt: skip


def test_a_database_not_found_takes_every_collection_with_it():
    subject = model()
    subject.update(cycle(*both(T0, FAILED_REFRESH, OTHER, imports=(FAILED_IMPORT,))), T0)
    lists = (listing(T0 + 10, gone=True),)
    down = (failed(REFRESH, T0 + 30, "api_800"), failed(IMPORT, T0 + 30, "api_800"))
    parsed = samples(subject.update(cycle(*down, lists=lists), T0 + 30))
    assert not any(failure_series(parsed).values())
    assert series(parsed, "milvus_refresh_last_success_timestamp_seconds") == []
    assert value(parsed, "milvus_jobs_exporter_target_up", **UP) == 0
    assert dropped_count(parsed) == 3


def test_a_collection_created_again_comes_back_with_its_new_jobs():
    subject = model()
    subject.update(cycle(*both(T0, FAILED_REFRESH)), T0)
    subject.update(cycle(*both(T0 + 30, FAILED_REFRESH), lists=(listing(T0 + 10),)), T0 + 30)
    again = refresh_job(11, "RefreshFailed", start=T0 + 40, end=T0 + 50, reason="again")
    parsed = samples(subject.update(cycle(*both(T0 + 60, again, FAILED_REFRESH)), T0 + 60))
    assert value(parsed, "milvus_refresh_job_failure_info", **BOOKS, job_id="11",
                 reason="again") == 1  # fmt: skip
    assert value(parsed, "milvus_refresh_last_failure_timestamp_seconds", **BOOKS) == T0 + 50


def test_a_collection_listed_again_is_no_longer_gone():
    subject = model()
    subject.update(cycle(*both(T0, FAILED_REFRESH)), T0)
    subject.update(cycle(*both(T0 + 30, FAILED_REFRESH), lists=(listing(T0 + 10),)), T0 + 30)
    lists = (listing(T0 + 40, "ext_books"),)
    parsed = samples(subject.update(cycle(*both(T0 + 60, FAILED_REFRESH), lists=lists), T0 + 60))
    assert value(parsed, "milvus_refresh_job_failure_info", **BOOKS, job_id="7",
                 reason="gone?") == 1  # fmt: skip


def test_what_was_confirmed_gone_stays_gone_across_a_restart(tmp_path):
    first = model()
    first.update(cycle(*both(T0, FAILED_REFRESH, imports=(FAILED_IMPORT,))), T0)
    first.update(
        cycle(*both(T0 + 30, FAILED_REFRESH, imports=(FAILED_IMPORT,)),
              lists=(listing(T0 + 10),)), T0 + 30,
    )  # fmt: skip
    path = tmp_path / "state.json"
    save_state(path, first.saved_state(), T0 + 40)
    saved = load_state(path)
    assert saved is not None

    second = model()
    second.restore(saved)
    assert not any(failure_series(samples(second.families(T0 + 50))).values())
    parsed = samples(
        second.update(cycle(*both(T0 + 60, FAILED_REFRESH, imports=(FAILED_IMPORT,))), T0 + 60)
    )
    assert not any(failure_series(parsed).values()), failure_series(parsed)


def test_a_state_file_without_gone_collections_still_loads(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(
            {"version": 1, "written_at": T0, "collections": [], "refresh_seen": [],
             "imports_seen": [], "refresh_durations": [], "import_durations": []}
        )
    )  # fmt: skip
    saved = load_state(path)
    assert saved is not None and saved.gone == [] and saved.watched == set()
