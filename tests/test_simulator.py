"""The simulator behaves like the upstream job API, as seen over real HTTP on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import requests

from exporter.simulator import (
    FLAVORS,
    Fault,
    Simulator,
    SimulatorOptions,
    SimulatorServer,
    add_arguments,
    options_from_args,
    parse_listen,
)

REFRESH_LIST = "/v2/vectordb/jobs/external_collection/list"
REFRESH_DESCRIBE = "/v2/vectordb/jobs/external_collection/describe"
REFRESH_START = "/v2/vectordb/jobs/external_collection/refresh"
IMPORT_LIST = "/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE = "/v2/vectordb/jobs/import/describe"
DATABASE_LIST = "/v2/vectordb/databases/list"
COLLECTION_LIST = "/v2/vectordb/collections/list"

REFRESH_STATES = {"RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed"}
IMPORT_STATES = {"Pending", "Importing", "Completed", "Failed", "Uncommitted", "Committing"}
START = 1_712_832_000.0


class FakeClock:
    """Real seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve(clock: FakeClock) -> Iterator[Callable[..., tuple[Simulator, SimulatorServer]]]:
    """Start simulators with option overrides (fake clock by default); stop them afterwards."""
    servers: list[SimulatorServer] = []

    def start(**overrides: Any) -> tuple[Simulator, SimulatorServer]:
        options = SimulatorOptions(clock=clock, auto_refresh=False)
        simulator = Simulator(replace(options, **overrides))
        server = simulator.serve("127.0.0.1", 0)
        servers.append(server)
        return simulator, server

    yield start
    for server in servers:
        server.shutdown()


