"""One bad upstream must never freeze the exporter while it looks healthy (issue 10).

Each test runs the real daemon against a small hostile server on 127.0.0.1 next to a healthy
database, and asserts what a user would see: the healthy target stays fresh, the hostile one is
down with a reason that says what happened, and /metrics stays true. Every wait is bounded.
"""

from __future__ import annotations

import time

import pytest
import requests

from exporter.config.loader import ClusterConfig

from . import hostile
from .conftest import TOKEN_A, TOKEN_B, RunningExporter, Series, series, value
from .test_cli import run

GOOD = "good"
BAD = "bad"


def clusters_on(url: str, token: str = TOKEN_A, name: str = "prod") -> ClusterConfig:
    return ClusterConfig(
        name=name, endpoint=url, token=token, databases=(GOOD, BAD), jobs=("refresh",)
    )


def labels(database: str, name: str = "prod", kind: str = "refresh") -> dict[str, str]:
    return {"milvus_cluster": name, "database": database, "kind": kind}


def cycles(parsed: Series) -> float:
    return value(parsed, "milvus_jobs_exporter_poll_cycles_total") or 0.0


def wait_for_scrape(exporter: RunningExporter, check, timeout: float, what: str) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        parsed = exporter.scrape()
        if check(parsed):
            return parsed
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.1)


def assert_keeps_polling(
    exporter: RunningExporter, poll_interval: float, request_timeout: float, rounds: int = 3
) -> Series:
    """Cycles keep coming and the healthy target's last success is never older than two poll
    intervals plus the request timeout."""
    started = cycles(exporter.scrape())
    limit = 2 * poll_interval + request_timeout
    deadline = time.monotonic() + rounds * (poll_interval + request_timeout) + 5
    while True:
        parsed = exporter.scrape()
        last = value(parsed, "milvus_jobs_exporter_last_success_timestamp_seconds", **labels(GOOD))
        assert last is not None and time.time() - last <= limit + 0.5, (
            f"the healthy target's last success is {time.time() - (last or 0):.1f}s old"
        )
        if cycles(parsed) >= started + rounds:
            return parsed
        assert time.monotonic() < deadline, "poll cycles stopped coming"
        time.sleep(0.2)


def error_reason(parsed: Series, database: str) -> str | None:
    for found in series(parsed, "milvus_jobs_exporter_target_error_info"):
        if found["database"] == database:
            return found["reason"]
    return None


@pytest.mark.slow
@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(hostile.trickle_headers(every=0.3), id="trickled-headers"),
        pytest.param(hostile.trickle_body(every=0.3), id="trickled-body"),
    ],
)
def test_an_answer_trickled_byte_by_byte_is_cut_at_the_request_timeout(start_exporter, behaviour):
    with hostile.hostile_server({BAD: behaviour}) as server:
        exporter = start_exporter(
            clusters_on(server.url), poll_interval=1.5, request_timeout=1.0, wait=False
        )
        parsed = wait_for_scrape(
            exporter, lambda p: error_reason(p, BAD) == "timeout", 10, "the trickle to time out"
        )
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(GOOD)) == 1
        assert_keeps_polling(exporter, poll_interval=1.5, request_timeout=1.0)


@pytest.mark.slow
def test_retry_after_of_one_token_holds_back_only_that_token(start_exporter):
    with (
        hostile.hostile_server({}, default=hostile.too_many_requests(300)) as throttled,
        hostile.hostile_server({}) as healthy,
    ):
        exporter = start_exporter(
            ClusterConfig(
                name="throttled", endpoint=throttled.url, token=TOKEN_B, jobs=("refresh",)
            ),
            ClusterConfig(
                name="prod",
                endpoint=healthy.url,
                token=TOKEN_A,
                databases=(GOOD,),
                jobs=("refresh",),
            ),
            poll_interval=0.5,
            request_timeout=0.5,
            max_retries=2,
        )
        parsed = assert_keeps_polling(exporter, poll_interval=0.5, request_timeout=0.5, rounds=5)
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_target_error_info",
                **labels("default", "throttled"),
                reason="rate_limited",
            )
            == 1
        )
        # Retry-After: 300 was honoured on each endpoint asked (the job list, and the
        # collections list that is limited on its own), not hammered
        paths = [exchange.path for exchange in throttled.seen]
        assert len(paths) == len(set(paths)) and len(paths) <= 2


def test_an_import_list_claiming_a_billion_pages_fails_at_once(start_exporter):
    with hostile.hostile_server({BAD: hostile.endless_pages}) as server:
        cluster = ClusterConfig(
            name="prod",
            endpoint=server.url,
            token=TOKEN_A,
            databases=(GOOD, BAD),
            jobs=("import",),
        )
        exporter = start_exporter(cluster, poll_interval=0.5, request_timeout=0.5)
        parsed = exporter.scrape()
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_target_error_info",
                **labels(BAD, kind="import"),
                reason="too_many_pages",
            )
            == 1
        )
        assert sum(1 for seen in server.seen if seen.body.get("dbName") == BAD) <= 2


SURROGATE_ANSWER = (
    '{"code": 0, "data": {"records": [{"jobId": 1, "collectionName": "c\\ud800x", '
    f'"state": "RefreshFailed", "progress": 0, "startTime": {hostile.NOW_MS - 60_000}, '
    f'"endTime": {hostile.NOW_MS - 30_000}, "reason": "bad \\udfff thing"}}]}}}}'
)


