"""The Milvus job API client against recorded answers (``responses``) and real dead sockets."""

from __future__ import annotations

import email.utils
import json
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from exporter import __version__
from exporter.upstream.client import ApiError, MilvusClient, RequestRecord, parse_retry_after

ENDPOINT = "https://in01-abc.aws-us-west-2.vectordb.zillizcloud.com:19530"
TOKEN = "sk-live-Zq8wX3pL9vT2"
REFRESH_LIST = "external_collection/list"
IMPORT_LIST = "import/list"
REFRESH_LIST_URL = f"{ENDPOINT}/v2/vectordb/jobs/external_collection/list"
REFRESH_DESCRIBE_URL = f"{ENDPOINT}/v2/vectordb/jobs/external_collection/describe"
REFRESH_TRIGGER_URL = f"{ENDPOINT}/v2/vectordb/jobs/external_collection/refresh"
IMPORT_LIST_URL = f"{ENDPOINT}/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE_URL = f"{ENDPOINT}/v2/vectordb/jobs/import/describe"
FIXTURES = Path(__file__).parent / "fixtures"
DOCUMENTED_JOB_ID = 449503829274509300


def fixture(name: str) -> bytes:
    """A recorded answer, as raw bytes so big ids never pass through a float."""
    return (FIXTURES / name).read_bytes()


def envelope(code: int | str, **fields: Any) -> bytes:
    return json.dumps({"code": code, **fields}).encode()


