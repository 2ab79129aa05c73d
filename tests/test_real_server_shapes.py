"""Answers a self-hosted Milvus server sends, read by the exporter's client, and by the simulator.

Each recorded answer in ``tests/fixtures/`` (``milvus_*``, ``databases_list.json``) is one shape
of the real server (the upstream API summary, "What a self-hosted Milvus server sends"): import
times at the server's own offset, failed imports with 0 of 0 rows and no completion time,
bracketed file names with task states, `reason` left out when empty, the not-found and id-type
codes, code 1807 from the refresh trigger's limiter, the error for the refresh list of a plain
collection, the database and collection lists, and Go's plain-text 404.

The first half checks what `MilvusClient` makes of each answer; the second that the simulator's
`milvus` flavour answers in the same shapes, so the picture the tests run against cannot drift.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from exporter.simulator import Simulator, SimulatorOptions
from exporter.upstream.client import ApiError, MilvusClient

ENDPOINT = "http://milvus.internal:19530"
TOKEN = "root:Milvus"
JOBS = f"{ENDPOINT}/v2/vectordb/jobs"
REFRESH_LIST_URL = f"{JOBS}/external_collection/list"
REFRESH_DESCRIBE_URL = f"{JOBS}/external_collection/describe"
REFRESH_TRIGGER_URL = f"{JOBS}/external_collection/refresh"
IMPORT_LIST_URL = f"{JOBS}/import/list"
IMPORT_DESCRIBE_URL = f"{JOBS}/import/describe"
DATABASE_LIST_URL = f"{ENDPOINT}/v2/vectordb/databases/list"
COLLECTION_LIST_URL = f"{ENDPOINT}/v2/vectordb/collections/list"
FIXTURES = Path(__file__).parent / "fixtures"
CREATED = datetime(2026, 11, 23, 10, 50, 25, tzinfo=timezone.utc).timestamp()  # 18:50:25+08:00


def fixture(name: str) -> bytes:
    """A recorded answer as raw bytes, so big ids never pass through a float."""
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def api() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> MilvusClient:
    return MilvusClient(ENDPOINT, TOKEN, requests.Session(), 5.0)


def failure(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


# -- what the client makes of each answer ------------------------------------------------------


def test_an_import_list_reads_every_state_and_a_left_out_reason_as_empty(api, client):
    api.post(IMPORT_LIST_URL, body=fixture("milvus_import_list.json"))
    listing = client.list_import_jobs("default")
    assert listing.skipped == ()
    jobs = {job.job_id: job for job in listing.jobs}
    assert {job_id: (job.state, job.progress_ratio) for job_id, job in jobs.items()} == {
        "458912301925678721": ("Completed", 1.0),
        "458912301925678745": ("Failed", 0.0),
        "458912301925678733": ("Importing", 0.47),
        "458912301925678752": ("Pending", 0.03),
        "458912301925678760": ("Uncommitted", 0.99),
        "458912301925678766": ("None", 0.0),
    }
    assert all(job.known_state for job in jobs.values())
    assert jobs["458912301925678745"].reason.startswith("failed to read file s3://")
    assert jobs["458912301925678766"].reason == "unknown import job state"
    others = [job.reason for job in jobs.values() if job.state not in ("Failed", "None")]
    assert others == [""] * 4


@pytest.mark.parametrize(
    ("recorded", "rows", "file_size", "files"),
    [
        # failed before its files were read: 0 of 0 rows and size 0 are "not known", not zero
        pytest.param("milvus_import_describe_failed.json", None, None, 0, id="in-preimport"),
        pytest.param(
            "milvus_import_describe_failed_importing.json", 0, 734003200, 2, id="importing"
        ),
    ],
)
def test_a_failed_import_reads_as_0_of_0_rows_and_no_completion_time(
    api, client, recorded, rows, file_size, files
):
    api.post(IMPORT_DESCRIBE_URL, body=fixture(recorded))
    details = client.import_job_details("458912301925678745")
    assert (details.state, details.imported_rows, details.total_rows) == ("Failed", rows, rows)
    assert (details.create_time, details.complete_time) == (CREATED, None)
    assert (details.file_size_bytes, len(details.files)) == (file_size, files)


def test_import_times_in_the_servers_own_offset_read_as_the_right_instant(api, client):
    api.post(IMPORT_DESCRIBE_URL, body=fixture("milvus_import_describe_completed.json"))
    details = client.import_job_details("458912301925678721")
    assert details.create_time == CREATED
    assert details.complete_time == CREATED + 12 * 60 + 16
    assert (details.imported_rows, details.total_rows) == (1250000, 1250000)


def test_a_running_import_with_bracketed_files_and_retry_tasks_is_read(api, client):
    api.post(IMPORT_DESCRIBE_URL, body=fixture("milvus_import_describe_running.json"))
    details = client.import_job_details("458912301925678733")
    assert (details.state, details.complete_time) == ("Importing", None)
    assert (details.imported_rows, details.total_rows) == (410000, 1000000)
    raw = json.loads(fixture("milvus_import_describe_running.json"))["data"]
    api.post(IMPORT_DESCRIBE_URL, body=fixture("milvus_import_describe_running.json"))
    assert client.describe_import_job("458912301925678733") == raw


def test_a_refresh_list_with_uri_sources_is_read(api, client):
    api.post(REFRESH_LIST_URL, body=fixture("milvus_refresh_list.json"))
    listing = client.list_refresh_jobs("default", "ext_books")
    assert listing.skipped == ()
    running, failed = listing.jobs
    assert (running.job_id, running.state, running.end_time) == (
        449503829274509411,
        "RefreshInProgress",
        None,
    )
    assert (failed.job_id, failed.state) == (449503829274509301, "RefreshFailed")
    assert failed.reason.startswith("permission denied reading s3://")


@pytest.mark.parametrize(
    ("url", "recorded", "call", "reason"),
    [
        pytest.param(
            IMPORT_DESCRIBE_URL,
            "milvus_import_not_found.json",
            lambda client: client.import_job_details("458912301925678799"),
            "api_2100",
            id="unknown-import-job",
        ),
        pytest.param(
            IMPORT_DESCRIBE_URL,
            "milvus_import_not_found_newest.json",
            lambda client: client.import_job_details("458912301925678799"),
            "api_2101",
            id="unknown-import-job-newest-server",
        ),
        pytest.param(
            REFRESH_DESCRIBE_URL,
            "milvus_refresh_not_found.json",
            lambda client: client.describe_refresh_job(449503829274509399),
            "api_1100",
            id="unknown-refresh-job",
        ),
        pytest.param(
            REFRESH_DESCRIBE_URL,
            "milvus_wrong_id_type.json",
            lambda client: client.describe_refresh_job(449503829274509399),
            "api_1801",
            id="job-id-of-the-wrong-type",
        ),
        pytest.param(
            IMPORT_DESCRIBE_URL,
            "milvus_missing_field.json",
            lambda client: client.import_job_details(""),
            "api_1802",
            id="missing-job-id",
        ),
        pytest.param(
            REFRESH_TRIGGER_URL,
            "milvus_refresh_rate_limited.json",
            lambda client: client.refresh("default", "ext_books"),
            "rate_limited",
            id="refresh-trigger-limited-with-http-200",
        ),
        pytest.param(
            REFRESH_LIST_URL,
            "milvus_refresh_list_not_external.json",
            lambda client: client.list_refresh_jobs("default", "books"),
            "api_1100",
            id="refresh-list-of-a-plain-collection",
        ),
    ],
)
def test_an_error_answered_with_http_200_raises_its_bounded_reason(
    api, client, url, recorded, call, reason
):
    api.post(url, body=fixture(recorded))
    error = failure(lambda: call(client))
    assert error.reason == reason
    assert json.loads(fixture(recorded))["message"] in error.message


def test_a_plain_text_404_for_an_unknown_path_raises_http_404(api, client):
    body = fixture("milvus_not_found_page.txt")
    api.post(IMPORT_LIST_URL, status=404, body=body, content_type="text/plain; charset=utf-8")
    assert failure(lambda: client.list_import_jobs("default")).reason == "http_404"


def test_the_database_list_reads_as_the_names_in_order(api, client):
    api.post(DATABASE_LIST_URL, body=fixture("databases_list.json"))
    assert client.list_databases() == ("default", "analytics")


@pytest.mark.parametrize(
    "data", [pytest.param({"names": []}, id="object"), pytest.param(["a", 1], id="number")]
)
def test_a_database_list_of_the_wrong_shape_is_bad_response(api, client, data):
    api.post(DATABASE_LIST_URL, body=json.dumps({"code": 0, "data": data}))
    assert failure(client.list_databases).reason == "bad_response"


def test_the_collection_list_of_a_database_reads_as_the_names_in_order(api, client):
    api.post(COLLECTION_LIST_URL, body=fixture("collections_list.json"))
    assert client.list_collections("sales") == ("quick_setup", "ext_books")
    assert json.loads(api.calls[0].request.body) == {"dbName": "sales"}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"names": []}, id="object"),
        pytest.param(["a", 1], id="number"),
        pytest.param(None, id="null"),
    ],
)
def test_a_collection_list_of_the_wrong_shape_is_bad_response_never_an_empty_list(
    api, client, data
):
    api.post(COLLECTION_LIST_URL, body=json.dumps({"code": 0, "data": data}))
    assert failure(lambda: client.list_collections("default")).reason == "bad_response"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(200, fixture("milvus_database_not_found.json"), "api_800", id="no-database"),
        pytest.param(404, fixture("milvus_not_found_page.txt"), "http_404", id="no-such-path"),
    ],
)
def test_a_collection_list_that_fails_says_why(api, client, status, body, reason):
    api.post(COLLECTION_LIST_URL, status=status, body=body)
    assert failure(lambda: client.list_collections("sales")).reason == reason


# -- the simulator's milvus flavour answers in the same shapes ---------------------------------

START = 1_795_431_025.0


class FixedClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def shape(value: Any) -> Any:
    """Keys and JSON types, with a list as the set of its items' shapes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(shape(item), sort_keys=True) for item in value})
    return type(value).__name__