def test_a_lone_surrogate_becomes_a_replacement_character_not_a_broken_poll(start_exporter):
    with hostile.hostile_server({BAD: hostile.raw_json(SURROGATE_ANSWER)}) as server:
        exporter = start_exporter(clusters_on(server.url), poll_interval=0.5)
        exporter.wait_for_cycles(2)
        raw = requests.get(exporter.url + "/metrics", timeout=5).content
        raw.decode("utf-8")  # strict: a lone surrogate would not survive encoding at all
        parsed = exporter.scrape()
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(BAD)) == 1
        failed = series(parsed, "milvus_refresh_job_failure_info")
        assert [(found["collection"], found["reason"]) for found in failed] == [
            ("c\ufffdx", "bad \ufffd thing")
        ]


def test_an_unreadable_record_is_skipped_and_counted_and_the_target_stays_up(start_exporter):
    broken = hostile.records(
        hostile.refresh_record(1, "ext_ok"),
        hostile.refresh_record(2, "ext_seconds", startTime=1_732_358_400),
        hostile.refresh_record(3, "ext_noon", endTime="noon"),
    )
    with hostile.hostile_server({BAD: broken}) as server:
        exporter = start_exporter(clusters_on(server.url))
        parsed = exporter.scrape()
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(BAD)) == 1
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_skipped_records_total",
                **labels(BAD),
                reason="bad_time",
            )
            == 2
        )
        collections = {found["collection"] for found in series(parsed, "milvus_refresh_jobs")}
        assert "ext_ok" in collections
        assert not {"ext_seconds", "ext_noon"} & collections


def test_new_collection_names_on_every_poll_stay_within_the_collection_limit(start_exporter):
    with hostile.hostile_server({BAD: hostile.new_collections_each_poll(40)}) as server:
        exporter = start_exporter(
            clusters_on(server.url), poll_interval=0.3, max_tracked_collections=100
        )
        parsed = wait_for_scrape(
            exporter,
            lambda p: (
                (value(p, "milvus_jobs_exporter_forgotten_collections_total", reason="limit") or 0)
                >= 40
            ),
            15,
            "collections to be forgotten",
        )
        assert value(parsed, "milvus_jobs_exporter_tracked_collections") <= 100
        assert len(series(parsed, "milvus_refresh_last_success_timestamp_seconds")) <= 100


def test_a_token_quoted_in_a_failure_reason_never_reaches_a_label(start_exporter):
    leaky = hostile.records(
        hostile.refresh_record(
            1, "ext_books", "RefreshFailed", reason=f"auth header 'Bearer {TOKEN_A}' refused"
        )
    )
    with hostile.hostile_server({BAD: leaky}) as server:
        exporter = start_exporter(clusters_on(server.url))
        body = requests.get(exporter.url + "/metrics", timeout=5).text
        assert TOKEN_A not in body
        (failed,) = series(exporter.scrape(), "milvus_refresh_job_failure_info")
        assert failed["reason"] == "auth header 'Bearer <redacted>' refused"


def test_the_configured_token_wins_over_a_netrc_entry(start_exporter, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    with hostile.hostile_server({}) as server:
        start_exporter(clusters_on(server.url))
        sent = {exchange.headers.get("authorization") for exchange in server.seen}
        assert sent == {f"Bearer {TOKEN_A}"}


def test_a_connection_reset_mid_body_is_reported_as_reset(start_exporter):
    with hostile.hostile_server({BAD: hostile.reset_mid_body}) as server:
        exporter = start_exporter(clusters_on(server.url), poll_interval=1.0, request_timeout=0.8)
        parsed = exporter.scrape()
        assert error_reason(parsed, BAD) == "reset"
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(GOOD)) == 1


def test_check_reports_targets_the_round_had_no_time_for_instead_of_waiting(tmp_path):
    with hostile.hostile_server({}) as server:
        path = tmp_path / "config.yaml"
        path.write_text(
            "poll_interval: 500ms\nrequest_timeout: 500ms\nrequests_per_second: 1\n"
            f"clusters:\n  - name: prod\n    endpoint: {server.url}\n    token: {TOKEN_A}\n"
            "    databases: [a, b, c]\n    jobs: [refresh]\n"
        )
        started = time.monotonic()
        result = run("check", "--config", str(path))
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 10
    assert result.stdout.count("error: deadline") == 2, result.stdout
    assert result.stdout.splitlines()[-1] == "1 of 3 targets ok"


def test_a_token_that_also_names_a_field_never_hides_the_answer(start_exporter):
    """Redaction cleans values, not keys: a token such as "data" once emptied every answer."""
    with hostile.hostile_server({}) as server:
        cluster = ClusterConfig(
            name="prod", endpoint=server.url, token="data", databases=(GOOD,), jobs=("refresh",)
        )
        exporter = start_exporter(cluster)
        parsed = exporter.scrape()
        assert (
            value(
                parsed,
                "milvus_refresh_jobs",
                milvus_cluster="prod",
                database=GOOD,
                collection="ext_ok",
                state="RefreshCompleted",
            )
            == 1
        )
