"""Answers that break HTTP or JSON in one place (issue 20): each is reported as what happened,
or read past when HTTP says a client must, against the real daemon and a hostile server."""

from __future__ import annotations

import json

import pytest

from . import hostile
from .conftest import series, value
from .test_no_silent_stall import BAD, GOOD, clusters_on, error_reason, labels, wait_for_scrape


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        pytest.param(hostile.bad_gzip, "bad_encoding", id="gzip-that-is-not"),
        pytest.param(hostile.two_content_lengths, "bad_response", id="two-content-lengths"),
        pytest.param(hostile.informational_first(25), "bad_response", id="endless-1xx"),
    ],
)
def test_an_answer_that_breaks_http_is_named_for_what_it_is_not_connect(
    start_exporter, behaviour, reason
):
    with hostile.hostile_server({BAD: behaviour}) as server:
        exporter = start_exporter(clusters_on(server.url))
        parsed = wait_for_scrape(
            exporter, lambda p: error_reason(p, BAD) is not None, 10, "the bad target to fail"
        )
        assert error_reason(parsed, BAD) == reason
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(GOOD)) == 1
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_poll_errors_total",
                **labels(BAD),
                reason=reason,
            )
            or 0
        ) >= 1


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(hostile.informational_first(1), id="103-early-hints"),
        pytest.param(hostile.informational_first(3), id="three-103s"),
        pytest.param(hostile.informational_first(1, b"102 Processing"), id="102-processing"),
    ],
)
def test_informational_answers_are_read_past_to_the_final_one(start_exporter, behaviour):
    with hostile.hostile_server({BAD: behaviour}) as server:
        exporter = start_exporter(clusters_on(server.url))
        exporter.wait_for_cycles(1)
        parsed = exporter.scrape()
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(BAD)) == 1
        assert error_reason(parsed, BAD) is None


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        pytest.param("startTime", "bad_time", id="time"),
        pytest.param("jobId", "bad_job_id", id="job-id"),
        pytest.param("progress", "bad_progress", id="progress"),
    ],
)
def test_a_5000_digit_integer_costs_its_record_not_the_target(start_exporter, field, reason):
    """Python refuses to read an integer of more than 4300 digits: json.loads failed the whole
    answer as bad_json, and the target went down for one record."""
    good = json.dumps(hostile.refresh_record(1, "ext_ok"))
    huge = json.dumps(hostile.refresh_record(2, "ext_huge", **{field: 0})).replace(
        f'"{field}": 0', f'"{field}": {"9" * 5000}'
    )
    answer = f'{{"code": 0, "data": {{"records": [{good}, {huge}]}}}}'
    with hostile.hostile_server({BAD: hostile.raw_json(answer)}) as server:
        exporter = start_exporter(clusters_on(server.url))
        parsed = exporter.scrape()
        assert value(parsed, "milvus_jobs_exporter_target_up", **labels(BAD)) == 1
        assert (
            value(
                parsed, "milvus_jobs_exporter_skipped_records_total", **labels(BAD), reason=reason
            )
            == 1
        )
        collections = {
            found["collection"]
            for found in series(parsed, "milvus_refresh_jobs")
            if found["database"] == BAD
        }
        assert collections == {"ext_ok"}