def post(
    server: SimulatorServer,
    path: str,
    body: object,
    token: str | None = "demo-token",
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    sent = {"Authorization": f"Bearer {token}"} if token is not None else {}
    sent.update(headers or {})
    return requests.post(server.url + path, json=body, headers=sent, timeout=timeout)


def records(response: requests.Response) -> list[dict[str, Any]]:
    payload = json.loads(response.text)
    assert payload["code"] == 0, payload
    return list(payload["data"]["records"])


def refresh_of(server: SimulatorServer, job_id: int) -> dict[str, Any]:
    payload = json.loads(post(server, REFRESH_DESCRIBE, {"jobId": job_id}).text)
    assert payload["code"] == 0, payload
    return dict(payload["data"])


def import_of(server: SimulatorServer, job_id: str) -> dict[str, Any]:
    payload = post(server, IMPORT_DESCRIBE, {"jobId": job_id}).json()
    assert payload["code"] == 0, payload
    return dict(payload["data"])


def epoch_of(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": "Basic demo-token"}, id="not-bearer"),
    ],
)
def test_requests_without_a_valid_token_get_http_401_and_code_1800(serve, headers):
    _, server = serve()
    response = requests.post(server.url + REFRESH_LIST, json={}, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == 1800


def test_user_and_password_tokens_are_accepted_like_api_keys(serve):
    _, server = serve(tokens=("api-key", "root:Milvus"))
    assert post(server, REFRESH_LIST, {}, token="root:Milvus").json()["code"] == 0
    assert post(server, REFRESH_LIST, {}, token="api-key").json()["code"] == 0


# -- external collection refresh jobs ----------------------------------------------------------


def test_list_returns_int64_job_ids_above_2_pow_53(serve):
    _, server = serve()
    job_ids = [record["jobId"] for record in records(post(server, REFRESH_LIST, {}))]
    assert job_ids
    assert all(isinstance(job_id, int) and job_id > 2**53 for job_id in job_ids)
    assert any(int(float(job_id)) != job_id for job_id in job_ids), "ids must not fit a float"
    assert refresh_of(server, job_ids[0])["jobId"] == job_ids[0]


def test_refresh_list_records_have_the_documented_shape_newest_first(serve):
    _, server = serve()
    found = records(post(server, REFRESH_LIST, {"dbName": "default"}))
    assert len(found) == 4 * 3
    start_times = [record["startTime"] for record in found]
    assert start_times == sorted(start_times, reverse=True)
    for record in found:
        assert record["state"] in REFRESH_STATES
        assert record["collectionName"].startswith("ext_")
        assert 0 <= record["progress"] <= 100
        assert json.loads(record["externalSource"])["path"]
        assert isinstance(record["externalSpec"], str)
        assert record["startTime"] > 1_000_000_000_000, "epoch milliseconds"
        finished = record["state"] in ("RefreshCompleted", "RefreshFailed")
        assert (record["endTime"] >= record["startTime"]) if finished else record["endTime"] == 0
        assert ("reason" in record) == (record["state"] == "RefreshFailed")
        if record["state"] != "RefreshCompleted":
            assert record["progress"] <= 99


def test_refresh_list_filters_by_collection(serve):
    _, server = serve()
    found = records(
        post(server, REFRESH_LIST, {"dbName": "analytics", "collectionName": "ext_movies"})
    )
    assert {record["collectionName"] for record in found} == {"ext_movies"}


def test_unknown_database_answers_http_200_with_code_800(serve):
    _, server = serve()
    response = post(server, REFRESH_LIST, {"dbName": "nope"})
    assert response.status_code == 200
    assert response.json() == {"code": 800, "message": "database not found[database=nope]"}


def test_unknown_collection_answers_code_100(serve):
    _, server = serve()
    assert post(server, REFRESH_LIST, {"collectionName": "ext_nope"}).json()["code"] == 100
    assert post(server, REFRESH_START, {"collectionName": "ext_nope"}).json()["code"] == 100


@pytest.mark.parametrize("flavor", FLAVORS)
def test_refresh_describe_takes_the_job_id_as_a_json_number(serve, flavor):
    _, server = serve(flavor=flavor)
    job_id = records(post(server, REFRESH_LIST, {}))[0]["jobId"]
    payload = post(server, REFRESH_DESCRIBE, {"jobId": job_id}).json()
    assert payload["code"] == 0
    assert payload["data"]["jobId"] == job_id


@pytest.mark.parametrize("flavor", FLAVORS)
def test_describe_of_an_unknown_refresh_job_answers_code_1100(serve, flavor):
    _, server = serve(flavor=flavor)
    payload = post(server, REFRESH_DESCRIBE, {"jobId": 449503829274509301}).json()
    assert payload == {"code": 1100, "message": "refresh job 449503829274509301 not found"}


def test_refresh_starts_a_job_and_refuses_a_second_while_it_runs(serve, clock):
    _, server = serve(hang_probability=0.0)
    clock.advance(7200)
    body = {"dbName": "default", "collectionName": "ext_books"}
    started = post(server, REFRESH_START, body).json()
    assert started["code"] == 0
    assert refresh_of(server, started["data"]["jobId"])["state"] == "RefreshPending"
    assert post(server, REFRESH_START, body).json()["code"] == 703


def test_refresh_needs_both_external_source_and_spec_or_neither(serve, clock):
    _, server = serve()
    clock.advance(7200)
    source = json.dumps({"type": "volume", "path": "volume://my-volume/books-v2"})
    body = {"collectionName": "ext_books", "externalSource": source}
    assert post(server, REFRESH_START, body).json()["code"] == 1100
    body["externalSpec"] = json.dumps({"format": "parquet", "secretKey": "s3cr3t"})
    job_id = post(server, REFRESH_START, body).json()["data"]["jobId"]
    record = refresh_of(server, job_id)
    assert record["externalSource"] == source
    assert "s3cr3t" not in record["externalSpec"]


def test_a_body_that_is_not_json_answers_code_1801(serve):
    _, server = serve()
    response = requests.post(
        server.url + REFRESH_LIST,
        data="dbName=default",
        headers={"Authorization": "Bearer demo-token"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["code"] == 1801


def test_an_unknown_path_answers_404_with_json(serve):
    _, server = serve()
    response = post(server, "/v2/vectordb/jobs/nothing/list", {})
    assert response.status_code == 404
    assert "message" in response.json()


# -- imports ------------------------------------------------------------------------------------


def test_import_list_returns_job_ids_as_strings_of_digits(serve):
    _, server = serve()
    found = records(post(server, IMPORT_LIST, {"dbName": "default"}))
    assert len(found) == 5
    for record in found:
        assert isinstance(record["jobId"], str) and record["jobId"].isdigit()
        assert record["state"] in IMPORT_STATES
        assert 0 <= record["progress"] <= 100
        assert ("reason" in record) == (record["state"] == "Failed")
        assert "startTime" not in record


def test_import_describe_adds_rows_times_and_file_details(serve):
    _, server = serve()
    job_id = records(post(server, IMPORT_LIST, {}))[0]["jobId"]
    payload = post(server, IMPORT_DESCRIBE, {"jobId": job_id}).json()
    assert payload["code"] == 0
    job = payload["data"]
    assert job["jobId"] == job_id
    assert job["totalRows"] >= job["importedRows"] >= 0
    assert job["createTime"].endswith("Z") and job["createTime"][4] == "-"
    assert (job["completeTime"] != "") == (job["state"] == "Completed")
    assert job["details"] and {"fileName", "fileSize", "progress", "state"} <= set(
        job["details"][0]
    )
    assert post(server, IMPORT_DESCRIBE, {"jobId": "1"}).json()["code"] == 2100


def test_import_paging_answers_count_current_page_and_page_size(serve):
    _, server = serve(import_paging=True, import_jobs_per_database=25)
    first = post(server, IMPORT_LIST, {}).json()["data"]
    assert (first["count"], first["currentPage"], first["pageSize"]) == (25, 1, 10)
    assert len(first["records"]) == 10
    last = post(server, IMPORT_LIST, {"pageSize": 20, "currentPage": 2}).json()["data"]
    assert len(last["records"]) == 5
    seen = {record["jobId"] for record in first["records"] + last["records"]}
    assert len(seen) == 15
    assert post(server, IMPORT_LIST, {"pageSize": 101}).json()["code"] == 1100


def test_import_jobs_move_from_pending_to_a_final_state(serve, clock):
    _, server = serve(auto_refresh=True, import_jobs_per_database=5)
    clock.advance(3 * 3600)
    found = records(post(server, IMPORT_LIST, {}))
    assert found, "automatic imports keep arriving"
    clock.advance(3600)
    for record in found:
        final = post(server, IMPORT_DESCRIBE, {"jobId": record["jobId"]}).json()["data"]
        assert final["state"] in ("Completed", "Failed")


# -- envelope variants --------------------------------------------------------------------------


def test_legacy_success_code_answers_200_in_the_envelope(serve):
    _, server = serve(legacy_success_code=True)
    assert post(server, REFRESH_LIST, {}).json()["code"] == 200
    assert post(server, IMPORT_LIST, {}).json()["code"] == 200
    assert post(server, REFRESH_LIST, {"dbName": "nope"}).json()["code"] == 800


# -- time ---------------------------------------------------------------------------------------


def test_a_refresh_moves_from_pending_to_completed_as_simulated_time_passes(serve, clock):
    simulator, server = serve(time_scale=60)
    job_id = simulator.start_refresh("default", "ext_books", "completed", duration_seconds=600)
    assert refresh_of(server, job_id)["state"] == "RefreshPending"
    clock.advance(2)
    early = refresh_of(server, job_id)
    clock.advance(3)
    later = refresh_of(server, job_id)
    assert early["state"] == later["state"] == "RefreshInProgress"
    assert 0 <= early["progress"] < later["progress"] <= 99
    clock.advance(10)
    done = refresh_of(server, job_id)
    assert (done["state"], done["progress"]) == ("RefreshCompleted", 100)
    assert done["endTime"] - done["startTime"] == 600_000


def test_start_refresh_with_outcome_failed_ends_refresh_failed_with_its_reason(serve, clock):
    simulator, server = serve()
    job_id = simulator.start_refresh(
        "analytics",
        "ext_music",
        outcome="failed",
        duration_seconds=5,
        reason="iceberg snapshot 123 not found",
    )
    clock.advance(6)
    record = refresh_of(server, job_id)
    assert record["state"] == "RefreshFailed"
    assert record["reason"] == "iceberg snapshot 123 not found"
    assert record["progress"] <= 99 and record["endTime"] > 0


def test_start_refresh_with_outcome_hang_never_finishes(serve, clock):
    simulator, server = serve()
    job_id = simulator.start_refresh("default", "ext_news", outcome="hang", duration_seconds=10)
    clock.advance(30 * 24 * 3600)
    record = refresh_of(server, job_id)
    assert record["state"] == "RefreshInProgress"
    assert record["endTime"] == 0


def test_finished_refresh_jobs_drop_out_after_about_a_day(serve, clock):
    simulator, server = serve()
    job_id = simulator.start_refresh("default", "ext_books", duration_seconds=10)
    clock.advance(3600)
    assert job_id in {record["jobId"] for record in records(post(server, REFRESH_LIST, {}))}
    clock.advance(25 * 3600)
    assert job_id not in {record["jobId"] for record in records(post(server, REFRESH_LIST, {}))}
    assert post(server, REFRESH_DESCRIBE, {"jobId": job_id}).json()["code"] == 1100


def test_auto_refresh_starts_new_jobs_only_when_enabled(serve, clock):
    _, automatic = serve(auto_refresh=True, hang_probability=0.0)
    _, manual = serve(auto_refresh=False)
    before = {
        name: {record["jobId"] for record in records(post(server, REFRESH_LIST, {}))}
        for name, server in (("automatic", automatic), ("manual", manual))
    }
    clock.advance(6 * 3600)
    after_automatic = {record["jobId"] for record in records(post(automatic, REFRESH_LIST, {}))}
    after_manual = {record["jobId"] for record in records(post(manual, REFRESH_LIST, {}))}
    assert after_automatic - before["automatic"]
    assert after_manual == before["manual"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_same_seed_and_clock_give_identical_answers(serve, flavor):
    _, first = serve(seed=42, auto_refresh=True, flavor=flavor)
    _, second = serve(seed=42, auto_refresh=True, flavor=flavor)
    _, other = serve(seed=43, auto_refresh=True, flavor=flavor)
    for path in (REFRESH_LIST, IMPORT_LIST):
        assert post(first, path, {}).content == post(second, path, {}).content
        assert post(first, path, {}).content != post(other, path, {}).content


# -- rate limiting ------------------------------------------------------------------------------


def test_rate_limit_triggers_above_20_requests_per_second_per_token_and_path(serve):
    _, server = serve()
    statuses = [post(server, REFRESH_LIST, {}).status_code for _ in range(21)]
    assert statuses[:20] == [200] * 20
    limited = post(server, REFRESH_LIST, {})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


def test_rate_limit_counts_tokens_and_paths_separately_and_slides_after_a_second(serve, clock):
    _, server = serve(tokens=("first", "second"))
    for _ in range(20):
        assert post(server, REFRESH_LIST, {}, token="first").status_code == 200
    assert post(server, REFRESH_LIST, {}, token="first").status_code == 429
    assert post(server, REFRESH_LIST, {}, token="second").status_code == 200
    assert post(server, IMPORT_LIST, {}, token="first").status_code == 200
    clock.advance(0.5)
    assert post(server, REFRESH_LIST, {}, token="first").status_code == 429
    clock.advance(0.5)
    assert post(server, REFRESH_LIST, {}, token="first").status_code == 200


@pytest.mark.parametrize("style, code", [("code_1807", 1807), ("code_8", 8)])
def test_rate_limit_can_answer_http_200_with_an_error_code(serve, style, code):
    _, server = serve(rate_limit_style=style, requests_per_second=2)
    answers = [post(server, IMPORT_LIST, {}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json()["code"] for answer in answers] == [0, 0, code]


def test_request_log_records_who_asked_what_and_the_answer(serve, clock):
    simulator, server = serve()
    post(server, REFRESH_LIST, {"dbName": "analytics"})
    post(server, IMPORT_LIST, {}, token="wrong")
    first, second = simulator.request_log()
    assert (first.arrival, first.token, first.path) == (START, "demo-token", REFRESH_LIST)
    assert (first.database, first.status, first.code) == ("analytics", 200, 0)
    assert (second.token, second.status, second.code) == ("wrong", 401, 1800)


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, status, check",
    [
        pytest.param("http_500", 500, lambda text: json.loads(text)["code"] != 0, id="http_500"),
        pytest.param("http_503", 503, lambda text: "upstream" in text, id="http_503"),
        pytest.param("http_502_html", 502, lambda text: "<html>" in text, id="http_502_html"),
        pytest.param("html_200", 200, lambda text: "<html>" in text, id="html_200"),
        pytest.param("auth", 401, lambda text: json.loads(text)["code"] == 1800, id="auth"),
        pytest.param("rate_limited", 429, lambda text: json.loads(text)["code"] == 1807, id="rate"),
        pytest.param(
            "db_not_found",
            200,
            lambda text: json.loads(text)["message"] == "database not found[database=default]",
            id="db_not_found",
        ),
    ],
)
def test_replacing_faults_answer_instead_of_the_server(serve, kind, status, check):
    simulator, server = serve()
    simulator.set_fault(Fault(kind))
    response = post(server, REFRESH_LIST, {})
    assert response.status_code == status
    assert check(response.text)


def test_truncated_json_fault_sends_half_a_json_body(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("truncated_json"), path=IMPORT_LIST)
    response = post(server, IMPORT_LIST, {})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert post(server, REFRESH_LIST, {}).json()["code"] == 0


def test_wrong_types_fault_breaks_field_types_in_records(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("wrong_types"))
    found = records(post(server, REFRESH_LIST, {}))
    assert isinstance(found[0]["progress"], dict)
    assert isinstance(found[1]["state"], int)
    assert isinstance(found[2]["jobId"], list)


def test_unknown_state_fault_reports_a_state_outside_the_documented_set(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("unknown_state"), database="default")
    assert {record["state"] for record in records(post(server, REFRESH_LIST, {}))} == {
        "RefreshPaused"
    }
    analytics = records(post(server, REFRESH_LIST, {"dbName": "analytics"}))
    assert {record["state"] for record in analytics} <= REFRESH_STATES


def test_faults_for_one_database_leave_the_others_alone_until_cleared(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("http_500"), database="analytics")
    assert post(server, REFRESH_LIST, {"dbName": "analytics"}).status_code == 500
    assert post(server, REFRESH_LIST, {"dbName": "default"}).status_code == 200
    simulator.clear_faults()
    assert post(server, REFRESH_LIST, {"dbName": "analytics"}).status_code == 200


def test_timeout_fault_makes_the_client_time_out(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("timeout", seconds=30))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(server, REFRESH_LIST, {}, timeout=0.3)


def test_connection_close_fault_closes_the_socket_without_an_answer(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("connection_close"))
    with pytest.raises(requests.exceptions.ConnectionError):
        post(server, REFRESH_LIST, {})


def test_huge_body_fault_streams_a_valid_json_body_of_the_requested_size(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("huge_body", size_bytes=2_000_000))
    response = post(server, REFRESH_LIST, {})
    assert len(response.content) == 2_000_000
    assert len(records(response)) > 1000


def test_hang_mid_body_fault_sends_half_then_stalls(serve):
    simulator, server = serve()
    simulator.set_fault(Fault("hang_mid_body", seconds=0.5))
    started = time.monotonic()
    response = post(server, REFRESH_LIST, {})
    assert time.monotonic() - started >= 0.45
    assert records(response)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(server, REFRESH_LIST, {}, timeout=0.2)


def test_shutdown_returns_promptly_while_a_handler_hangs(clock):
    simulator = Simulator(SimulatorOptions(clock=clock))
    simulator.set_fault(Fault("timeout", seconds=60))
    with simulator.serve("127.0.0.1", 0) as server:
        with pytest.raises(requests.exceptions.ReadTimeout):
            post(server, REFRESH_LIST, {}, timeout=0.2)
        started = time.monotonic()
    assert time.monotonic() - started < 2


# -- control API ------------------------------------------------------------------------------


def test_control_api_drives_refreshes_faults_and_the_request_log(serve, clock):
    _, server = serve()
    base = server.url + "/_simulator"
    assert requests.get(base + "/health", timeout=5).json() == {"ok": True}
    started = requests.post(
        base + "/refresh",
        json={
            "dbName": "default",
            "collectionName": "ext_books",
            "outcome": "failed",
            "durationSeconds": 1,
            "reason": "permission denied reading volume://my-volume/books",
        },
        timeout=5,
    ).json()
    clock.advance(2)
    assert refresh_of(server, started["jobId"])["state"] == "RefreshFailed"
    fault = {"kind": "http_503", "database": "default", "path": "import/list"}
    assert requests.post(base + "/faults", json=fault, timeout=5).json() == {"ok": True}
    assert post(server, IMPORT_LIST, {}).status_code == 503
    assert requests.delete(base + "/faults", timeout=5).ok
    assert post(server, IMPORT_LIST, {}).status_code == 200
    logged = requests.get(base + "/requests", timeout=5).json()["requests"]
    assert [entry["status"] for entry in logged[-2:]] == [503, 200]
    assert requests.post(base + "/faults", json={"kind": "bogus"}, timeout=5).status_code == 400


def test_added_databases_answer_like_the_others(serve):
    simulator, server = serve()
    assert post(server, REFRESH_LIST, {"dbName": "new_db"}).json()["code"] == 800
    simulator.add_database("new_db", collections=2)
    found = records(post(server, REFRESH_LIST, {"dbName": "new_db"}))
    assert {record["collectionName"] for record in found} == {"ext_books", "ext_movies"}


# -- command line -----------------------------------------------------------------------------


def test_command_line_flags_become_simulator_options():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--listen=127.0.0.1:0",
            "--seed=3",
            "--databases=a,b",
            "--tokens=t1,user:pw",
            "--time-scale=60",
            "--requests-per-second=0",
            "--rate-limit-style=code_8",
            "--import-paging",
            "--legacy-success-code",
            "--failure-probability=0.5",
            "--dropped-collections=a/ext_books,b/books",
        ]
    )
    options = options_from_args(args)
    assert (options.seed, options.databases, options.tokens) == (3, ("a", "b"), ("t1", "user:pw"))
    assert (options.time_scale, options.requests_per_second) == (60.0, None)
    assert (options.rate_limit_style, options.import_paging, options.legacy_success_code) == (
        "code_8",
        True,
        True,
    )
    assert options.failure_probability == 0.5
    assert options.dropped_collections == ("a/ext_books", "b/books")
    assert parse_listen(args.listen) == ("127.0.0.1", 0)


def test_flavor_and_the_knobs_that_override_it_come_from_the_command_line():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = options_from_args(parser.parse_args([]))
    assert (defaults.flavor, defaults.rate_limit_style, defaults.utc_offset_minutes) == (
        "zilliz",
        None,
        None,
    )
    options = options_from_args(
        parser.parse_args(
            [
                "--flavor=milvus",
                "--utc-offset=-05:30",
                "--rate-limit-scope=every_endpoint",
                "--manual-commit-probability=0.5",
            ]
        )
    )
    assert (options.flavor, options.utc_offset_minutes, options.rate_limit_scope) == (
        "milvus",
        -330,
        "every_endpoint",
    )
    assert options.manual_commit_probability == 0.5
    assert options_from_args(parser.parse_args(["--utc-offset=Z"])).utc_offset_minutes == 0
    for bad in ("--flavor=oss", "--utc-offset=+8", "--utc-offset=+15:00", "--utc-offset=+08:75"):
        with pytest.raises(SystemExit):
            parser.parse_args([bad])


# -- what both flavours share (the same server code computes it) -------------------------------

IMPORT_PROGRESS_RANGES = {
    "Pending": (0, 10),
    "Importing": (10, 99),
    "Uncommitted": (99, 99),
    "Committing": (99, 99),
    "Completed": (100, 100),
    "Failed": (0, 0),
    "None": (0, 0),
}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_import_progress_stays_within_the_range_of_its_state_as_time_passes(serve, clock, flavor):
    _, server = serve(
        flavor=flavor,
        auto_refresh=True,
        import_jobs_per_database=40,
        failure_probability=0.3,
        manual_commit_probability=0.5,
    )
    seen: set[str] = set()
    for _ in range(40):
        for record in records(post(server, IMPORT_LIST, {})):
            low, high = IMPORT_PROGRESS_RANGES[record["state"]]
            assert low <= record["progress"] <= high, record
            seen.add(record["state"])
        clock.advance(97)
    assert {"Importing", "Completed", "Failed", "Uncommitted"} <= seen


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_import_with_auto_commit_off_waits_uncommitted_then_committing_at_99(
    serve, clock, flavor
):
    simulator, server = serve(flavor=flavor)
    job_id = simulator.start_import("default", outcome="manual_commit", duration_seconds=100)
    seen = []
    for step in (0, 30, 30, 35, 10):
        clock.advance(step)
        job = import_of(server, job_id)
        seen.append((job["state"], job["progress"]))
    assert [state for state, _ in seen] == [
        "Pending",
        "Importing",
        "Uncommitted",
        "Committing",
        "Completed",
    ]
    assert seen[0][1] <= 10 and 10 <= seen[1][1] < 99
    assert seen[2:] == [("Uncommitted", 99), ("Committing", 99), ("Completed", 100)]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_imports_with_auto_commit_on_never_show_uncommitted_or_committing(serve, clock, flavor):
    _, server = serve(
        flavor=flavor, auto_refresh=True, import_jobs_per_database=30, manual_commit_probability=0
    )
    states: set[str] = set()
    for _ in range(30):
        states |= {record["state"] for record in records(post(server, IMPORT_LIST, {}))}
        clock.advance(120)
    assert "Completed" in states
    assert not states & {"Uncommitted", "Committing"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_failed_import_reports_progress_0_no_rows_and_no_completion_time(serve, clock, flavor):
    simulator, server = serve(flavor=flavor)
    job_id = simulator.start_import(
        "analytics", "movies", outcome="failed", duration_seconds=10, reason="disk quota exceeded"
    )
    clock.advance(8)  # progress 47: pre-import has ended, so rows are counted
    running = import_of(server, job_id)
    assert running["state"] == "Importing" and running["importedRows"] > 0
    clock.advance(7)
    job = import_of(server, job_id)
    assert (job["state"], job["progress"], job["importedRows"], job["totalRows"]) == (
        "Failed",
        0,
        0,
        0,
    )
    assert (job["completeTime"], job["reason"]) == ("", "disk quota exceeded")
    listed = [
        record
        for record in records(post(server, IMPORT_LIST, {"dbName": "analytics"}))
        if record["jobId"] == job_id
    ]
    assert listed == [
        {
            "jobId": job_id,
            "collectionName": "movies",
            "state": "Failed",
            "progress": 0,
            "reason": "disk quota exceeded",
        }
    ]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_reason_key_is_left_out_unless_an_import_failed(serve, flavor):
    _, server = serve(
        flavor=flavor,
        import_jobs_per_database=30,
        failure_probability=0.5,
        requests_per_second=None,  # the fake clock stands still: every describe in one second
    )
    listed = records(post(server, IMPORT_LIST, {}))
    assert {"Failed"} < {record["state"] for record in listed}
    for record in listed:
        failed = record["state"] == "Failed"
        assert ("reason" in record) == failed
        job = import_of(server, record["jobId"])
        assert ("reason" in job) == failed
        assert all(detail.get("reason", "left out") != "" for detail in job["details"])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_import_in_a_state_the_server_cannot_name_shows_none_with_progress_0(
    serve, clock, flavor
):
    simulator, server = serve(flavor=flavor)
    job_id = simulator.start_import("default", outcome="unknown_state")
    clock.advance(24 * 3600)
    listed = {record["jobId"]: record for record in records(post(server, IMPORT_LIST, {}))}
    assert (listed[job_id]["state"], listed[job_id]["progress"]) == ("None", 0)
    job = import_of(server, job_id)
    assert (job["state"], job["progress"], job["completeTime"]) == ("None", 0, "")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_unknown_or_expired_import_job_answers_code_2100(serve, clock, flavor):
    simulator, server = serve(flavor=flavor)
    payload = post(server, IMPORT_DESCRIBE, {"jobId": "448761313698322011"}).json()
    assert payload == {
        "code": 2100,
        "message": "import job does not exist, jobID=448761313698322011",
    }
    job_id = simulator.start_import("default", duration_seconds=10)
    clock.advance(60)
    assert import_of(server, job_id)["state"] == "Completed"
    clock.advance(3 * 3600)
    assert post(server, IMPORT_DESCRIBE, {"jobId": job_id}).json()["code"] == 2100


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        pytest.param(IMPORT_DESCRIBE, {"jobId": 448761313698322011}, 1801, id="numeric-import-id"),
        pytest.param(REFRESH_DESCRIBE, {"jobId": "449503829274509301"}, 1801, id="text-refresh-id"),
        pytest.param(REFRESH_DESCRIBE, {"jobId": 4.5e17}, 1801, id="fractional-refresh-id"),
        pytest.param(REFRESH_DESCRIBE, {"jobId": True}, 1801, id="boolean-refresh-id"),
        pytest.param(REFRESH_LIST, {"dbName": 7}, 1801, id="numeric-database"),
        pytest.param(IMPORT_LIST, {"collectionName": ["books"]}, 1801, id="list-collection"),
        pytest.param(IMPORT_DESCRIBE, {}, 1802, id="no-import-id"),
        pytest.param(IMPORT_DESCRIBE, {"jobId": ""}, 1802, id="empty-import-id"),
        pytest.param(REFRESH_DESCRIBE, {"jobId": None}, 1802, id="null-refresh-id"),
        pytest.param(REFRESH_START, {"dbName": "default"}, 1802, id="no-collection"),
    ],
)
def test_a_field_of_the_wrong_json_type_answers_1801_and_a_missing_one_1802(
    serve, flavor, path, body, code
):
    _, server = serve(flavor=flavor)
    response = post(server, path, body)
    assert response.status_code == 200
    assert response.json()["code"] == code


def test_milvus_flavour_refuses_a_string_refresh_job_id_with_1801(serve):
    _, server = serve(flavor="milvus")
    job_id = records(post(server, REFRESH_LIST, {}))[0]["jobId"]
    payload = post(server, REFRESH_DESCRIBE, {"jobId": str(job_id)}).json()
    assert payload["code"] == 1801
    assert "cannot unmarshal string" in payload["message"]


def test_milvus_flavour_refuses_a_numeric_import_job_id_with_1801(serve):
    _, server = serve(flavor="milvus")
    job_id = records(post(server, IMPORT_LIST, {}))[0]["jobId"]
    assert post(server, IMPORT_DESCRIBE, {"jobId": int(job_id)}).json()["code"] == 1801
    assert post(server, IMPORT_DESCRIBE, {"jobId": job_id}).json()["code"] == 0


# -- the database list, and databases that come and go ---------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_databases_list_names_every_database_behind_the_same_bearer_auth(serve, flavor):
    _, server = serve(flavor=flavor)
    response = post(server, DATABASE_LIST, {})
    assert response.json() == {"code": 0, "data": ["default", "analytics"]}
    assert post(server, DATABASE_LIST, {}, token="wrong").status_code == 401


@pytest.mark.parametrize("flavor", FLAVORS)
def test_databases_added_and_dropped_through_the_control_api_come_and_go_everywhere(serve, flavor):
    _, server = serve(flavor=flavor)
    control = server.url + "/_simulator/databases"
    added = requests.post(control, json={"name": "sales", "collections": 2}, timeout=5)
    assert added.json() == {"ok": True}
    assert post(server, DATABASE_LIST, {}).json()["data"] == ["default", "analytics", "sales"]
    refresh_id = records(post(server, REFRESH_LIST, {"dbName": "sales"}))[0]["jobId"]
    import_id = records(post(server, IMPORT_LIST, {"dbName": "sales"}))[0]["jobId"]

    assert requests.delete(control + "/sales", timeout=5).json() == {"ok": True}
    assert post(server, DATABASE_LIST, {}).json()["data"] == ["default", "analytics"]
    for path in (REFRESH_LIST, IMPORT_LIST, REFRESH_START):
        payload = post(server, path, {"dbName": "sales", "collectionName": "ext_books"}).json()
        assert payload == {"code": 800, "message": "database not found[database=sales]"}
    assert post(server, REFRESH_DESCRIBE, {"jobId": refresh_id}).json()["code"] == 1100
    assert post(server, IMPORT_DESCRIBE, {"jobId": import_id}).json()["code"] == 2100
    assert requests.delete(control + "/sales", timeout=5).status_code == 404

    assert requests.post(control, json={"name": "sales"}, timeout=5).json() == {"ok": True}
    assert records(post(server, REFRESH_LIST, {"dbName": "sales"}))


def test_zilliz_flavour_rate_limits_the_database_list_like_every_endpoint(serve):
    _, server = serve(requests_per_second=2)
    assert [post(server, DATABASE_LIST, {}).status_code for _ in range(3)] == [200, 200, 429]


# -- the collections of a database, and collections that are dropped -------------------------


def collection_names(server: SimulatorServer, database: str = "default") -> list[str]:
    payload = post(server, COLLECTION_LIST, {"dbName": database}).json()
    assert payload["code"] == 0, payload
    return list(payload["data"])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_collections_list_names_every_collection_of_a_database_behind_the_same_auth(serve, flavor):
    _, server = serve(flavor=flavor, collections_per_database=2)
    assert post(server, COLLECTION_LIST, {"dbName": "default"}).json() == {
        "code": 0,
        "data": ["ext_books", "ext_movies", "books", "movies"],
    }
    unknown = post(server, COLLECTION_LIST, {"dbName": "nope"}).json()
    assert unknown == {"code": 800, "message": "database not found[database=nope]"}
    assert post(server, COLLECTION_LIST, {"dbName": "default"}, token="wrong").status_code == 401


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_dropped_collection_leaves_the_list_while_its_jobs_stay_listed_for_their_retention(
    serve, clock, flavor
):
    simulator, server = serve(flavor=flavor, collections_per_database=2, auto_refresh=True)
    control = server.url + "/_simulator/collections/default"
    simulator.start_import("default", "books", outcome="failed", duration_seconds=1)
    refreshes = {r["jobId"] for r in records(post(server, REFRESH_LIST, {})) if
                 r["collectionName"] == "ext_books"}  # fmt: skip
    imports = {r["jobId"] for r in records(post(server, IMPORT_LIST, {})) if
               r["collectionName"] == "books"}  # fmt: skip
    assert refreshes and imports

    for name in ("ext_books", "books"):
        assert requests.delete(f"{control}/{name}", timeout=5).json() == {"ok": True}
    assert collection_names(server) == ["ext_movies", "movies"]
    listed = records(post(server, REFRESH_LIST, {}))
    assert refreshes <= {r["jobId"] for r in listed}
    assert imports <= {r["jobId"] for r in records(post(server, IMPORT_LIST, {}))}
    for path in (REFRESH_LIST, REFRESH_START):
        answer = post(server, path, {"collectionName": "ext_books"}).json()
        assert answer["code"] == 100, answer
    assert requests.delete(f"{control}/ext_books", timeout=5).status_code == 404

    clock.advance(6 * 3600)  # automatic jobs go on for the others, never for a dropped one
    later = records(post(server, REFRESH_LIST, {}))
    assert {r["jobId"] for r in later if r["collectionName"] == "ext_books"} <= refreshes
    assert {r["jobId"] for r in later if r["collectionName"] == "ext_movies"} - {
        r["jobId"] for r in listed
    }
    clock.advance(25 * 3600)  # the server's usual day of memory, no longer
    assert not [r for r in records(post(server, REFRESH_LIST, {})) if
                r["collectionName"] == "ext_books"]  # fmt: skip


def test_collections_can_start_dropped_with_their_history_still_listed(serve):
    simulator, server = serve(dropped_collections=("analytics/ext_books",))
    assert "ext_books" not in collection_names(server, "analytics")
    assert "ext_books" in collection_names(server, "default")
    found = records(post(server, REFRESH_LIST, {"dbName": "analytics"}))
    assert "ext_books" in {record["collectionName"] for record in found}
    with pytest.raises(KeyError):
        simulator.drop_collection("analytics", "ext_books")
    with pytest.raises(ValueError, match="database/collection"):
        SimulatorOptions(dropped_collections=("no_slash",))


def test_zilliz_flavour_rate_limits_the_collections_list_like_every_endpoint(serve):
    _, server = serve(requests_per_second=2)
    statuses = [post(server, COLLECTION_LIST, {"dbName": "default"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_milvus_flavour_leaves_the_collections_list_unlimited(serve):
    _, server = serve(flavor="milvus", requests_per_second=2)
    codes = [post(server, COLLECTION_LIST, {"dbName": "default"}).json()["code"] for _ in range(5)]
    assert codes == [0] * 5


# -- flavour differences ----------------------------------------------------------------------


def test_milvus_flavour_rate_limits_only_the_refresh_trigger_with_http_200_and_code_1807(
    serve, clock
):
    _, server = serve(flavor="milvus", requests_per_second=2, hang_probability=0.0)
    clock.advance(7200)
    for path in (REFRESH_LIST, IMPORT_LIST, DATABASE_LIST):
        assert [post(server, path, {}).json()["code"] for _ in range(5)] == [0] * 5
    triggers = [
        post(server, REFRESH_START, {"collectionName": name})
        for name in ("ext_books", "ext_movies", "ext_music")
    ]
    assert [trigger.status_code for trigger in triggers] == [200, 200, 200]
    assert [trigger.json()["code"] for trigger in triggers] == [0, 0, 1807]
    assert triggers[2].json()["message"] == (
        "request is rejected by limiter, error: rate limit exceeded[rate=2]"
    )


def test_explicit_knobs_win_over_what_the_flavour_implies(serve):
    simulator, server = serve(
        flavor="milvus",
        requests_per_second=2,
        rate_limit_style="http_429",
        rate_limit_scope="every_endpoint",
        import_paging=True,
        utc_offset_minutes=-330,
    )
    assert [post(server, REFRESH_LIST, {}).status_code for _ in range(3)] == [200, 200, 429]
    paged = post(server, IMPORT_LIST, {}).json()["data"]
    assert {"count", "currentPage", "pageSize"} <= set(paged)
    job_id = simulator.start_import("default")
    assert import_of(server, job_id)["createTime"].endswith("-05:30")


def test_milvus_flavour_takes_an_external_source_uri_where_zilliz_wants_json(serve, clock):
    _, milvus = serve(flavor="milvus", hang_probability=0.0)
    _, zilliz = serve(flavor="zilliz", hang_probability=0.0)
    clock.advance(7200)
    source = "s3://minio.local:9000/bucket/books/"
    body = {"collectionName": "ext_books", "externalSource": source, "externalSpec": "{}"}
    started = post(milvus, REFRESH_START, body).json()
    assert started["code"] == 0
    assert refresh_of(milvus, started["data"]["jobId"])["externalSource"] == source
    refused = post(zilliz, REFRESH_START, body).json()
    assert refused["code"] == 1100 and "JSON" in refused["message"]


def test_milvus_flavour_invents_uri_sources_and_zilliz_json_ones(serve):
    _, milvus = serve(flavor="milvus")
    _, zilliz = serve(flavor="zilliz")
    for record in records(post(milvus, REFRESH_LIST, {})):
        assert record["externalSource"].startswith("s3://") and record["externalSource"][-1] == "/"
    for record in records(post(zilliz, REFRESH_LIST, {})):
        assert json.loads(record["externalSource"])["path"]


def test_milvus_flavour_writes_import_times_in_the_servers_own_offset(serve, clock):
    simulator, server = serve(flavor="milvus")
    job_id = simulator.start_import("default", duration_seconds=10)
    clock.advance(20)
    job = import_of(server, job_id)
    assert job["createTime"].endswith("+08:00") and job["completeTime"].endswith("+08:00")
    assert (epoch_of(job["createTime"]), epoch_of(job["completeTime"])) == (START, START + 10)


def test_milvus_flavour_names_files_in_brackets_with_task_states(serve, clock):
    simulator, server = serve(flavor="milvus")
    running = simulator.start_import("default", "books", duration_seconds=100)
    failed = simulator.start_import(
        "default", "books", outcome="failed", duration_seconds=10, reason="disk quota exceeded"
    )
    assert import_of(server, running)["details"] == []  # pending: no import tasks yet
    clock.advance(60)
    importing = import_of(server, running)["details"]
    assert importing and {d["state"] for d in importing} <= {"InProgress", "Retry"}
    for detail in importing:
        assert detail["fileName"].startswith("[s3://bulk-import/books/")
        assert detail["fileName"].endswith(".parquet]")
    clock.advance(70)
    assert {d["state"] for d in import_of(server, running)["details"]} == {"Completed"}
    failed_files = import_of(server, failed)["details"]
    assert len(failed_files) == 2
    assert [(d["state"], d["reason"]) for d in failed_files] == [
        ("Failed", "disk quota exceeded")
    ] * 2


def test_milvus_flavour_shows_retry_among_the_task_states_of_running_imports(serve, clock):
    _, server = serve(flavor="milvus", auto_refresh=True, import_jobs_per_database=40)
    task_states: set[str] = set()
    for _ in range(20):
        for record in records(post(server, IMPORT_LIST, {})):
            if record["state"] == "Importing":
                task_states |= {d["state"] for d in import_of(server, record["jobId"])["details"]}
        clock.advance(300)
    assert {"InProgress", "Retry"} <= task_states


def test_zilliz_flavour_names_files_plainly_with_the_job_state(serve, clock):
    simulator, server = serve()
    failed = simulator.start_import(
        "default", "books", outcome="failed", duration_seconds=10, reason="disk quota exceeded"
    )
    clock.advance(20)
    first, second = import_of(server, failed)["details"]
    assert first["fileName"] == "s3://bulk-import/books/part-00000.parquet"
    assert (first["state"], first["reason"]) == ("Failed", "disk quota exceeded")
    assert second["state"] == "Failed" and "reason" not in second


def test_milvus_flavour_reads_the_database_from_the_db_name_header_when_the_body_has_none(serve):
    _, server = serve(flavor="milvus")
    analytics = post(server, IMPORT_LIST, {"dbName": "analytics"}).content
    default = post(server, IMPORT_LIST, {}).content
    assert analytics != default
    header = {"DB-Name": "analytics"}
    assert post(server, IMPORT_LIST, {}, headers=header).content == analytics
    assert post(server, IMPORT_LIST, {"dbName": ""}, headers=header).content == analytics
    assert post(server, IMPORT_LIST, {"dbName": "default"}, headers=header).content == default
    assert post(server, REFRESH_LIST, {}, headers={"DB-Name": "nope"}).json()["code"] == 800


def test_zilliz_flavour_ignores_the_db_name_header(serve):
    _, server = serve()
    default = post(server, IMPORT_LIST, {}).content
    assert post(server, IMPORT_LIST, {}, headers={"DB-Name": "analytics"}).content == default


def test_milvus_flavour_refuses_the_refresh_list_of_a_collection_that_is_not_external(serve):
    _, server = serve(flavor="milvus")
    payload = post(server, REFRESH_LIST, {"collectionName": "books"}).json()
    assert payload == {
        "code": 1100,
        "message": "collection is not an external collection[collection=books]",
    }
    assert post(server, REFRESH_LIST, {"collectionName": "nope"}).json()["code"] == 100


def test_zilliz_flavour_lists_no_refreshes_for_a_collection_that_is_not_external(serve):
    _, server = serve()
    assert records(post(server, REFRESH_LIST, {"collectionName": "books"})) == []


def test_milvus_flavour_answers_unknown_paths_with_a_plain_text_404(serve):
    _, server = serve(flavor="milvus")
    response = post(server, "/v2/vectordb/jobs/nothing/list", {})
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "404 page not found"


def test_milvus_flavour_never_pages_the_import_list(serve):
    _, server = serve(flavor="milvus", import_jobs_per_database=25)
    data = post(server, IMPORT_LIST, {"pageSize": 10, "currentPage": 2}).json()["data"]
    assert set(data) == {"records"} and len(data["records"]) == 25


# -- time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_job_times_never_run_ahead_of_the_real_clock_when_simulated_time_runs_faster(
    serve, clock, flavor
):
    simulator, server = serve(flavor=flavor, time_scale=60, auto_refresh=True)
    refresh_id = simulator.start_refresh("default", "ext_books", duration_seconds=600)
    import_id = simulator.start_import("default", duration_seconds=600)
    clock.advance(11)  # 660 simulated seconds: both ended 60 simulated seconds ago
    now_ms = clock.now * 1000
    for record in records(post(server, REFRESH_LIST, {})):
        assert record["startTime"] <= now_ms and record["endTime"] <= now_ms
    refresh = refresh_of(server, refresh_id)
    assert refresh["endTime"] - refresh["startTime"] == 600_000
    assert now_ms - refresh["endTime"] == 60_000
    imported = import_of(server, import_id)
    created, completed = epoch_of(imported["createTime"]), epoch_of(imported["completeTime"])
    assert (completed - created, clock.now - completed) == (600, 60)


def test_a_fast_world_answers_the_same_bytes_for_the_same_seed_and_clock(serve, clock):
    _, first = serve(seed=42, auto_refresh=True, time_scale=60)
    _, second = serve(seed=42, auto_refresh=True, time_scale=60)
    clock.advance(37)
    for path in (REFRESH_LIST, IMPORT_LIST):
        assert post(first, path, {}).content == post(second, path, {}).content


# -- scripted imports -------------------------------------------------------------------------


def test_control_api_starts_imports_with_a_chosen_fate(serve, clock):
    _, server = serve(flavor="milvus")
    control = server.url + "/_simulator/imports"
    started = requests.post(
        control,
        json={
            "dbName": "analytics",
            "collectionName": "movies",
            "outcome": "failed",
            "durationSeconds": 4,
            "reason": "bad file",
        },
        timeout=5,
    ).json()
    assert isinstance(started["jobId"], str) and started["jobId"].isdigit()
    clock.advance(5)
    job = import_of(server, started["jobId"])
    assert (job["collectionName"], job["state"], job["reason"]) == ("movies", "Failed", "bad file")
    assert requests.post(control, json={"outcome": "bogus"}, timeout=5).status_code == 400
    unknown = requests.post(control, json={"collectionName": "nope"}, timeout=5)
    assert unknown.status_code == 400