@pytest.fixture
def milvus() -> tuple[Simulator, FixedClock]:
    clock = FixedClock()
    options = SimulatorOptions(
        flavor="milvus", clock=clock, auto_refresh=False, requests_per_second=2
    )
    return Simulator(options), clock


def ask(simulator: Simulator, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    answer = simulator.handle("POST", path, "Bearer demo-token", json.dumps(body).encode())
    return answer.status, answer.body


def data_of(simulator: Simulator, path: str, body: dict[str, Any]) -> Any:
    status, raw = ask(simulator, path, body)
    payload = json.loads(raw)
    assert (status, payload["code"]) == (200, 0), payload
    return payload["data"]


def recorded_data(name: str) -> Any:
    return json.loads(fixture(name))["data"]


def test_the_simulated_import_list_has_the_recorded_record_shapes(milvus):
    simulator, _ = milvus
    simulated = data_of(simulator, "/v2/vectordb/jobs/import/list", {"dbName": "default"})
    assert set(shape(simulated["records"])) <= set(
        shape(recorded_data("milvus_import_list.json")["records"])
    )


@pytest.mark.parametrize(
    ("outcome", "seconds_later", "recorded"),
    [
        pytest.param("failed", 60, "milvus_import_describe_failed_importing.json", id="failed"),
        pytest.param(
            "failed_preimport", 60, "milvus_import_describe_failed.json", id="failed-in-preimport"
        ),
        pytest.param("completed", 60, "milvus_import_describe_completed.json", id="completed"),
        pytest.param("completed", 30, "milvus_import_describe_running.json", id="running"),
    ],
)
def test_a_simulated_import_describe_has_the_recorded_shape(
    milvus, outcome, seconds_later, recorded
):
    simulator, clock = milvus
    job_id = simulator.start_import("default", "books", outcome=outcome, duration_seconds=50)
    clock.now += seconds_later
    simulated = data_of(simulator, "/v2/vectordb/jobs/import/describe", {"jobId": job_id})
    expected = recorded_data(recorded)
    assert shape(simulated) == shape(expected)
    assert simulated["createTime"][-6:] == expected["createTime"][-6:] == "+08:00"
    assert all(
        detail["fileName"][0] + detail["fileName"][-1] == "[]" for detail in simulated["details"]
    )


def test_the_simulated_refresh_list_has_the_recorded_record_shapes(milvus):
    simulator, _ = milvus
    simulated = data_of(simulator, "/v2/vectordb/jobs/external_collection/list", {})
    assert set(shape(simulated["records"])) <= set(
        shape(recorded_data("milvus_refresh_list.json")["records"])
    )


@pytest.mark.parametrize(
    ("path", "body", "recorded"),
    [
        pytest.param(
            "/v2/vectordb/jobs/import/describe",
            {"jobId": "458912301925678799"},
            "milvus_import_not_found.json",
            id="unknown-import-job",
        ),
        pytest.param(
            "/v2/vectordb/jobs/external_collection/describe",
            {"jobId": 449503829274509399},
            "milvus_refresh_not_found.json",
            id="unknown-refresh-job",
        ),
        pytest.param(
            "/v2/vectordb/jobs/external_collection/describe",
            {"jobId": "449503829274509399"},
            "milvus_wrong_id_type.json",
            id="job-id-of-the-wrong-type",
        ),
        pytest.param(
            "/v2/vectordb/jobs/import/describe", {}, "milvus_missing_field.json", id="missing"
        ),
        pytest.param(
            "/v2/vectordb/jobs/external_collection/list",
            {"collectionName": "books"},
            "milvus_refresh_list_not_external.json",
            id="refresh-list-of-a-plain-collection",
        ),
        pytest.param("/v2/vectordb/databases/list", {}, "databases_list.json", id="databases"),
    ],
)
def test_a_simulated_answer_matches_the_recorded_one(milvus, path, body, recorded):
    simulator, _ = milvus
    status, raw = ask(simulator, path, body)
    assert status == 200
    assert json.loads(raw) == json.loads(fixture(recorded))


def test_the_simulated_refresh_trigger_limiter_answers_like_the_recorded_one(milvus):
    simulator, _ = milvus
    trigger = "/v2/vectordb/jobs/external_collection/refresh"
    answers = [ask(simulator, trigger, {"collectionName": "ext_nope"}) for _ in range(3)]
    status, raw = answers[-1]
    assert status == 200
    assert json.loads(raw) == json.loads(fixture("milvus_refresh_rate_limited.json"))


def test_the_simulated_unknown_path_answers_the_recorded_page(milvus):
    simulator, _ = milvus
    status, raw = ask(simulator, "/v2/vectordb/jobs/nothing/list", {})
    assert (status, raw) == (404, fixture("milvus_not_found_page.txt"))


@pytest.mark.parametrize(
    ("database", "recorded"),
    [
        pytest.param("default", "collections_list.json", id="names"),
        pytest.param("sales", "milvus_database_not_found.json", id="no-database"),
    ],
)
def test_the_simulated_collection_list_has_the_recorded_shape(milvus, database, recorded):
    simulator, _ = milvus
    _status, raw = ask(simulator, "/v2/vectordb/collections/list", {"dbName": database})
    assert shape(json.loads(raw)) == shape(json.loads(fixture(recorded)))
