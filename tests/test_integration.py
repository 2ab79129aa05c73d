"""The real daemon against the simulator over HTTP, read back the way Prometheus reads it."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
import structlog
from structlog.testing import LogCapture

from exporter.log import SecretRedactor, configure_logging
from exporter.simulator import FLAVORS, Fault, Simulator

from .conftest import TOKEN_A, TOKEN_B, cluster, running_simulator, series, value


@pytest.fixture(
    params=[
        pytest.param(flavor, marks=() if flavor == "zilliz" else pytest.mark.slow)
        for flavor in FLAVORS
    ]
)
def simulator(request: pytest.FixtureRequest) -> Iterator[tuple[Simulator, str]]:
    """Every test here runs against both flavours (Zilliz Cloud and self-hosted Milvus), so the
    exporter is checked against both servers and neither flavour drifts from what it reads.
    The quick inner loop (scripts/test --quick) runs the zilliz flavour only."""
    with running_simulator(request.param) as started:
        yield started


def up_labels(database: str, kind: str, name: str = "prod") -> dict[str, str]:
    return {"milvus_cluster": name, "database": database, "kind": kind}


def test_every_target_is_up_and_jobs_are_exported_with_exact_int64_ids(simulator, start_exporter):
    _sim, url = simulator
    exporter = start_exporter(cluster(url))
    parsed = exporter.scrape()
    for database in ("default", "analytics"):
        for kind in ("refresh", "import"):
            assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels(database, kind)) == 1
    refresh_ids = {int(s["job_id"]) for s in series(parsed, "milvus_refresh_job_progress_ratio")}
    assert refresh_ids and all(job_id > 2**53 for job_id in refresh_ids)
    assert series(parsed, "milvus_import_job_progress_ratio")
    counts = series(parsed, "milvus_refresh_jobs")
    assert {"RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed"} <= {
        s["state"] for s in counts
    }
    assert (
        value(parsed, "milvus_jobs_exporter_build_info", version=__import__("exporter").__version__)
        == 1
    )


def test_a_failed_refresh_shows_its_reason_and_a_later_success_moves_the_last_success_time(
    simulator, start_exporter
):
    sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)))
    collection = series(exporter.scrape(), "milvus_refresh_jobs")[0]["collection"]
    job_id = sim.start_refresh(
        "default",
        collection,
        outcome="failed",
        duration_seconds=30,
        reason="iceberg snapshot 42 not found",
    )
    labels = {"milvus_cluster": "prod", "database": "default", "collection": collection}
    deadline = time.monotonic() + 15
    while True:
        parsed = exporter.scrape()
        failure = value(
            parsed,
            "milvus_refresh_job_failure_info",
            **labels,
            job_id=str(job_id),
            reason="iceberg snapshot 42 not found",
        )
        if failure == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert failure == 1
    assert (
        value(
            parsed, "milvus_refresh_job_state", **labels, job_id=str(job_id), state="RefreshFailed"
        )
        == 1
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(Fault(kind="http_500"), "http_500", id="http-500"),
        pytest.param(Fault(kind="http_502_html"), "http_502", id="http-502-html"),
        pytest.param(Fault(kind="html_200"), "bad_json", id="html-with-200"),
        pytest.param(Fault(kind="truncated_json"), "bad_json", id="truncated-json"),
        pytest.param(Fault(kind="auth"), "auth", id="auth"),
        pytest.param(Fault(kind="db_not_found"), "api_800", id="database-not-found"),
        pytest.param(Fault(kind="timeout", seconds=5), "timeout", id="timeout"),
        pytest.param(Fault(kind="connection_close"), "reset", id="connection-closed"),
    ],
)
def test_a_bad_upstream_answer_marks_only_that_target_down_with_its_reason(
    simulator, start_exporter, fault, reason
):
    sim, url = simulator
    sim.set_fault(fault, database="analytics")
    exporter = start_exporter(cluster(url), poll_interval=2.0, request_timeout=1.0)
    parsed = exporter.scrape()  # the first cycle already met the fault
    for kind in ("refresh", "import"):
        assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels("analytics", kind)) == 0
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_target_error_info",
                **up_labels("analytics", kind),
                reason=reason,
            )
            == 1
        )
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_poll_errors_total",
                **up_labels("analytics", kind),
                reason=reason,
            )
            or 0
        ) >= 1
        assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels("default", kind)) == 1


def test_records_with_wrong_types_are_skipped_and_counted_while_the_target_stays_up(
    simulator, start_exporter
):
    sim, url = simulator
    sim.set_fault(Fault(kind="wrong_types"), database="analytics")
    exporter = start_exporter(cluster(url))
    parsed = exporter.scrape()
    for kind in ("refresh", "import"):
        labels = up_labels("analytics", kind)
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels) == 1
        skipped = [
            found
            for found in series(parsed, "milvus_jobs_exporter_skipped_records_total")
            if found["database"] == "analytics" and found["kind"] == kind
        ]
        assert skipped, f"no skipped {kind} records counted"
        assert all(
            found["reason"]
            in {
                "bad_job_id",
                "bad_collection",
                "bad_state",
                "bad_progress",
                "bad_time",
                "not_an_object",
            }
            for found in skipped
        )


def test_a_target_recovers_by_itself_when_the_upstream_comes_back(simulator, start_exporter):
    sim, url = simulator
    sim.set_fault(Fault(kind="http_503"), database="analytics")
    exporter = start_exporter(cluster(url))
    assert (
        value(
            exporter.scrape(), "milvus_jobs_exporter_target_up", **up_labels("analytics", "refresh")
        )
        == 0
    )
    sim.clear_faults()
    exporter.wait_for_cycles(2)
    parsed = exporter.scrape()
    assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels("analytics", "refresh")) == 1
    assert not series(parsed, "milvus_jobs_exporter_target_error_info")


def test_an_unreachable_cluster_does_not_stall_the_others(simulator, start_exporter):
    _sim, url = simulator
    dead = cluster("http://127.0.0.1:9", name="dead", databases=("default",))
    exporter = start_exporter(cluster(url, databases=("default",)), dead)
    parsed = exporter.scrape()
    assert (
        value(parsed, "milvus_jobs_exporter_target_up", **up_labels("default", "refresh", "dead"))
        == 0
    )
    assert (
        value(
            parsed,
            "milvus_jobs_exporter_target_error_info",
            **up_labels("default", "refresh", "dead"),
            reason="connect",
        )
        == 1
    )
    assert value(parsed, "milvus_jobs_exporter_target_up", **up_labels("default", "refresh")) == 1


@pytest.mark.slow
@pytest.mark.timing
def test_clusters_sharing_a_token_never_exceed_the_rate_limit_together(simulator, start_exporter):
    sim, url = simulator
    for index in range(30):
        sim.add_database(f"db{index:02d}", collections=1)
    databases = tuple(f"db{index:02d}" for index in range(30))
    exporter = start_exporter(
        cluster(url, name="east", databases=databases[:15]),
        cluster(url, name="west", databases=databases[15:]),
        cluster(url, name="other", token=TOKEN_B, databases=databases),
        poll_interval=60.0,
    )
    parsed = exporter.scrape()
    assert not series(parsed, "milvus_jobs_exporter_target_error_info")
    arrivals: dict[tuple[str, str], list[float]] = {}
    for record in sim.request_log():
        if record.path.startswith("/v2/"):
            arrivals.setdefault((record.token, record.path), []).append(record.arrival)
    assert len(arrivals[(TOKEN_A, "/v2/vectordb/jobs/external_collection/list")]) == 30
    for times in arrivals.values():
        times.sort()
        busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
        assert busiest <= 20
    rate_limited = [
        record
        for record in sim.request_log()
        if record.path.startswith("/v2/") and (record.status == 429 or record.code in (8, 1807))
    ]
    assert not rate_limited, rate_limited[:3]


def test_metrics_are_served_gzipped_and_as_openmetrics_when_asked(simulator, start_exporter):
    _sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)))
    plain = requests.get(
        exporter.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5
    )
    zipped = requests.get(
        exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True
    )
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert (
        gzip.decompress(raw).split(b"# HELP process_")[0]
        == plain.content.split(b"# HELP process_")[0]
    )
    openmetrics = requests.get(
        exporter.url + "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=5,
    )
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


def test_health_readiness_landing_page_and_unknown_paths(simulator, start_exporter):
    _sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)), wait=False)
    assert requests.get(exporter.url + "/healthz", timeout=5).status_code == 200
    exporter.wait_for_cycles(1)
    assert requests.get(exporter.url + "/readyz", timeout=5).status_code == 200
    page = requests.get(exporter.url + "/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "prod" in page.text and 'href="/metrics"' in page.text
    assert requests.get(exporter.url + "/nope", timeout=5).status_code == 404
    assert requests.post(exporter.url + "/metrics", timeout=5).status_code == 405


def test_readiness_waits_for_the_first_poll_cycle(simulator, start_exporter):
    sim, url = simulator
    sim.set_fault(Fault(kind="timeout", seconds=1.5))
    exporter = start_exporter(cluster(url, databases=("default",)), wait=False, request_timeout=3.0)
    assert requests.get(exporter.url + "/readyz", timeout=5).status_code == 503
    exporter.wait_for_cycles(1)
    assert requests.get(exporter.url + "/readyz", timeout=5).status_code == 200


def test_the_token_never_appears_in_metrics_the_landing_page_or_logs(simulator, start_exporter):
    sim, url = simulator
    sim.set_fault(Fault(kind="auth"), database="analytics")
    redactor = SecretRedactor()
    redactor.set_secrets([TOKEN_A])
    capture = LogCapture()
    structlog.configure(processors=[redactor, capture])
    try:
        exporter = start_exporter(cluster(url))
        exporter.wait_for_cycles(1)
        metrics = requests.get(exporter.url + "/metrics", timeout=5).text
        page = requests.get(exporter.url + "/", timeout=5).text
    finally:
        configure_logging("warning", "console")
    assert capture.entries, "the exporter should have logged the auth failure"
    assert any(
        entry["event"] == "poll.failed" and entry["reason"] == "auth" for entry in capture.entries
    )
    for text in (metrics, page, repr(capture.entries)):
        assert TOKEN_A not in text


def test_promtool_finds_nothing_to_complain_about_in_the_exposition(simulator, start_exporter):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian package prometheus)")
        pytest.skip("promtool not installed")
    _sim, url = simulator
    exporter = start_exporter(cluster(url))
    body = requests.get(exporter.url + "/metrics", timeout=5).content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


def test_import_jobs_carry_rows_bytes_and_times_from_describe(simulator, start_exporter):
    sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)))
    exporter.wait_for_cycles(1)
    parsed = exporter.scrape()
    tracked = series(parsed, "milvus_import_job_progress_ratio")
    assert tracked
    for labels in tracked:
        assert value(parsed, "milvus_import_job_total_rows", **labels) is not None
        assert value(parsed, "milvus_import_job_file_size_bytes", **labels) is not None
        assert value(parsed, "milvus_import_job_create_timestamp_seconds", **labels) is not None
    described = [r for r in sim.request_log() if r.path.endswith("/import/describe")]
    assert described and all(r.status == 200 for r in described)


def test_import_details_can_be_turned_off(simulator, start_exporter):
    sim, url = simulator
    exporter = start_exporter(cluster(url, databases=("default",)), import_details=False)
    exporter.wait_for_cycles(1)
    parsed = exporter.scrape()
    assert series(parsed, "milvus_import_job_progress_ratio")
    assert not series(parsed, "milvus_import_job_total_rows")
    assert not [r for r in sim.request_log() if r.path.endswith("/import/describe")]


def test_a_failed_import_exports_no_rows_no_completion_time_and_no_duration(
    simulator, start_exporter
):
    sim, url = simulator
    job_id = sim.start_import(
        "default", "books", outcome="failed", duration_seconds=30, reason="disk quota exceeded"
    )
    exporter = start_exporter(cluster(url, databases=("default",)))
    labels = {"milvus_cluster": "prod", "database": "default", "collection": "books"}
    deadline = time.monotonic() + 15
    while True:
        parsed = exporter.scrape()
        failure = value(
            parsed,
            "milvus_import_job_failure_info",
            **labels,
            job_id=job_id,
            reason="disk quota exceeded",
        )
        rows = value(parsed, "milvus_import_job_total_rows", **labels, job_id=job_id)
        if (failure == 1 and rows == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert failure == 1
    assert value(parsed, "milvus_import_job_progress_ratio", **labels, job_id=job_id) == 0
    assert (rows, value(parsed, "milvus_import_job_imported_rows", **labels, job_id=job_id)) == (
        0,
        0,
    )
    job = {**labels, "job_id": job_id}
    for name in (
        "milvus_import_job_complete_timestamp_seconds",
        "milvus_import_job_duration_seconds",
    ):
        assert not [s for s in series(parsed, name) if s.items() >= job.items()], name
    failed_durations = [
        s for s in series(parsed, "milvus_import_duration_seconds_count") if s["state"] == "Failed"
    ]
    assert not failed_durations, "a failed import has no completion time to measure from"
