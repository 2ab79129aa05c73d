"""The newest shapes of real servers for the existing kinds (``../shared/api/README.md``, "Newest
server shapes"), each of which misled the exporter: an import described before its tasks exist,
a refresh whose progress falls while it waits for its index, a pending refresh that carries the
error it keeps retrying, HTTP 403 and 408 answers, and an import in state ``None``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
import structlog

from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.metrics.model import MetricsModel
from exporter.upstream.client import ApiError, MilvusClient
from exporter.upstream.records import ImportJobDetails, parse_import_details

from . import hostile
from .conftest import TOKEN_A
from .helpers import IMPORT, REFRESH, T0, cycle, import_job, ok, refresh_job, samples, value

ENDPOINT = "https://in01.example.com:19530"
IMPORT_DESCRIBE_URL = f"{ENDPOINT}/v2/vectordb/jobs/import/describe"
IMPORT_LIST_URL = f"{ENDPOINT}/v2/vectordb/jobs/import/list"
TIMEOUT_BODY = json.dumps({"code": 10001, "message": "request timeout"})


def client() -> MilvusClient:
    import requests

    return MilvusClient(ENDPOINT, "secret-token", requests.Session(), 5.0)


def failure(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


# --- an import described before pre-import ends --------------------------------------------


def pre_import_answer(state: str = "Importing", progress: int = 30) -> dict[str, Any]:
    """What Milvus 3 answers until pre-import ends: rows 0 of 0, no size, no files."""
    return {
        "jobId": "458912301925678745",
        "collectionName": "movies",
        "state": state,
        "progress": progress,
        "reason": "",
        "importedRows": 0,
        "totalRows": 0,
        "fileSize": 0,
        "createTime": "2026-11-23T18:50:25+08:00",
        "completeTime": "",
        "details": [],
    }


def test_an_import_described_before_its_tasks_exist_has_no_rows_and_no_size_yet() -> None:
    details = parse_import_details(pre_import_answer())
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (
        None,
        None,
        None,
    )
    assert details.create_time is not None  # what the answer does know stays


def test_a_job_that_failed_in_pre_import_has_no_rows_either() -> None:
    details = parse_import_details(
        {**pre_import_answer("Failed", 10), "reason": "no such file or directory"}
    )
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (
        None,
        None,
        None,
    )


def test_once_its_files_are_described_an_import_reports_its_rows_and_size() -> None:
    answer = {
        **pre_import_answer(progress=60),
        "importedRows": 25,
        "totalRows": 100,
        "fileSize": 4096,
        "details": [{"fileName": "a.parquet", "fileSize": 4096, "totalRows": 100}],
    }
    details = parse_import_details(answer)
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (25, 100, 4096)


def test_no_row_or_size_series_is_exported_before_pre_import_ends() -> None:
    model = MetricsModel(1000, 30.0)
    running = import_job("458912301925678745", "Importing", collection="movies", progress=0.3)
    details = parse_import_details(pre_import_answer())
    assert isinstance(details, ImportJobDetails)
    snapshot = cycle(ok(IMPORT, T0, imports=(running,)), targets=(IMPORT,))
    from dataclasses import replace

    parsed = samples(model.update(replace(snapshot, follow_ups=((IMPORT.key, details),)), T0))
    job = {"milvus_cluster": "prod", "database": "default", "collection": "movies",
           "job_id": "458912301925678745"}  # fmt: skip
    for name in (
        "milvus_import_job_imported_rows",
        "milvus_import_job_total_rows",
        "milvus_import_job_file_size_bytes",
    ):
        assert value(parsed, name, **job) is None, name
    assert value(parsed, "milvus_import_job_create_timestamp_seconds", **job) is not None


# --- a refresh whose progress falls in its index-wait phase ---------------------------------


def test_a_refresh_whose_progress_falls_while_in_progress_is_exported_as_it_is_and_not_flagged():
    """In the index-wait phase progress becomes the indexed fraction: it may fall from 99 while
    the state stays RefreshInProgress. Nothing here calls that a regression."""
    model = MetricsModel(1000, 30.0)
    job = {"milvus_cluster": "prod", "database": "default", "collection": "ext_books",
           "job_id": "7"}  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        model.update(
            cycle(ok(REFRESH, T0, (refresh_job(7, "RefreshInProgress", progress=0.99),))), T0
        )
        parsed = samples(
            model.update(
                cycle(ok(REFRESH, T0 + 30, (refresh_job(7, "RefreshInProgress", progress=0.2),))),
                T0 + 30,
            )
        )
    assert value(parsed, "milvus_refresh_job_progress_ratio", **job) == 0.2
    assert value(parsed, "milvus_refresh_job_state", **job, state="RefreshInProgress") == 1
    assert not [line for line in logs if line.get("log_level") in ("warning", "error")]


# --- the error a pending refresh keeps retrying ----------------------------------------------


def test_a_pending_refresh_with_a_reason_exports_it_as_its_pending_reason() -> None:
    model = MetricsModel(1000, 30.0)
    waiting = refresh_job(8, "RefreshPending", reason="datanode unavailable, retrying")
    quiet = refresh_job(9, "RefreshPending", collection="ext_films")
    running = refresh_job(10, "RefreshInProgress", collection="ext_songs", reason="stale text")
    parsed = samples(model.update(cycle(ok(REFRESH, T0, (waiting, quiet, running))), T0))
    labels = {"milvus_cluster": "prod", "database": "default"}
    assert (
        value(
            parsed,
            "milvus_refresh_job_pending_reason_info",
            **labels,
            collection="ext_books",
            job_id="8",
            reason="datanode unavailable, retrying",
        )
        == 1
    )
    pending = [dict(labels) for name, labels in parsed
               if name == "milvus_refresh_job_pending_reason_info"]  # fmt: skip
    assert [entry["job_id"] for entry in pending] == ["8"]
    assert not [name for name, _labels in parsed if name == "milvus_refresh_job_failure_info"]


# --- HTTP 403 and 408 -------------------------------------------------------------------------


@responses.activate
def test_an_import_describe_refused_for_privilege_has_its_own_reason_and_is_not_retried() -> None:
    responses.post(
        IMPORT_DESCRIBE_URL,
        status=403,
        body="ImportJob: permission deny to reader in the `default` database",
    )
    error = failure(lambda: client().import_job_details("1"))
    assert error.reason == "forbidden" and not error.temporary


@responses.activate
def test_a_list_refused_with_403_is_still_auth() -> None:
    responses.post(IMPORT_LIST_URL, status=403, body="")
    assert failure(lambda: client().list_import_jobs("default")).reason == "auth"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        pytest.param(IMPORT_DESCRIBE_URL, 408, id="describe-408"),
        pytest.param(IMPORT_LIST_URL, 408, id="list-408"),
        pytest.param(IMPORT_LIST_URL, 200, id="code-10001"),
    ],
)
@responses.activate
def test_a_request_past_its_timeout_on_the_server_is_its_own_temporary_reason(
    url: str, status: int
) -> None:
    responses.post(url, status=status, body=TIMEOUT_BODY)
    call = (
        (lambda: client().import_job_details("1"))
        if url == IMPORT_DESCRIBE_URL
        else (lambda: client().list_import_jobs("default"))
    )
    error = failure(call)
    assert error.reason == "server_timeout" and error.temporary


def test_the_daemon_retries_a_list_that_timed_out_on_the_server() -> None:
    answered: list[str] = []

    def once_late(exchange: hostile.Exchange) -> None:
        if exchange.path.endswith("/external_collection/list"):
            answered.append(exchange.path)
        if exchange.path.endswith("/external_collection/list") and len(answered) == 1:
            body = TIMEOUT_BODY.encode()
            exchange.send(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        hostile.healthy(exchange)

    with hostile.hostile_server({}, default=once_late) as server:
        cluster = ClusterConfig("prod", server.url, TOKEN_A, jobs=("refresh",))
        daemon = Daemon(
            Config(clusters=(cluster,), poll_interval=5.0, request_timeout=1.0, max_retries=2)
        )
        try:
            result = daemon.run_cycle()
        finally:
            daemon.stop()
    (snapshot,) = result.snapshots
    assert snapshot.ok and snapshot.attempts == 2
    outcomes = {(request.record.api, request.record.outcome) for request in result.requests}
    assert ("external_collection/list", "server_timeout") in outcomes


# --- an import in state None ---------------------------------------------------------------


def test_an_import_in_state_none_is_known_unfinished_and_no_failure() -> None:
    model = MetricsModel(1000, 30.0)
    lost = import_job("77", "None", collection="books", reason="unknown import job state")
    parsed = samples(model.update(cycle(ok(IMPORT, T0, imports=(lost,))), T0))
    job = {"milvus_cluster": "prod", "database": "default", "collection": "books", "job_id": "77"}
    assert value(parsed, "milvus_import_job_state", **job, state="None") == 1
    target = {"milvus_cluster": "prod", "database": "default", "kind": "import"}
    assert value(parsed, "milvus_jobs_exporter_unknown_state_jobs", **target) == 0
    assert not [name for name, _labels in parsed if name == "milvus_import_job_failure_info"]
