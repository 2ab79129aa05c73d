"""Cost follows change (issue 23): what the last round already read and rendered unchanged is
reused, and everything that changed is read and rendered anew.

The poll path is tested against a real HTTP server on 127.0.0.1 (``hostile.py``) with the real
client; the model with snapshots whose jobs are the very same objects from one cycle to the
next (what the poller gives for unchanged records), next to a model given fresh copies of every
job each cycle (what it got before): both must publish the same bytes every cycle.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import requests

from exporter.exposition.cache import ExpositionCache, render
from exporter.memory.state import load_state, save_state
from exporter.metrics.model import MetricsModel
from exporter.polling.kept import KeepLimits, Kept
from exporter.polling.lists import list_target
from exporter.polling.oddities import OddityLog
from exporter.polling.reuse import ParsedRecords
from exporter.polling.snapshots import CollectionsListing, Snapshot
from exporter.polling.targets import Target
from exporter.upstream.client import MilvusClient
from exporter.upstream.records import ImportJobDetails

from . import hostile
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
    value,
)

LIMITS = KeepLimits(1000, 100)


class Answers:
    """What the server lists right now: a list of refresh records, or pages of imports."""

    def __init__(self, records: list[dict[str, Any]], pages: int = 0) -> None:
        self.records = records
        self.pages = pages

    def behave(self, exchange: hostile.Exchange) -> None:
        if self.pages:
            hostile.paged(hostile.import_pages(self.records, self.pages))(exchange)
        else:
            exchange.answer({"code": 0, "data": {"records": self.records}})


@contextmanager
def lister(answers: Answers, kind: str = "refresh") -> Iterator[tuple[Any, ParsedRecords]]:
    """``list()`` lists the target once, as the poller does, with one ``ParsedRecords``."""
    records = ParsedRecords()
    with hostile.hostile_server({}, default=answers.behave) as server:
        cluster = replace(CLUSTER, endpoint=server.url)
        target = Target(cluster, "default", kind)
        session = requests.Session()

        def list_once() -> Kept[Any]:
            client = MilvusClient(server.url, "secret-token", session, 5.0)
            return list_target(client, target, LIMITS, OddityLog(), records)

        try:
            yield list_once, records
        finally:
            session.close()


def refreshes(count: int) -> list[dict[str, Any]]:
    return [
        hostile.refresh_record(1000 + index, f"ext_{index % 3}", state="RefreshCompleted")
        for index in range(count)
    ]


def by_id(kept: Kept[Any]) -> dict[object, Any]:
    return {job.job_id: job for job in kept.jobs}


def test_an_unchanged_list_is_neither_decoded_nor_read_again():
    with lister(Answers(refreshes(6))) as (list_once, records):
        first = list_once()
        parsed = records.parsed
        second = list_once()
    assert parsed == 6
    assert second is first  # the very same Kept: nothing decoded, read or kept anew
    assert records.parsed == 6
    assert records.reused == 6


CHANGES = {
    "state": ("state", "RefreshFailed"),
    "progress": ("progress", 99),
    "reason": ("reason", "schema mismatch"),
    "end time": ("endTime", hostile.NOW_MS - 10_000),
    "progress of another type": ("progress", "100"),
    "progress as a float": ("progress", 100.0),
}


def test_a_changed_record_is_read_anew_and_every_other_reused():
    for name, (field, new) in CHANGES.items():
        answers = Answers(refreshes(6))
        with lister(answers) as (list_once, records):
            first = by_id(list_once())
            answers.records = copy.deepcopy(answers.records)
            answers.records[2][field] = new
            second = by_id(list_once())
        assert records.parsed == 7, name  # six, then the changed one
        changed = 1002
        assert second[changed] is not first[changed], name
        for job_id, job in second.items():
            if job_id != changed:
                assert job is first[job_id], (name, job_id)
        if field == "state":
            assert second[changed].state == "RefreshFailed"
        if field == "reason":
            assert second[changed].reason == "schema mismatch"
        if field == "endTime":
            assert second[changed].end_time == (hostile.NOW_MS - 10_000) / 1000


def test_a_record_whose_value_changes_type_is_read_anew():
    """``true`` hashes and compares equal to ``1``: a fingerprint of values alone would give
    back the job read from ``1`` for a record that no longer reads."""
    answers = Answers([hostile.refresh_record(7, "ext_a", progress=1)])
    with lister(answers) as (list_once, records):
        first = list_once()
        answers.records = [hostile.refresh_record(7, "ext_a", progress=True)]
        second = list_once()
    assert first.jobs and not first.skipped
    assert second.jobs == ()
    assert [reason for reason, _count, _message in second.skipped] == ["bad_progress"]
    assert records.parsed == 2


def test_a_job_no_longer_listed_is_forgotten():
    answers = Answers(refreshes(4))
    with lister(answers) as (list_once, records):
        list_once()
        answers.records = answers.records[1:]
        second = list_once()
        answers.records = refreshes(4)  # the first one is back: read again, not remembered
        third = list_once()
    assert 1000 not in by_id(second)
    assert records.parsed == 4 + 0 + 1
    assert by_id(third)[1001] is by_id(second)[1001]


def test_a_list_with_a_skipped_record_is_read_again_every_time():
    """A record refused once may read later (a time over a day ahead, as the clock moves on):
    the same bytes of a list that skipped one are not taken as the same answer."""
    answers = Answers([*refreshes(3), {"jobId": "nope", "collectionName": "ext_0"}])
    with lister(answers) as (list_once, records):
        first = list_once()
        second = list_once()
    assert second is not first
    assert second.skipped == first.skipped != ()
    assert by_id(second)[1000] is by_id(first)[1000]  # the readable records are still reused
    assert records.parsed == 4 + 1  # the refused one is tried again, the others are not


def test_an_unchanged_page_keeps_its_jobs_when_another_page_changed():
    imports = [
        {"jobId": str(500 + index), "collectionName": f"c{index}", "state": "Completed",
         "progress": 100}
        for index in range(9)
    ]  # fmt: skip
    answers = Answers(imports, pages=3)
    with lister(answers, kind="import") as (list_once, records):
        first = by_id(list_once())
        answers.records = copy.deepcopy(imports)
        answers.records[7]["progress"] = 50
        answers.records[7]["state"] = "Importing"
        second = by_id(list_once())
    assert records.parsed == 9 + 1  # the changed record only (its page decoded again)
    assert records.reused == 2 + 6  # its page's other two, and the two unchanged pages whole
    assert second["507"].state == "Importing" and second["507"] is not first["507"]
    assert all(second[job_id] is first[job_id] for job_id in first if job_id != "507")


# The model ------------------------------------------------------------------------------


def fresh(snapshot: Snapshot) -> Snapshot:
    """The same snapshot with every job a new object: what the poller gave before reuse."""
    return replace(snapshot, jobs=tuple(copy.copy(job) for job in snapshot.jobs))


def details(job_id: str, rows: int, complete: float | None) -> ImportJobDetails:
    return ImportJobDetails(
        job_id=job_id,
        state="Completed" if complete else "Importing",
        imported_rows=rows,
        total_rows=1000,
        file_size_bytes=4096,
        create_time=T0 - 600,
        complete_time=complete,
        collection="books",
        progress_ratio=rows / 1000,
    )


def scenario() -> Iterator[tuple[str, Any, float]]:
    """Cycles of a refresh and an import target, as the poller hands them over: an unchanged
    list gives the same jobs tuple, an unchanged record the same job object."""
    done = refresh_job(1, "RefreshCompleted", "ext_a", 1.0, T0 - 900, T0 - 800)
    older = refresh_job(2, "RefreshFailed", "ext_b", 0.3, T0 - 1900, T0 - 1800, "no file")
    running = refresh_job(3, "RefreshInProgress", "ext_c", 0.2, T0 - 100)
    imported = import_job("900", "Completed", "books", 1.0)
    importing = import_job("901", "Importing", "books", 0.4)
    refreshes_: tuple[Any, ...] = (done, older, running)
    imports = (imported, importing)
    at = T0
    yield "first", cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at), at
    follow = ((IMPORT.key, details("900", 1000, T0 - 60)), (IMPORT.key, details("901", 400, None)))
    at += 15
    yield "details", replace(cycle(
        ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at
    ), follow_ups=follow), at  # fmt: skip
    at += 15
    yield (
        "unchanged",
        cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at),
        at,
    )
    progressed = replace(importing, progress_ratio=0.7)
    imports = (imported, progressed)
    at += 15
    yield "progress", cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at), at
    reasoned = replace(older, reason="schema mismatch")
    refreshes_ = (done, reasoned, running)
    at += 15
    yield "reason", cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at), at
    finished = replace(running, state="RefreshFailed", end_time=at - 5, reason="boom")
    refreshes_ = (done, reasoned, finished)
    at += 15
    yield "state", cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at), at
    refreshes_ = (done, finished)  # ext_b's job is no longer listed
    at += 15
    yield (
        "gone from the list",
        cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at),
        at,
    )
    at += 15
    down = replace(ok(REFRESH, at, refreshes_), ok=False, reason="timeout", jobs=())
    yield "down", cycle(down, ok(IMPORT, at, imports=imports), at=at), at
    at += 15
    yield "up again", cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at), at
    at += 15
    listing = CollectionsListing("prod", "default", at - 1, True, frozenset({"ext_a", "books"}))
    yield "collection dropped", replace(cycle(
        ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at
    ), collection_lists=(listing,)), at  # fmt: skip
    at += 15
    yield (
        "after the drop",
        cycle(ok(REFRESH, at, refreshes_), ok(IMPORT, at, imports=imports), at=at),
        at,
    )


def keep_tuples(steps: Iterator[tuple[str, Any, float]]) -> Iterator[tuple[str, Any, float]]:
    """Give the model the very same jobs tuple while a target lists the same jobs, as the
    poller does (``lists.py``: the same ``Kept``)."""
    last: dict[object, tuple[Any, ...]] = {}
    for name, result, at in steps:
        snapshots = []
        for snapshot in result.snapshots:
            previous = last.get(snapshot.target.key)
            if previous is not None and previous == snapshot.jobs and snapshot.ok:
                snapshot = replace(snapshot, jobs=previous)
            elif snapshot.ok:
                last[snapshot.target.key] = snapshot.jobs
            snapshots.append(snapshot)
        yield name, replace(result, snapshots=tuple(snapshots)), at


def test_reused_jobs_publish_the_same_bytes_as_fresh_ones_every_cycle():
    reusing, copying = MetricsModel(1000, 15.0), MetricsModel(1000, 15.0)
    seen = same_bytes(reusing, copying)
    parsed = [samples_of(text) for text in seen]
    progress = "milvus_import_job_progress_ratio"
    assert value(parsed[2], progress, **job_labels("books", "901")) == 0.4
    assert value(parsed[3], progress, **job_labels("books", "901")) == 0.7
    failure = "milvus_refresh_job_failure_info"
    assert value(parsed[4], failure, **job_labels("ext_b", "2"), reason="schema mismatch") == 1
    assert value(parsed[3], failure, **job_labels("ext_b", "2"), reason="schema mismatch") is None
    state = "milvus_refresh_job_state"
    assert value(parsed[5], state, **job_labels("ext_c", "3"), state="RefreshFailed") == 1
    assert value(parsed[4], state, **job_labels("ext_c", "3"), state="RefreshFailed") == 0
    # ext_b stays as the newest failure remembered, until its collection is dropped upstream
    assert value(parsed[9], "milvus_refresh_jobs", milvus_cluster="prod", database="default",
                 collection="ext_b", state="RefreshFailed") is None  # fmt: skip
    # the reuse happened: fewer jobs rendered than written
    written = sum(text.count("_job_progress_ratio{") for text in seen)  # one per job written
    assert reusing.rendered_jobs.rendered < written / 2
    rows = sum(
        text.count("milvus_refresh_jobs{") + text.count("milvus_import_jobs{") for text in seen
    )
    assert reusing.rendered_counts.rendered < rows / 4 / 2  # four documented states a row


def test_under_the_cardinality_guard_too():
    """Three tracked jobs of five: which are left out follows their age, which the details
    that arrive change (a finished import's create time)."""
    same_bytes(MetricsModel(3, 15.0), MetricsModel(3, 15.0))


def test_with_memory_bounds_that_bite():
    """Collections remembered for 40 s only, or two of them: what the same jobs seen again
    refresh (when each was last listed) and what the cap lets go must be the same too."""
    for bounds in ({"collection_retention": 40.0}, {"max_tracked_collections": 2}):
        same_bytes(MetricsModel(1000, 15.0, **bounds), MetricsModel(1000, 15.0, **bounds))


def same_bytes(reusing: MetricsModel, copying: MetricsModel) -> list[str]:
    """Run the scenario through both: the same jobs to one, fresh copies to the other."""
    seen: list[str] = []
    for name, result, at in keep_tuples(scenario()):
        copied = replace(result, snapshots=tuple(fresh(s) for s in result.snapshots))
        expected = render(copying.update(copied, at))
        assert render(reusing.update(result, at)) == expected, name
        seen.append(expected)
    return seen


def samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return parsed


def job_labels(collection: str, job_id: str) -> dict[str, str]:
    return {
        "milvus_cluster": "prod",
        "database": "default",
        "collection": collection,
        "job_id": job_id,
    }


def test_an_unchanged_job_is_not_rendered_again_and_a_changed_one_is():
    model = MetricsModel(1000, 15.0)
    done = import_job("900", "Completed", "books", 1.0)
    importing = import_job("901", "Importing", "books", 0.4)
    jobs = (done, importing)
    model.update(cycle(ok(IMPORT, T0, imports=jobs), targets=(IMPORT,)), T0)
    assert model.rendered_jobs.rendered == 2
    model.update(cycle(ok(IMPORT, T0 + 15, imports=jobs), targets=(IMPORT,)), T0 + 15)
    assert model.rendered_jobs.rendered == 2  # the same objects: nothing rendered anew
    moved = (done, replace(importing, progress_ratio=0.5))
    parsed = samples(
        model.update(cycle(ok(IMPORT, T0 + 30, imports=moved), targets=(IMPORT,)), T0 + 30)
    )
    assert model.rendered_jobs.rendered == 3  # the changed one only
    progress = "milvus_import_job_progress_ratio"
    assert value(parsed, progress, **job_labels("books", "901")) == 0.5
    parsed = samples(
        model.update(cycle(ok(IMPORT, T0 + 45, imports=(done,)), targets=(IMPORT,)), T0 + 45)
    )
    assert value(parsed, progress, **job_labels("books", "901")) is None  # gone: no series
    assert value(parsed, progress, **job_labels("books", "900")) == 1.0


def test_a_running_jobs_duration_follows_the_poll_time_though_the_job_is_the_same():
    model = MetricsModel(1000, 15.0)
    running = (refresh_job(3, "RefreshInProgress", "ext_c", 0.2, T0 - 100),)
    duration = "milvus_refresh_job_duration_seconds"
    first = samples(model.update(cycle(ok(REFRESH, T0, running), targets=(REFRESH,)), T0))
    later = samples(model.update(cycle(ok(REFRESH, T0 + 15, running), targets=(REFRESH,)), T0 + 15))
    assert value(first, duration, **job_labels("ext_c", "3")) == 100
    assert value(later, duration, **job_labels("ext_c", "3")) == 115


def test_lines_that_read_the_poll_time_are_not_kept_for_the_next_cycle():
    """A running job's lines change with every poll time, so they are never written again:
    keeping them held a second copy of the exposition (the scrape benchmark's 100,000 running
    refreshes: 691 MB resident, from 283)."""
    model = MetricsModel(10_000, 15.0)
    running = tuple(
        refresh_job(index, "RefreshInProgress", f"ext_{index}", 0.2, T0 - 100)
        for index in range(1, 201)
    )
    finished = (refresh_job(500, "RefreshCompleted", "ext_done", 1.0, T0 - 300),)
    model.update(cycle(ok(REFRESH, T0, running + finished), targets=(REFRESH,)), T0)
    assert model.rendered_jobs.kept == 1  # the finished job's lines only


def test_a_restart_from_the_state_file_publishes_what_a_fresh_model_does(tmp_path):
    steps = list(keep_tuples(scenario()))
    before = MetricsModel(1000, 15.0)
    for _name, result, at in steps[:6]:
        before.update(result, at)
    path = tmp_path / "state.json"
    save_state(path, before.saved_state(), steps[5][2])
    reusing, copying = MetricsModel(1000, 15.0), MetricsModel(1000, 15.0)
    for model in (reusing, copying):
        loaded = load_state(path, steps[5][2])
        assert loaded is not None
        model.restore(loaded)
    for name, result, at in steps[6:]:
        copied = replace(result, snapshots=tuple(fresh(s) for s in result.snapshots))
        assert render(reusing.update(result, at)) == render(copying.update(copied, at)), name


def test_the_model_keeps_an_imports_details_without_its_files():
    """The files of ``import/describe`` are read by no series: the model held them for every
    described listed import (50,000 at 50 databases)."""
    from exporter.upstream.records import ImportFileDetails

    model = MetricsModel(1000, 15.0)
    described = replace(
        details("900", 1000, T0 - 60),
        files=(ImportFileDetails("s3://a.parquet", "Completed", 1.0, 1000, 1000, 4096, T0 - 60),),
    )
    jobs = (import_job("900", "Completed", "books", 1.0),)
    model.update(cycle(ok(IMPORT, T0, imports=jobs), targets=(IMPORT,)), T0)
    result = replace(
        cycle(ok(IMPORT, T0 + 15, imports=jobs), targets=(IMPORT,)),
        follow_ups=((IMPORT.key, described),),
    )
    parsed = samples(model.update(result, T0 + 15))
    kept = model.target_status()[0].details["900"]
    assert kept.files == () and kept.imported_rows == 1000
    rows = "milvus_import_job_imported_rows"
    assert value(parsed, rows, **job_labels("books", "900")) == 1000


def test_a_reload_keeps_what_was_read_unless_it_would_be_read_differently():
    """A reload makes a new poller: what the old one read serves it, unless the caps (what is
    kept) or the secrets (what is scrubbed from an answer) changed."""
    from exporter.polling.poller import Poller

    from .helpers import config

    first = Poller(config())
    try:
        for changed, expect_kept in (
            (config(), True),
            (config(max_listed_jobs=10), False),
            (config(clusters=(replace(CLUSTER, token="another-token"),)), False),
        ):
            second = Poller(changed, parsed_records=first.parsed_records)
            try:
                assert (second.parsed_records is first.parsed_records) is expect_kept, changed
            finally:
                second.close()
    finally:
        first.close()


def test_the_real_daemon_reuses_an_unchanged_list_and_publishes_a_changed_record(
    start_exporter,
):
    """The daemon against a server on 127.0.0.1 whose refresh list stays the same byte for byte
    for several rounds, then changes one record's state and reason: the rounds in between read
    nothing anew, and the change is on /metrics at the next round."""
    import time

    records = [
        hostile.refresh_record(1, "ext_a"),
        hostile.refresh_record(2, "ext_b", state="RefreshInProgress"),
    ]
    answers = Answers(records)
    with hostile.hostile_server({}, default=answers.behave) as server:
        cluster = replace(CLUSTER, endpoint=server.url, databases=("default",), jobs=("refresh",))
        exporter = start_exporter(cluster, poll_interval=0.3)
        exporter.wait_for_cycles(4)
        reused = exporter.daemon.poller.parsed_records
        assert reused.parsed == 2  # the first round read both; the later ones neither
        assert reused.reused >= 2 * 2
        answers.records = [
            records[0],
            hostile.refresh_record(2, "ext_b", state="RefreshFailed", reason="no such file"),
        ]
        state = "milvus_refresh_job_state"
        labels = {**job_labels("ext_b", "2"), "state": "RefreshFailed"}
        deadline = time.monotonic() + 10
        while exporter.scrape().get((state, frozenset(labels.items()))) != 1:
            assert time.monotonic() < deadline, "the changed record never reached /metrics"
            time.sleep(0.1)
        parsed = exporter.scrape()
        failure = "milvus_refresh_job_failure_info"
        assert value(parsed, failure, **job_labels("ext_b", "2"), reason="no such file") == 1
        assert value(parsed, "milvus_refresh_job_progress_ratio", **job_labels("ext_a", "1")) == 1
        assert exporter.daemon.poller.parsed_records.parsed == 3  # the changed record alone


def test_an_oddity_is_said_once_across_rounds_and_a_reload(tmp_path):
    """An unknown state on a list that stays the same byte for byte is said once: not again
    each round (its unchanged page is not even looked at again), nor after a reload, whose new
    poller takes over what the old one said with what it read."""
    import time

    from structlog.testing import capture_logs

    from exporter.config.loader import load_config
    from exporter.daemon import Daemon

    answers = Answers([hostile.refresh_record(1, "ext_a", state="RefreshSomethingNew")])
    with hostile.hostile_server({}, default=answers.behave) as server, capture_logs() as logs:
        path = tmp_path / "config.yaml"

        def write(interval: str) -> None:
            path.write_text(
                f"poll_interval: {interval}\nrequest_timeout: 2s\nclusters:\n"
                f"  - name: prod\n    endpoint: {server.url}\n    token: secret-token\n"
                "    databases: [default]\n    jobs: [refresh]\n"
            )

        write("300ms")
        daemon = Daemon(load_config(path, {}), config_loader=lambda p: load_config(p, {}))
        daemon.start()
        try:
            deadline = time.monotonic() + 20

            def wait_for_generation(generation: int) -> None:
                while daemon.cache.generation < generation:
                    assert time.monotonic() < deadline, f"no cycle {generation} in time"
                    time.sleep(0.02)

            wait_for_generation(3)
            first = daemon.poller
            write("250ms")
            assert daemon.request_reload().ok
            wait_for_generation(daemon.cache.generation + 4)
            assert daemon.poller is not first, "the reload made no new poller"

        finally:
            daemon.stop(timeout=5)
    said = [entry for entry in logs if entry["event"] == "job.unknown_state"]
    assert len(said) == 1, said
    assert said[0]["state"] == "RefreshSomethingNew"


# Many jobs per target: what is written again in one piece -------------------------------


OTHER = Target(CLUSTER, "other", "refresh")


def many_jobs_scenario() -> Iterator[tuple[str, Any, float]]:
    """Three targets of a dozen collections each, changed one job at a time, in the middle of
    what did not change: what an unchanged run of jobs writes again in one piece must end and
    start exactly where each changed job is."""
    refreshes_ = {
        f"ext_{c:02d}": [
            refresh_job(100 + 2 * c, "RefreshCompleted", f"ext_{c:02d}", 1.0, T0 - 900, T0 - 800),
            refresh_job(101 + 2 * c, "RefreshFailed", f"ext_{c:02d}", 0.3, T0 - 1900, T0 - 1800,
                        "no file"),
        ]
        for c in range(12)
    }  # fmt: skip
    refreshes_["ext_05"].append(refresh_job(900, "RefreshInProgress", "ext_05", 0.2, T0 - 100))
    others = tuple(
        refresh_job(300 + c, "RefreshCompleted", f"o_{c:02d}", 1.0, T0 - 700 - c, T0 - 600)
        for c in range(12)
    )
    imports = [
        import_job(str(500 + i), "Importing" if i % 7 == 3 else "Completed", f"c{i % 9}", 0.5)
        for i in range(27)
    ]
    targets = (REFRESH, IMPORT, OTHER)
    at = T0

    def step(**extra: Any) -> Any:
        listed = tuple(job for jobs in refreshes_.values() for job in jobs)
        counted = {  # as the poller's ``Kept`` counts them: new objects every list
            name: dict(Counter(job.state for job in imports if job.collection == name))
            for name in sorted({job.collection for job in imports})
        }
        snapshots = [
            ok(REFRESH, at, listed),
            replace(ok(IMPORT, at, imports=tuple(imports)), collection_counts=counted),
        ]
        snapshots.append(extra.pop("other", ok(OTHER, at, others)))
        return replace(cycle(*snapshots, targets=targets, at=at), **extra)

    yield "first", step(), at
    for name in ("unchanged", "unchanged again"):
        at += 15
        yield name, step(), at
    at += 15
    middle = refreshes_["ext_06"]
    middle[1] = replace(middle[1], reason="schema mismatch")
    yield "a job in the middle changed", step(), at
    at += 15
    refreshes_["ext_03"].insert(
        0, refresh_job(950, "RefreshFailed", "ext_03", 0.9, T0, T0 + 30, "newer failure")
    )
    yield "a newer job in the middle", step(), at
    at += 15
    del refreshes_["ext_08"]
    yield "a collection's jobs no longer listed", step(), at
    at += 15
    imports[3] = replace(imports[3], progress_ratio=0.8)
    imports[10] = replace(imports[10], state="Completed", progress_ratio=1.0)
    yield "imports progressed and finished", step(), at
    at += 15
    follow = tuple((IMPORT.key, details(str(500 + i), 100 * i, T0 - 60 + i)) for i in (4, 12, 20))
    newest = replace(details("522", 180, T0 - 30), create_time=T0 + 1)  # c4 newest still
    follow += ((IMPORT.key, newest),)
    yield "details of three imports", step(follow_ups=follow), at
    at += 15
    yield "unchanged with details", step(), at
    at += 15
    again = ((IMPORT.key, replace(newest, imported_rows=999)),)
    yield "an import described again", step(follow_ups=again), at
    at += 15
    yield "one target down", step(other=failed(OTHER, at)), at
    at += 15
    yield "up again", step(), at
    at += 15
    refreshes_["ext_00"][0] = replace(refreshes_["ext_00"][0], end_time=T0 - 790)
    refreshes_["ext_11"][0] = replace(refreshes_["ext_11"][0], progress_ratio=0.99)
    yield "the first and the last job changed", step(), at
    at += 15
    refreshes_["ext_05"] = [job for job in refreshes_["ext_05"] if job.job_id != 900]
    yield "the running job between two runs no longer listed", step(), at
    at += 15
    names = frozenset({*refreshes_, *(f"c{c}" for c in range(9) if c != 5)})
    listing = CollectionsListing("prod", "default", at - 1, True, names)
    yield "an import collection dropped", step(collection_lists=(listing,)), at
    at += 15
    yield "unchanged at the end", step(), at


def published(cache: ExpositionCache, families: list[Any]) -> bytes:
    """What a scrape gets after the daemon publishes ``families`` (the bodies are taken)."""
    cache.publish(families)
    return cache.scrape().body


def test_many_jobs_publish_the_same_bytes_as_fresh_ones_every_cycle():
    """Through the exposition cache, as the daemon publishes: the model may read what it wrote
    last cycle from there."""
    for limit in (1000, 40, 7):
        reusing, copying = MetricsModel(limit, 15.0), MetricsModel(limit, 15.0)
        reusing_cache, copying_cache = ExpositionCache(), ExpositionCache()
        seen = {}
        for name, result, at in keep_tuples(many_jobs_scenario()):
            copied = replace(result, snapshots=tuple(fresh(s) for s in result.snapshots))
            expected = published(copying_cache, copying.update(copied, at))
            assert published(reusing_cache, reusing.update(result, at)) == expected, (limit, name)
            seen[name] = expected
        assert len(set(seen.values())) > 6, limit  # the scenario changes what is published
        dropped = b'milvus_import_jobs{milvus_cluster="prod",database="default",collection="c5",'
        assert dropped in seen["the running job between two runs no longer listed"], limit
        for name in ("an import collection dropped", "unchanged at the end"):
            assert dropped not in seen[name], (limit, name)  # not what it wrote before
    written = sum(text.count(b"_job_progress_ratio{") for text in seen.values())
    assert reusing.rendered_jobs.rendered < written / 3


# The memory's shortcuts at random (issue 23) ----------------------------------------------

COLLECTIONS = ("c0", "c1", "c2", "c3")


class ImportList:
    """An import target's list that changes at random the way a server's does, each unchanged
    record the very same object from one round to the next (what ``reuse.py`` gives)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = 100
        self.jobs: list[Any] = [self.new() for _ in range(6)]

    def new(self, state: str = "Importing") -> Any:
        self.next_id += 1
        return import_job(str(self.next_id), state, self.rng.choice(COLLECTIONS), 0.1)

    def change(self) -> None:
        rng, jobs = self.rng, self.jobs
        what = rng.choice(
            (
                *("progress", "finish", "add", "remove", "swap", "replace", "twice", "moved"),
                *("none", "none", "progress"),
            )
        )
        if what == "progress" and jobs:
            index = rng.randrange(len(jobs))
            jobs[index] = replace(jobs[index], progress_ratio=rng.random())
        elif what == "finish" and jobs:
            index = rng.randrange(len(jobs))
            state = rng.choice(("Completed", "Failed"))
            jobs[index] = replace(jobs[index], state=state, progress_ratio=1.0)
        elif what == "add" or not jobs:
            jobs.insert(rng.randrange(len(jobs) + 1), self.new(rng.choice(("Completed", "Failed"))))
        elif what == "remove":
            del jobs[rng.randrange(len(jobs))]
        elif what == "swap" and len(jobs) > 1:
            index = rng.randrange(len(jobs) - 1)
            jobs[index], jobs[index + 1] = jobs[index + 1], jobs[index]
        elif what == "replace":  # one job goes as another comes: the same length
            jobs[rng.randrange(len(jobs))] = self.new("Completed")
        elif what == "moved" and jobs:  # the same id in the same place, of another collection
            index = rng.randrange(len(jobs))
            jobs[index] = replace(jobs[index], collection=rng.choice(COLLECTIONS))
        elif what == "twice":  # a record listed twice: the same object, or the same id anew
            job = rng.choice(jobs)
            twin = job if rng.random() < 0.5 else replace(job, progress_ratio=0.9)
            jobs.insert(rng.randrange(len(jobs) + 1), twin)

    def details(self, at: float) -> list[tuple[Any, ImportJobDetails]]:
        """Describe answers for a few listed jobs (and now and then one no longer listed)."""
        rng = self.rng
        chosen = rng.sample(self.jobs, min(len(self.jobs), rng.randrange(3)))
        if rng.random() < 0.2:
            chosen.append(import_job(str(self.next_id - 7), "Completed", "c0", 1.0))
        return [
            (
                IMPORT.key,
                ImportJobDetails(
                    job_id=job.job_id,
                    state=job.state,
                    imported_rows=rng.randrange(1000),
                    total_rows=1000,
                    file_size_bytes=4096,
                    create_time=at - rng.randrange(1, 5000),
                    complete_time=at - 1 if job.finished else None,
                    collection=job.collection,
                ),
            )
            for job in chosen
        ]


def random_rounds(seed: int, rounds: int = 40) -> Iterator[tuple[str, Any, float]]:
    rng = random.Random(seed)
    imports = ImportList(rng)
    at = T0
    for number in range(rounds):
        at += 15
        if rng.random() < 0.6:
            imports.change()
        if rng.random() < 0.3:
            imports.change()
        if rng.random() < 0.1:
            snapshot = replace(ok(IMPORT, at), ok=False, reason="timeout")
        else:
            snapshot = ok(IMPORT, at, imports=tuple(imports.jobs))
        result = replace(
            cycle(snapshot, targets=(IMPORT,), at=at), follow_ups=tuple(imports.details(at))
        )
        if rng.random() < 0.25:
            names = frozenset(c for c in COLLECTIONS if rng.random() < 0.8)
            listing = CollectionsListing("prod", "default", at - rng.choice((1, 30)), True, names)
            result = replace(result, collection_lists=(listing,))
        yield f"seed {seed} round {number}", result, at


def test_the_memory_decides_from_the_same_jobs_as_from_fresh_copies_at_random(monkeypatch):
    """Jobs added, removed, moved, listed twice, finished and described in every combination:
    what the newest-finished memory skips for the same objects must change nothing, under
    memory bounds that bite too; nor what the model skips for a list whose ids all stay in
    place (``_moved_on``), which fresh copies take too: a third model reads every list whole."""
    from exporter.metrics import model as model_module

    moved_on = model_module._moved_on
    for seed in range(30):
        for bounds in ({}, {"max_tracked_collections": 2}, {"collection_retention": 40.0}):
            reusing = MetricsModel(4, 15.0, **bounds)
            copying = MetricsModel(4, 15.0, **bounds)
            whole = MetricsModel(4, 15.0, **bounds)
            for name, result, at in keep_tuples(random_rounds(seed)):
                copied = replace(result, snapshots=tuple(fresh(s) for s in result.snapshots))
                expected = render(copying.update(copied, at))
                assert render(reusing.update(result, at)) == expected, (name, bounds)
                monkeypatch.setattr(model_module, "_moved_on", lambda *_: None)
                assert render(whole.update(result, at)) == expected, (name, bounds)
                monkeypatch.setattr(model_module, "_moved_on", moved_on)


def test_jobs_that_finish_in_the_same_round_are_timed_in_list_order():
    """Only the jobs not timed yet are looked at, found by set: the histogram's sum must still
    add them up in the order they are listed (floats: another order gives another sum), for
    every order they may be listed in."""
    start = 1 / 3  # small times: durations with every bit of a float's mantissa in use
    running = [
        refresh_job(index, "RefreshInProgress", f"ext_{index}", 0.5, start)
        for index in range(1, 25)
    ]
    ended = {
        job.job_id: replace(
            job, state="RefreshCompleted", end_time=start + job.job_id / 7 + 1e-3 / job.job_id
        )
        for job in running
    }
    labels = {"milvus_cluster": "prod", "database": "default", "state": "RefreshCompleted"}
    sums = set()
    for shuffle in range(8):
        random.Random(shuffle).shuffle(running)
        model = MetricsModel(1000, 15.0)
        model.update(cycle(ok(REFRESH, T0, tuple(running)), targets=(REFRESH,)), T0)
        listed = tuple(ended[job.job_id] for job in running)
        result = cycle(ok(REFRESH, T0 + 15, listed), targets=(REFRESH,))
        parsed = samples(model.update(result, T0 + 15))
        total = 0.0
        for job in listed:
            total += job.end_time - job.start_time
        sums.add(total)
        assert value(parsed, "milvus_refresh_duration_seconds_count", **labels) == 24
        assert repr(value(parsed, "milvus_refresh_duration_seconds_sum", **labels)) == repr(total)
    assert len(sums) > 1  # the orders do give other sums: the test can tell


def test_a_job_that_takes_the_place_of_another_is_first_seen_when_it_comes():
    """The list keeps its length, one job going as another comes: the newcomer's first
    sighting is the poll that showed it (imports without details order by it), so it is the
    newest finished import of its collection once both are gone from the list."""
    older = import_job("900", "Failed", "books", 0.0, "bad file")
    leaving = import_job("901", "Importing", "other", 0.2)
    coming = import_job("777", "Completed", "books", 1.0)  # a lower id: only its sighting is newer
    model = MetricsModel(1000, 15.0)
    model.update(cycle(ok(IMPORT, T0, imports=(older, leaving)), targets=(IMPORT,)), T0)
    model.update(cycle(ok(IMPORT, T0 + 15, imports=(older, coming)), targets=(IMPORT,)), T0 + 15)
    after = (import_job("950", "Importing", "other", 0.1),)
    parsed = samples(
        model.update(cycle(ok(IMPORT, T0 + 30, imports=after), targets=(IMPORT,)), T0 + 30)
    )
    state = "milvus_import_job_state"
    assert value(parsed, state, **job_labels("books", "777"), state="Completed") == 1
    assert value(parsed, state, **job_labels("books", "900"), state="Failed") is None


def test_the_details_of_a_job_no_longer_listed_go_with_it():
    model = MetricsModel(1000, 15.0)
    first = (import_job("900", "Completed", "books", 1.0), import_job("901", "Importing"))
    follow = ((IMPORT.key, details("900", 1000, T0 - 60)), (IMPORT.key, details("901", 5, None)))
    model.update(
        replace(cycle(ok(IMPORT, T0, imports=first), targets=(IMPORT,)), follow_ups=follow), T0
    )
    assert set(model.target_status()[0].details) == {"900", "901"}
    model.update(cycle(ok(IMPORT, T0 + 15, imports=first[1:]), targets=(IMPORT,)), T0 + 15)
    assert set(model.target_status()[0].details) == {"901"}


def test_a_removed_target_leaves_no_jobs_behind():
    """What the memory keeps of a database's last list to skip what did not change goes with
    the database's target (else every database discovery ever dropped stays in memory)."""
    import gc

    jobs = tuple(import_job(str(900 + index), "Completed", f"c{index}", 1.0) for index in range(3))
    model = MetricsModel(1000, 15.0)
    model.update(cycle(ok(IMPORT, T0, imports=jobs), targets=(IMPORT,)), T0)
    for at in (T0 + 15, T0 + 30):  # the second: the lines rendered last cycle are let go too
        model.update(cycle(ok(REFRESH, at), targets=(REFRESH,)), at)
    gc.collect()
    for job in jobs:
        assert [holder for holder in gc.get_referrers(job) if holder is not jobs] == []


def test_what_is_known_of_a_collection_neither_listed_nor_remembered_goes():
    """``CollectionEvidence.prune`` leaves a database's knowledge as it is when every
    collection it knows is listed: the rest must still go (a later list then has nothing to
    say of it) while what is listed or remembered stays."""
    from exporter.memory.evidence import CollectionEvidence

    evidence = CollectionEvidence()
    database = ("prod", "default")
    evidence.saw(database, {"listed": T0, "remembered": T0, "forgotten": T0})
    evidence.prune({database: {"listed"}}, lambda db: {"remembered"} if db == database else set())
    gone = evidence.apply(CollectionsListing("prod", "default", T0 + 60, True), known=())
    assert gone == {"listed", "remembered"}


def test_a_job_listed_under_another_collection_in_its_place_is_read_whole():
    """The same ids in the same places skip reading the list whole, but a job whose collection
    changed makes that collection one of the target's: it is remembered as listed for as long
    as it is (here past a retention of 40 s), not forgotten as if it were not."""
    model = MetricsModel(1000, 15.0, collection_retention=40.0)
    first = (import_job("900", "Completed", "a", 1.0), import_job("901", "Importing", "a"))
    moved = (import_job("900", "Completed", "b", 1.0), first[1])
    forgotten = "milvus_jobs_exporter_forgotten_collections_total"
    model.update(cycle(ok(IMPORT, T0, imports=first), targets=(IMPORT,)), T0)
    listed = ok(IMPORT, T0, imports=moved)  # then the very same jobs, as the poller gives them
    for at in range(15, 120, 15):
        snapshot = replace(listed, polled_at=T0 + at)
        parsed = samples(model.update(cycle(snapshot, targets=(IMPORT,)), T0 + at))
    assert value(parsed, forgotten, reason="retention") == 0  # "a" and "b" are listed
    state = "milvus_import_job_state"
    assert value(parsed, state, **job_labels("b", "900"), state="Completed") == 1


def test_a_job_id_listed_twice_is_the_last_one_listed_when_the_first_changes():
    """Two records of one id: the later one is the job (as when the list is read whole), also
    when only the first changed; here the first finished, the later still runs: not timed."""
    model = MetricsModel(1000, 15.0)
    early = refresh_job(5, "RefreshInProgress", "ext_a", 0.2, T0 - 100)
    late = refresh_job(5, "RefreshInProgress", "ext_a", 0.3, T0 - 100)
    model.update(cycle(ok(REFRESH, T0, (early, late)), targets=(REFRESH,)), T0)
    ended = replace(early, state="RefreshCompleted", end_time=T0 + 10)
    parsed = samples(
        model.update(cycle(ok(REFRESH, T0 + 15, (ended, late)), targets=(REFRESH,)), T0 + 15)
    )
    labels = {"milvus_cluster": "prod", "database": "default", "state": "RefreshCompleted"}
    assert not value(parsed, "milvus_refresh_duration_seconds_count", **labels)  # none timed


def test_a_remembered_imports_id_listed_again_lets_the_listing_decide():
    """A collection's finished jobs stay the very same, but the id of the import remembered
    for it comes back in the list (here as a running job): the listing decides alone again,
    so the newest finished listed import is remembered, though it was created before."""
    remembered = import_job("900", "Failed", "c", 0.0, "bad file")
    older = import_job("800", "Completed", "c", 1.0)
    running = import_job("960", "Importing", "c", 0.1)
    created = {
        "900": replace(details("900", 0, None), create_time=T0 - 100),
        "800": replace(details("800", 1000, T0 - 900), create_time=T0 - 1000),
    }
    model = MetricsModel(1000, 15.0)
    rounds = ((remembered,), (older, running), (older, replace(running, job_id="900")), ())
    for number, jobs in enumerate(rounds):
        at = T0 + 15 * number
        follow = tuple((IMPORT.key, created[job.job_id]) for job in jobs[:1] if number < 2)
        result = replace(cycle(ok(IMPORT, at, imports=jobs), targets=(IMPORT,)), follow_ups=follow)
        parsed = samples(model.update(result, at))
    state = "milvus_import_job_state"
    assert value(parsed, state, **job_labels("c", "800"), state="Completed") == 1
    assert value(parsed, state, **job_labels("c", "900"), state="Failed") is None


def test_the_details_of_an_id_listed_twice_count_for_its_finished_record():
    """Only finished jobs' details can change which is the newest, so those of a running job
    are no news to the memory; but when an id is listed twice (finished first, running last)
    the memory reads the finished record, and its details that arrive are news."""
    done = import_job("900", "Completed", "c", 1.0)
    again = import_job("900", "Importing", "c", 0.2)
    other = import_job("800", "Completed", "c", 1.0)
    listed = ok(IMPORT, T0, imports=(done, other, again))  # the very same jobs every round
    model = MetricsModel(1000, 15.0)
    model.update(cycle(listed, targets=(IMPORT,)), T0)
    old = replace(details("900", 1000, T0 - 4000), create_time=T0 - 5000)  # 800 is newer
    result = replace(
        cycle(replace(listed, polled_at=T0 + 15), targets=(IMPORT,)),
        follow_ups=((IMPORT.key, old),),
    )
    model.update(result, T0 + 15)
    parsed = samples(model.update(cycle(ok(IMPORT, T0 + 30), targets=(IMPORT,)), T0 + 30))
    state = "milvus_import_job_state"
    assert value(parsed, state, **job_labels("c", "800"), state="Completed") == 1
    assert value(parsed, state, **job_labels("c", "900"), state="Completed") is None


def test_a_collections_list_keeps_only_the_collections_it_names():
    """``collections/list`` counts as a listing for the remembered collections it names, and
    for those only (matched by database index now): one it leaves out, though not confirmed
    gone (its job started after the list was sent), still goes with the retention."""
    model = MetricsModel(1000, 15.0, collection_retention=40.0)
    late = refresh_job(1, "RefreshFailed", "ext_late", 0.3, T0 + 500, T0 + 501, "boom")
    kept = refresh_job(2, "RefreshFailed", "ext_kept", 0.3, T0 - 900, T0 - 800, "boom")
    model.update(cycle(ok(REFRESH, T0, (late, kept)), targets=(REFRESH,)), T0)
    forgotten = "milvus_jobs_exporter_forgotten_collections_total"
    for at in range(15, 76, 15):
        listing = CollectionsListing("prod", "default", T0 + at - 1, True, frozenset({"ext_kept"}))
        result = replace(
            cycle(ok(REFRESH, T0 + at), targets=(REFRESH,)), collection_lists=(listing,)
        )
        parsed = samples(model.update(result, T0 + at))
    assert value(parsed, forgotten, reason="retention") == 1  # ext_late, never named
    assert value(parsed, forgotten, reason="dropped") == 0
    failure = "milvus_refresh_last_failure_timestamp_seconds"
    labels = {"milvus_cluster": "prod", "database": "default"}
    assert value(parsed, failure, **labels, collection="ext_kept") == T0 - 800
    assert value(parsed, failure, **labels, collection="ext_late") is None