class ManualClock:
    """Monotonic time that moves only when a (fake) server says it took a while."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """Stands in for the poller: remembers every gate call and every request record."""

    def __init__(self) -> None:
        self.gated: list[str] = []
        self.records: list[RequestRecord] = []

    def gate(self, api: str) -> None:
        self.gated.append(api)

    def observe(self, record: RequestRecord) -> None:
        self.records.append(record)

    @property
    def outcomes(self) -> list[tuple[str, str]]:
        return [(record.api, record.outcome) for record in self.records]


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_client(
    recorder: Recorder | None = None,
    *,
    token: str = TOKEN,
    timeout: float = 10.0,
    endpoint: str = ENDPOINT,
    session: requests.Session | None = None,
    **options: Any,
) -> MilvusClient:
    if recorder is not None:
        options.update(gate=recorder.gate, observe=recorder.observe)
    return MilvusClient(endpoint, token, session or requests.Session(), timeout, **options)


def failure(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def sent_json(api: responses.RequestsMock, index: int = 0) -> Any:
    body = api.calls[index].request.body
    assert body is not None
    return json.loads(body)


# --- documented answers -------------------------------------------------------------------


def test_refresh_list_example_gives_both_jobs_with_exact_ids_and_times_in_seconds(
    api: responses.RequestsMock,
) -> None:
    api.post(REFRESH_LIST_URL, body=fixture("refresh_list_example.json"))

    completed, running = make_client().list_refresh_jobs("default").jobs

    assert completed.job_id == DOCUMENTED_JOB_ID
    assert (completed.collection, completed.state) == ("ext_books", "RefreshCompleted")
    assert (completed.progress_ratio, completed.start_time, completed.end_time) == (
        1.0,
        1712832000.0,
        1712832600.0,
    )
    assert running.job_id == DOCUMENTED_JOB_ID
    assert (running.collection, running.state) == ("ext_movies", "RefreshInProgress")
    assert (running.progress_ratio, running.start_time, running.end_time) == (
        0.42,
        1712833000.0,
        None,
    )


def test_import_list_example_with_code_200_is_a_success(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_example.json"))

    (job,) = make_client(recorder).list_import_jobs("default").jobs

    assert (job.job_id, job.collection, job.state) == (
        "448761313698322011",
        "quick_setup",
        "Importing",
    )
    assert job.progress_ratio == 0.5
    assert len(api.calls) == 1
    assert recorder.outcomes == [(IMPORT_LIST, "success")]


def test_describe_example_gives_the_running_job(api: responses.RequestsMock) -> None:
    api.post(REFRESH_DESCRIBE_URL, body=fixture("refresh_describe_example.json"))

    job = make_client().describe_refresh_job(DOCUMENTED_JOB_ID)

    assert sent_json(api) == {"jobId": DOCUMENTED_JOB_ID}
    assert (job.job_id, job.state, job.progress_ratio) == (
        DOCUMENTED_JOB_ID,
        "RefreshInProgress",
        0.42,
    )
    assert job.end_time is None


def test_refresh_example_returns_the_new_job_id_exactly(api: responses.RequestsMock) -> None:
    api.post(REFRESH_TRIGGER_URL, body=fixture("refresh_trigger_example.json"))

    job_id = make_client().refresh("default", "ext_books")

    assert job_id == DOCUMENTED_JOB_ID
    assert sent_json(api) == {"dbName": "default", "collectionName": "ext_books"}


def test_refresh_sends_source_and_spec_together(api: responses.RequestsMock) -> None:
    api.post(REFRESH_TRIGGER_URL, body=fixture("refresh_trigger_example.json"))
    source = '{"type":"volume","path":"volume://my-volume/books"}'
    spec = '{"format":"iceberg"}'

    make_client().refresh("default", "ext_books", source, spec)

    assert sent_json(api) == {
        "dbName": "default",
        "collectionName": "ext_books",
        "externalSource": source,
        "externalSpec": spec,
    }


@pytest.mark.parametrize(
    ("source", "spec"),
    [
        pytest.param('{"type":"volume"}', None, id="source-only"),
        pytest.param(None, "{}", id="spec-only"),
    ],
)
def test_refresh_refuses_source_without_spec_before_sending_anything(
    api: responses.RequestsMock, recorder: Recorder, source: str | None, spec: str | None
) -> None:
    with pytest.raises(ValueError, match="together"):
        make_client(recorder).refresh("default", "ext_books", source, spec)

    assert len(api.calls) == 0
    assert recorder.gated == []


def test_refresh_answer_without_a_job_id_is_a_bad_response(api: responses.RequestsMock) -> None:
    api.post(REFRESH_TRIGGER_URL, body=envelope(0, data={}))

    assert failure(lambda: make_client().refresh("default", "ext_books")).reason == "bad_response"


def test_describe_import_job_sends_the_id_as_a_string(api: responses.RequestsMock) -> None:
    detail = {"jobId": "448761313698322011", "state": "Completed", "importedRows": 1000}
    api.post(IMPORT_DESCRIBE_URL, body=envelope(0, data=detail))

    answer = make_client().describe_import_job("448761313698322011")

    assert sent_json(api) == {"jobId": "448761313698322011"}
    assert answer == detail


@pytest.mark.parametrize(
    ("answer", "count"),
    [
        pytest.param(envelope(0, data={"records": []}), 0, id="empty-records"),
        pytest.param(envelope(0, data={}), 0, id="no-records-key"),
        pytest.param(envelope(0), 0, id="no-data"),
        pytest.param(b'{"code":0,"data":{"records":null}}', 0, id="null-records"),
        pytest.param(
            envelope(0, data=[{"jobId": 1, "collectionName": "c", "state": "RefreshPending"}]),
            1,
            id="older-server-list-in-data",
        ),
        pytest.param(
            envelope(
                "0",
                data={"records": [{"jobId": 1, "collectionName": "c", "state": "RefreshPending"}]},
            ),
            1,
            id="code-as-string",
        ),
    ],
)
def test_list_answers_in_every_known_shape_are_read(
    api: responses.RequestsMock, answer: bytes, count: int
) -> None:
    api.post(REFRESH_LIST_URL, body=answer)

    assert len(make_client().list_refresh_jobs("default").jobs) == count


# --- what is sent -------------------------------------------------------------------------


def test_request_carries_bearer_token_user_agent_and_json_body(api: responses.RequestsMock) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(0, data={"records": []}))

    make_client().list_refresh_jobs("analytics")

    headers = api.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["User-Agent"] == f"milvus-jobs-exporter/{__version__}"
    assert headers["Content-Type"] == "application/json"
    assert sent_json(api) == {"dbName": "analytics"}


def test_collection_filter_is_sent_only_when_given(api: responses.RequestsMock) -> None:
    api.post(IMPORT_LIST_URL, body=envelope(0, data={"records": []}))

    make_client().list_import_jobs("default", "quick_setup")
    make_client().list_import_jobs("default")

    assert sent_json(api, 0) == {"dbName": "default", "collectionName": "quick_setup"}
    assert sent_json(api, 1) == {"dbName": "default"}


@pytest.mark.parametrize(
    ("timeout", "header"),
    [
        pytest.param(0.2, "1", id="below-a-second-rounds-up-to-1"),
        pytest.param(1.0, "1", id="whole-second"),
        pytest.param(2.5, "3", id="fraction-rounds-up"),
        pytest.param(10.0, "10", id="default"),
    ],
)
def test_request_timeout_header_is_whole_seconds_rounded_up(
    api: responses.RequestsMock, timeout: float, header: str
) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(0, data={"records": []}))

    make_client(timeout=timeout).list_refresh_jobs("default")

    assert api.calls[0].request.headers["Request-Timeout"] == header


def test_no_authorization_header_for_a_milvus_without_authentication(
    api: responses.RequestsMock,
) -> None:
    api.post("http://milvus:19530/v2/vectordb/jobs/import/list", body=envelope(200, data={}))

    make_client(token="", endpoint="http://milvus:19530/").list_import_jobs("default")

    assert "Authorization" not in api.calls[0].request.headers


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(401, b"", "auth", id="http-401"),
        pytest.param(403, envelope(1400, message="no privilege"), "auth", id="http-403"),
        pytest.param(
            200, envelope(1800, message="user hasn't authenticated"), "auth", id="code-1800"
        ),
        pytest.param(200, envelope(1400, message="permission deny"), "auth", id="code-1400"),
        pytest.param(200, envelope(1401, message="privilege not granted"), "auth", id="code-1401"),
        pytest.param(
            429, envelope(1807, message="rate limit exceeded"), "rate_limited", id="http-429"
        ),
        pytest.param(
            200, envelope(8, message="rate limit exceeded[rate=20]"), "rate_limited", id="code-8"
        ),
        pytest.param(
            200, envelope(1807, message="rate limit exceeded"), "rate_limited", id="code-1807"
        ),
        pytest.param(500, b"internal error", "http_500", id="http-500"),
        pytest.param(503, b"<html>unavailable</html>", "http_503", id="http-503"),
        pytest.param(404, b"404 page not found", "http_404", id="http-404"),
        pytest.param(302, b"", "http_302", id="redirect-not-followed"),
        pytest.param(
            200, b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "bad_json", id="html"
        ),
        pytest.param(
            200, b'{"code":0,"data":{"records":[{"jobId":4495', "bad_json", id="truncated"
        ),
        pytest.param(200, b"", "bad_json", id="empty-body"),
        pytest.param(200, b"\xff\xfe\x00garbage", "bad_json", id="binary"),
        pytest.param(200, b"[" * 100_000 + b"]" * 100_000, "bad_json", id="absurdly-nested"),
        pytest.param(200, b"[]", "bad_response", id="json-list"),
        pytest.param(200, envelope("ok"), "bad_response", id="code-not-a-number"),
        pytest.param(
            200,
            envelope(800, message="database not found[database=analytics]"),
            "api_800",
            id="code-800",
        ),
        pytest.param(
            200, envelope("800", message="database not found"), "api_800", id="code-800-string"
        ),
        pytest.param(200, envelope(100, message="collection not found"), "api_100", id="code-100"),
        pytest.param(200, envelope(1100, message="invalid parameter"), "api_1100", id="code-1100"),
        pytest.param(200, envelope(21119, message="illegal API key"), "api_21119", id="cloud-code"),
        pytest.param(200, envelope(-5, message="?"), "api_other", id="negative-code"),
        pytest.param(200, envelope(10**9, message="?"), "api_other", id="huge-code"),
    ],
)
def test_every_failure_has_a_bounded_reason(
    api: responses.RequestsMock, recorder: Recorder, status: int, body: bytes, reason: str
) -> None:
    api.post(REFRESH_LIST_URL, status=status, body=body)

    error = failure(lambda: make_client(recorder).list_refresh_jobs("default"))

    assert error.reason == reason
    assert str(error).startswith(f"{reason}: ")
    assert recorder.outcomes == [(REFRESH_LIST, reason)]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("records", id="data-string"),
        pytest.param({"records": {}}, id="records-mapping"),
    ],
)
def test_data_with_wrong_types_is_a_failed_request_with_reason_bad_response(
    api: responses.RequestsMock, recorder: Recorder, data: object
) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(0, data=data))

    error = failure(lambda: make_client(recorder).list_refresh_jobs("default"))

    assert error.reason == "bad_response"
    assert recorder.outcomes == [(REFRESH_LIST, "bad_response")]


GOOD_RECORD = {
    "jobId": 7,
    "collectionName": "ext_books",
    "state": "RefreshCompleted",
    "progress": 100,
    "startTime": 1_732_358_400_000,
    "endTime": 1_732_358_460_000,
}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param("job", "not_an_object", id="record-string"),
        pytest.param({**GOOD_RECORD, "jobId": True}, "bad_job_id", id="id-boolean"),
        pytest.param({**GOOD_RECORD, "collectionName": 5}, "bad_collection", id="name-number"),
        pytest.param({**GOOD_RECORD, "state": ""}, "bad_state", id="state-empty"),
        pytest.param({**GOOD_RECORD, "progress": "lots"}, "bad_progress", id="progress-text"),
        pytest.param({**GOOD_RECORD, "startTime": "noon"}, "bad_time", id="time-text"),
        pytest.param({**GOOD_RECORD, "startTime": 1_732_358_400}, "bad_time", id="time-seconds"),
        pytest.param(
            {**GOOD_RECORD, "endTime": 4_102_444_800_000}, "bad_time", id="time-year-2100"
        ),
    ],
)
def test_an_unreadable_record_is_skipped_and_counted_while_the_rest_is_kept(
    api: responses.RequestsMock, recorder: Recorder, record: object, reason: str
) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(0, data={"records": [GOOD_RECORD, record]}))

    listing = make_client(recorder).list_refresh_jobs("default")

    assert [job.job_id for job in listing.jobs] == [7]
    ((skipped_reason, count, message),) = listing.skipped
    assert (skipped_reason, count) == (reason, 1)
    assert "\n" not in message
    assert recorder.outcomes == [(REFRESH_LIST, "success")]


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        pytest.param(
            requests.exceptions.ConnectTimeout("connect timed out"), "timeout", id="connect-timeout"
        ),
        pytest.param(
            requests.exceptions.ReadTimeout("read timed out"), "timeout", id="read-timeout"
        ),
        pytest.param(
            requests.exceptions.ConnectionError("HTTPSConnectionPool: Read timed out."),
            "timeout",
            id="read-timeout-while-streaming",
        ),
        pytest.param(requests.exceptions.SSLError("certificate verify failed"), "tls", id="tls"),
        pytest.param(
            requests.exceptions.ConnectionError("Connection reset by peer\nmore detail"),
            "reset",
            id="reset",
        ),
        pytest.param(
            requests.exceptions.ChunkedEncodingError("broken chunk"), "reset", id="broken-chunk"
        ),
        pytest.param(
            requests.exceptions.ConnectionError("Failed to establish a new connection"),
            "connect",
            id="no-connection",
        ),
    ],
)
def test_transport_failures_are_timeout_tls_connect_or_reset(
    api: responses.RequestsMock, recorder: Recorder, raised: Exception, reason: str
) -> None:
    api.post(IMPORT_LIST_URL, body=raised)

    error = failure(lambda: make_client(recorder).list_import_jobs("default"))

    assert error.reason == reason
    assert "\n" not in str(error)
    assert recorder.outcomes == [(IMPORT_LIST, reason)]


def test_error_message_keeps_the_first_line_of_the_server_message(
    api: responses.RequestsMock,
) -> None:
    message = "database not found[database=analytics]\ngoroutine 1 [running]:\nmain.main()"
    api.post(REFRESH_LIST_URL, body=envelope(800, message=message))

    error = failure(lambda: make_client().list_refresh_jobs("analytics"))

    assert str(error) == "api_800: code 800: database not found[database=analytics]"


def test_very_long_server_message_is_cut(api: responses.RequestsMock) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(1100, message="x" * 10_000))

    error = failure(lambda: make_client().list_refresh_jobs("default"))

    assert len(str(error)) < 250


@pytest.mark.parametrize(
    ("reason", "temporary"),
    [
        pytest.param("timeout", True, id="timeout"),
        pytest.param("connect", True, id="connect"),
        pytest.param("rate_limited", True, id="rate-limited"),
        pytest.param("http_500", True, id="http-500"),
        pytest.param("http_503", True, id="http-503"),
        pytest.param("auth", False, id="auth"),
        pytest.param("http_404", False, id="http-404"),
        pytest.param("api_800", False, id="unknown-database"),
        pytest.param("bad_json", False, id="bad-json"),
        pytest.param("bad_response", False, id="bad-response"),
    ],
)
def test_only_temporary_failures_are_worth_retrying(reason: str, temporary: bool) -> None:
    assert ApiError(reason, "message").temporary is temporary


# --- rate limiting ------------------------------------------------------------------------


def http_date(offset_seconds: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
    return email.utils.format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        pytest.param(lambda: "7", 7.0, 7.0, id="seconds"),
        pytest.param(lambda: " 2.5 ", 2.5, 2.5, id="fractional-seconds"),
        pytest.param(lambda: "86400", 300.0, 300.0, id="capped"),
        pytest.param(lambda: "-3", 0.0, 0.0, id="negative"),
        pytest.param(lambda: http_date(120), 118.0, 120.0, id="http-date-ahead"),
        pytest.param(lambda: http_date(-3600), 0.0, 0.0, id="http-date-past"),
    ],
)
def test_http_429_carries_the_retry_after_in_seconds(
    api: responses.RequestsMock, retry_after: Callable[[], str], low: float, high: float
) -> None:
    api.post(
        REFRESH_LIST_URL,
        status=429,
        body=envelope(1807, message="rate limit exceeded"),
        headers={"Retry-After": retry_after()},  # an HTTP date is only right when it is fresh
    )

    error = failure(lambda: make_client().list_refresh_jobs("default"))

    assert error.reason == "rate_limited"
    assert error.retry_after is not None
    assert low <= error.retry_after <= high


@pytest.mark.parametrize(
    "retry_after",
    [None, "soon", "inf", "nan", "Mon, 99 Foo 2024 00:00:00 GMT"],
    ids=["absent", "word", "infinite", "nan", "broken-date"],
)
def test_http_429_without_a_usable_retry_after_leaves_it_to_the_caller(
    api: responses.RequestsMock, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    api.post(REFRESH_LIST_URL, status=429, body=b"", headers=headers)

    error = failure(lambda: make_client().list_refresh_jobs("default"))

    assert (error.reason, error.retry_after) == ("rate_limited", None)


def test_retry_after_is_read_in_both_forms() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert parse_retry_after("") is None


# --- size and time limits -----------------------------------------------------------------


def test_answer_over_max_response_bytes_is_too_large(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(0, data={"records": []}) + b" " * 2000)

    error = failure(
        lambda: make_client(recorder, max_response_bytes=1024).list_refresh_jobs("default")
    )

    assert error.reason == "too_large"
    assert error.temporary
    assert recorder.outcomes == [(REFRESH_LIST, "too_large")]


def test_answer_of_exactly_max_response_bytes_is_read(api: responses.RequestsMock) -> None:
    body = envelope(0, data={"records": []})
    api.post(REFRESH_LIST_URL, body=body + b" " * (1024 - len(body)))

    assert make_client(max_response_bytes=1024).list_refresh_jobs("default").jobs == ()


def test_answer_that_arrives_after_the_timeout_is_a_timeout(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    clock = ManualClock()

    def slow_answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        clock.advance(2.5)
        return 200, {}, envelope(0, data={"records": []})

    api.add_callback(responses.POST, REFRESH_LIST_URL, callback=slow_answer)

    error = failure(
        lambda: make_client(recorder, timeout=2.0, clock=clock).list_refresh_jobs("default")
    )

    assert error.reason == "timeout"
    assert recorder.outcomes == [(REFRESH_LIST, "timeout")]


# --- real sockets -------------------------------------------------------------------------


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and 127.0.0.1
    return session


def test_refused_connection_is_connect(recorder: Recorder) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(
        recorder, endpoint=f"http://127.0.0.1:{port}", session=plain_session(), timeout=2.0
    )

    error = failure(lambda: client.list_refresh_jobs("default"))

    assert error.reason == "connect"
    assert error.temporary
    assert recorder.outcomes == [(REFRESH_LIST, "connect")]


def test_server_that_never_answers_is_a_timeout(recorder: Recorder) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel accepts the connection; nobody ever answers
        port = silent.getsockname()[1]
        client = make_client(
            recorder, endpoint=f"http://127.0.0.1:{port}", session=plain_session(), timeout=0.3
        )

        error = failure(lambda: client.list_import_jobs("default"))

    assert error.reason == "timeout"
    assert str(error) == "timeout: no answer within 0.3s"
    assert recorder.outcomes == [(IMPORT_LIST, "timeout")]


# --- paging -------------------------------------------------------------------------------


def page_matcher(page: int) -> list[Callable[..., Any]]:
    return [matchers.json_params_matcher({"dbName": "default", "pageSize": 2, "currentPage": page})]


def test_import_list_follows_control_plane_pages(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_2.json"), match=page_matcher(2))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_3.json"), match=page_matcher(3))
    api.post(
        IMPORT_LIST_URL,
        body=fixture("import_list_cloud_page_1.json"),
        match=[matchers.json_params_matcher({"dbName": "default"})],
    )

    jobs = make_client(recorder).list_import_jobs("default").jobs

    assert [job.job_id for job in jobs] == [
        "job-0a1b2c3d4e5f6a7b8c9d",
        "job-1b2c3d4e5f6a7b8c9d0e",
        "job-2c3d4e5f6a7b8c9d0e1f",
        "job-3d4e5f6a7b8c9d0e1f2a",
        "job-4e5f6a7b8c9d0e1f2a3b",
    ]
    assert jobs[3].reason.startswith("file not found")
    assert recorder.gated == [IMPORT_LIST, IMPORT_LIST, IMPORT_LIST]
    assert recorder.outcomes == [(IMPORT_LIST, "success")] * 3


def test_failed_page_fails_the_whole_list(api: responses.RequestsMock, recorder: Recorder) -> None:
    api.post(IMPORT_LIST_URL, status=503, body=b"unavailable", match=page_matcher(2))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_1.json"))

    error = failure(lambda: make_client(recorder).list_import_jobs("default"))

    assert error.reason == "http_503"
    assert recorder.outcomes == [(IMPORT_LIST, "success"), (IMPORT_LIST, "http_503")]


def test_the_pages_of_one_list_share_one_byte_budget(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_2.json"), match=page_matcher(2))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_3.json"), match=page_matcher(3))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_1.json"))
    client = make_client(recorder, max_listing_bytes=333 + 398 + 100)  # pages 1 and 2, not 3

    error = failure(lambda: client.list_import_jobs("default"))

    assert error.reason == "listing_too_large"
    assert str(error) == (
        "listing_too_large: the pages of this list answer hold more than max_listing_bytes "
        "(831 bytes)"
    )
    assert not error.temporary
    assert recorder.outcomes == [
        (IMPORT_LIST, "success"),
        (IMPORT_LIST, "success"),
        (IMPORT_LIST, "listing_too_large"),
    ]


def test_pages_of_exactly_the_byte_budget_are_read(api: responses.RequestsMock) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_2.json"), match=page_matcher(2))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_3.json"), match=page_matcher(3))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_1.json"))
    client = make_client(max_listing_bytes=333 + 398 + 224)

    assert len(client.list_import_jobs("default").jobs) == 5


def test_import_pages_are_read_only_as_they_are_asked_for(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_2.json"), match=page_matcher(2))
    api.post(IMPORT_LIST_URL, body=fixture("import_list_cloud_page_1.json"))
    pages = make_client(recorder).import_job_pages("default")

    first = next(pages)

    assert len(first.jobs) == 2
    assert recorder.outcomes == [(IMPORT_LIST, "success")]
    pages.close()


def test_paging_fields_that_are_not_numbers_are_a_bad_response(api: responses.RequestsMock) -> None:
    api.post(
        IMPORT_LIST_URL, body=envelope(0, data={"count": "many", "pageSize": 2, "records": []})
    )

    assert failure(lambda: make_client().list_import_jobs("default")).reason == "bad_response"


def test_answer_without_paging_fields_is_one_request(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    api.post(IMPORT_LIST_URL, body=fixture("import_list_example.json"))

    make_client(recorder).list_import_jobs("default")

    assert recorder.gated == [IMPORT_LIST]


# --- observation --------------------------------------------------------------------------


def test_each_request_is_observed_once_with_its_outcome_and_time(
    api: responses.RequestsMock, recorder: Recorder
) -> None:
    clock = ManualClock()
    answers = iter(
        [
            (200, envelope(0, data={"records": []})),
            (200, envelope(800, message="database not found")),
            (503, b"unavailable"),
        ]
    )

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        clock.advance(0.25)
        status, body = next(answers)
        return status, {}, body

    api.add_callback(responses.POST, REFRESH_LIST_URL, callback=answer)
    client = make_client(recorder, clock=clock)

    client.list_refresh_jobs("default")
    failure(lambda: client.list_refresh_jobs("analytics"))
    failure(lambda: client.list_refresh_jobs("default"))

    assert recorder.outcomes == [
        (REFRESH_LIST, "success"),
        (REFRESH_LIST, "api_800"),
        (REFRESH_LIST, "http_503"),
    ]
    assert [record.seconds for record in recorder.records] == [0.25, 0.25, 0.25]
    assert recorder.gated == [REFRESH_LIST] * 3


def test_gate_runs_before_the_request_and_can_hold_it_back(api: responses.RequestsMock) -> None:
    def closed_gate(api_name: str) -> None:
        raise RuntimeError(f"limiter closed for {api_name}")

    client = make_client(gate=closed_gate)

    with pytest.raises(RuntimeError, match="external_collection/list"):
        client.list_refresh_jobs("default")
    assert len(api.calls) == 0


class ExplodingSession(requests.Session):
    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise RuntimeError("bug in a transport adapter")


def test_unexpected_exception_is_not_observed_as_a_success(recorder: Recorder) -> None:
    client = make_client(recorder, session=ExplodingSession())

    with pytest.raises(RuntimeError):
        client.list_refresh_jobs("default")

    assert recorder.outcomes == [(REFRESH_LIST, "internal")]


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(401, b"", id="http-401"),
        pytest.param(200, envelope(1800, message="user hasn't authenticated"), id="code-1800"),
        pytest.param(200, envelope(21119, message="illegal API key"), id="cloud-illegal-key"),
        pytest.param(200, b"<html>login</html>", id="html"),
        pytest.param(200, requests.exceptions.ConnectionError("connection refused"), id="connect"),
    ],
)
def test_token_never_appears_in_errors_or_the_client_repr(
    api: responses.RequestsMock, status: int, body: bytes | Exception
) -> None:
    api.post(REFRESH_LIST_URL, status=status, body=body)
    client = make_client()

    error = failure(lambda: client.list_refresh_jobs("default"))

    shown = str(error) + repr(error) + error.message + repr(client) + str(client)
    assert TOKEN not in shown
    assert ENDPOINT in repr(client)


def test_an_answer_without_a_code_is_not_taken_for_an_empty_success(
    api: responses.RequestsMock,
) -> None:
    api.post(REFRESH_LIST_URL, json={"error": "gateway says no", "data": {"records": []}})

    error = failure(lambda: make_client().list_refresh_jobs("default"))

    assert error.reason == "bad_response"


def test_a_server_message_echoing_the_token_is_scrubbed_from_the_error(
    api: responses.RequestsMock,
) -> None:
    api.post(REFRESH_LIST_URL, body=envelope(1800, message=f"invalid token {TOKEN}"))

    error = failure(lambda: make_client().list_refresh_jobs("default"))

    assert error.reason == "auth"
    assert TOKEN not in str(error)
    assert TOKEN not in error.message
    assert "<redacted>" in error.message


HUGE = "9" * 5000
"""An integer Python will not read from text (more than 4300 digits)."""


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        pytest.param(
            f'{{"code": 0, "data": {{"records": [], "count": {HUGE}, "pageSize": 10}}}}',
            "bad_response",
            "paging fields are not numbers",
            id="page-count",
        ),
        pytest.param(
            f'{{"code": {HUGE}, "message": "x"}}', "bad_response", "no numeric code", id="code"
        ),
    ],
)
def test_a_5000_digit_integer_outside_a_record_is_bad_response_not_bad_json(
    api: responses.RequestsMock, body: str, reason: str, message: str
) -> None:
    api.post(IMPORT_LIST_URL, body=body.encode())

    error = failure(lambda: make_client().list_import_jobs("default"))

    assert (error.reason, message in error.message) == (reason, True)


def test_a_5000_digit_integer_in_a_record_skips_that_record_only(
    api: responses.RequestsMock,
) -> None:
    good = '{"jobId": "5", "collectionName": "c", "state": "Completed", "progress": 100}'
    huge = f'{{"jobId": "6", "collectionName": "d", "state": "Completed", "progress": {HUGE}}}'
    api.post(IMPORT_LIST_URL, body=f'{{"code": 0, "data": {{"records": [{good}, {huge}]}}}}')

    listing = make_client().list_import_jobs("default")

    assert [job.job_id for job in listing.jobs] == ["5"]
    assert listing.skipped == (
        ("bad_progress", 1, "progress must be a number, got an integer of 5000 digits"),
    )
