"""Job records read liberally from what real servers send, and refused when they make no sense."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from exporter.upstream.records import (
    MAX_STATE_LENGTH,
    RECORD_ERROR_REASONS,
    ImportFileDetails,
    RecordError,
    parse_import_details,
    parse_import_job,
    parse_refresh_job,
)

BIG_JOB_ID = 449503829274509301  # above 2**53: a float would round it to ...9312


def refresh_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "jobId": BIG_JOB_ID,
        "collectionName": "ext_books",
        "state": "RefreshInProgress",
        "progress": 42,
        "startTime": 1712832000000,
        "endTime": 0,
    }
    record.update(fields)
    return record


def import_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "jobId": "448761313698322011",
        "collectionName": "quick_setup",
        "state": "Importing",
        "progress": 50,
    }
    record.update(fields)
    return record


def test_big_job_id_from_a_json_number_is_kept_exact() -> None:
    record = json.loads(
        '{"jobId": 449503829274509301, "collectionName": "c", "state": "RefreshPending"}'
    )

    job = parse_refresh_job(record)

    assert job.job_id == 449503829274509301
    assert job.job_id > 2**53


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("449503829274509301", id="string"),
        pytest.param(" 449503829274509301 ", id="padded-string"),
        pytest.param(449503829274509301, id="number"),
    ],
)
def test_refresh_job_id_above_2_53_is_exact_from_number_or_string(job_id: object) -> None:
    assert parse_refresh_job(refresh_record(jobId=job_id)).job_id == BIG_JOB_ID


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        pytest.param("448761313698322011", "448761313698322011", id="digit-string"),
        pytest.param(448761313698322011, "448761313698322011", id="number-above-2-53"),
        pytest.param("job-0a1b2c3d4e5f", "job-0a1b2c3d4e5f", id="control-plane-id"),
        pytest.param("  job-0a1b2c3d4e5f ", "job-0a1b2c3d4e5f", id="control-plane-id-padded"),
        pytest.param("00042", "42", id="leading-zeros"),
    ],
)
def test_import_job_id_is_kept_as_text_whatever_form_it_arrives_in(
    job_id: object, expected: str
) -> None:
    assert parse_import_job(import_record(jobId=job_id)).job_id == expected


def test_numeric_import_ids_order_by_number_and_text_ids_after() -> None:
    jobs = [
        parse_import_job(import_record(jobId=job_id))
        for job_id in ("job-b", "900", "10000", "job-a")
    ]

    ordered = sorted(jobs, key=lambda job: job.order_key)

    assert [job.job_id for job in ordered] == ["job-a", "job-b", "900", "10000"]


@pytest.mark.parametrize(
    ("progress", "ratio", "out_of_range"),
    [
        pytest.param(42, 0.42, False, id="percent"),
        pytest.param(0, 0.0, False, id="zero"),
        pytest.param(100, 1.0, False, id="hundred"),
        pytest.param("42", 0.42, False, id="numeric-string"),
        pytest.param(37.5, 0.375, False, id="fraction"),
        pytest.param(None, 0.0, False, id="missing"),
        pytest.param(150, 1.0, True, id="above-100-clamped"),
        pytest.param(-5, 0.0, True, id="negative-clamped"),
    ],
)
def test_progress_percent_becomes_a_clamped_ratio_and_says_when_clamped(
    progress: object, ratio: float, out_of_range: bool
) -> None:
    refresh = parse_refresh_job(refresh_record(progress=progress))
    imported = parse_import_job(import_record(progress=progress))

    assert refresh.progress_ratio == pytest.approx(ratio)
    assert refresh.progress_out_of_range is out_of_range
    assert imported.progress_ratio == pytest.approx(ratio)
    assert imported.progress_out_of_range is out_of_range


def test_times_in_milliseconds_become_seconds_and_zero_means_not_set() -> None:
    running = parse_refresh_job(refresh_record(startTime=1712833000000, endTime=0))
    finished = parse_refresh_job(
        refresh_record(startTime="1712832000000", endTime=1712832600500, state="RefreshCompleted")
    )

    assert running.start_time == 1712833000.0
    assert running.end_time is None
    assert finished.start_time == 1712832000.0
    assert finished.end_time == 1712832600.5


@pytest.mark.parametrize("missing", [None, ""], ids=["null", "empty-string"])
def test_missing_times_are_not_set(missing: object) -> None:
    job = parse_refresh_job(refresh_record(startTime=missing, endTime=missing))

    assert (job.start_time, job.end_time) == (None, None)


def test_record_without_time_fields_has_no_times() -> None:
    record = refresh_record()
    del record["startTime"], record["endTime"]

    job = parse_refresh_job(record)

    assert (job.start_time, job.end_time) == (None, None)


@pytest.mark.parametrize(
    ("state", "kept_as", "known"),
    [
        pytest.param("RefreshFailed", "RefreshFailed", True, id="known"),
        pytest.param("RefreshPaused", "RefreshPaused", False, id="unknown-but-safe"),
        pytest.param("Refresh Paused!", "Refresh_Paused_", False, id="unsafe-characters"),
        pytest.param('x"}\nevil{', "x___evil_", False, id="label-breaking-characters"),
        pytest.param("  RefreshPending ", "RefreshPending", True, id="padded"),
    ],
)
def test_unknown_refresh_states_are_sanitised_and_kept(
    state: str, kept_as: str, known: bool
) -> None:
    job = parse_refresh_job(refresh_record(state=state))

    assert job.state == kept_as
    assert job.known_state is known


def test_very_long_unknown_state_is_cut_to_a_bounded_label() -> None:
    job = parse_refresh_job(refresh_record(state="S" * 1000))

    assert job.state == "S" * MAX_STATE_LENGTH


@pytest.mark.parametrize(
    ("state", "known", "finished"),
    [
        pytest.param("Completed", True, True, id="completed"),
        pytest.param("Failed", True, True, id="failed"),
        pytest.param("Importing", True, False, id="importing"),
        pytest.param("Uncommitted", True, False, id="two-phase-uncommitted"),
        pytest.param("InProgress", True, False, id="older-docs-state"),
        pytest.param("Exploded", False, False, id="unknown"),
    ],
)
def test_import_states_include_the_two_phase_and_older_names(
    state: str, known: bool, finished: bool
) -> None:
    job = parse_import_job(import_record(state=state))

    assert (job.state, job.known_state, job.finished) == (state, known, finished)


def test_failure_reason_is_collapsed_to_one_line_and_trimmed_to_200_characters() -> None:
    reason = "failed to read parquet\n\tfile:   part-7.parquet " + "x" * 500

    refresh = parse_refresh_job(refresh_record(state="RefreshFailed", reason=reason))
    imported = parse_import_job(import_record(state="Failed", reason=reason))

    assert refresh.reason.startswith("failed to read parquet file: part-7.parquet xxx")
    assert len(refresh.reason) == 200
    assert imported.reason == refresh.reason


def test_missing_reason_is_empty() -> None:
    assert parse_refresh_job(refresh_record()).reason == ""


@pytest.mark.parametrize(
    ("fields", "named_field"),
    [
        pytest.param({"jobId": True}, "jobId", id="job-id-boolean"),
        pytest.param({"jobId": "abc"}, "jobId", id="job-id-text"),
        pytest.param({"jobId": "-12"}, "jobId", id="job-id-negative-string"),
        pytest.param({"jobId": -12}, "jobId", id="job-id-negative"),
        pytest.param({"jobId": 2**63}, "jobId", id="job-id-beyond-int64"),
        pytest.param({"jobId": "²"}, "jobId", id="job-id-superscript-digit"),
        pytest.param({"jobId": None}, "jobId", id="job-id-missing"),
        pytest.param({"jobId": 1.5}, "jobId", id="job-id-fraction"),
        pytest.param({"collectionName": 7}, "collectionName", id="collection-number"),
        pytest.param({"collectionName": None}, "collectionName", id="collection-missing"),
        pytest.param({"state": 3}, "state", id="state-number"),
        pytest.param({"state": "   "}, "state", id="state-blank"),
        pytest.param({"progress": "lots"}, "progress", id="progress-text"),
        pytest.param({"progress": True}, "progress", id="progress-boolean"),
        pytest.param({"progress": [42]}, "progress", id="progress-list"),
        pytest.param({"progress": float("nan")}, "progress", id="progress-nan"),
        pytest.param({"startTime": "yesterday"}, "startTime", id="start-text"),
        pytest.param({"startTime": -1}, "startTime", id="start-negative"),
        pytest.param({"endTime": False}, "endTime", id="end-boolean"),
        pytest.param({"endTime": {"ms": 1}}, "endTime", id="end-object"),
        pytest.param({"endTime": float("inf")}, "endTime", id="end-infinite"),
    ],
)
def test_refresh_record_with_wrong_types_is_refused_naming_the_field(
    fields: dict[str, Any], named_field: str
) -> None:
    with pytest.raises(RecordError, match=named_field):
        parse_refresh_job(refresh_record(**fields))


@pytest.mark.parametrize(
    ("fields", "named_field"),
    [
        pytest.param({"jobId": None}, "jobId", id="job-id-missing"),
        pytest.param({"jobId": ""}, "jobId", id="job-id-empty"),
        pytest.param({"jobId": ["1"]}, "jobId", id="job-id-list"),
        pytest.param({"jobId": "9" * 300}, "jobId", id="job-id-overlong"),
        pytest.param({"collectionName": ["books"]}, "collectionName", id="collection-list"),
        pytest.param({"state": None}, "state", id="state-missing"),
        pytest.param({"progress": "half"}, "progress", id="progress-text"),
    ],
)
def test_import_record_with_wrong_types_is_refused_naming_the_field(
    fields: dict[str, Any], named_field: str
) -> None:
    with pytest.raises(RecordError, match=named_field):
        parse_import_job(import_record(**fields))


@pytest.mark.parametrize("record", [None, [], "job", 42], ids=["null", "list", "string", "number"])
def test_record_that_is_not_an_object_is_refused(record: object) -> None:
    with pytest.raises(RecordError, match="expected a job object"):
        parse_refresh_job(record)
    with pytest.raises(RecordError, match="expected a job object"):
        parse_import_job(record)


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("not-a-number-" + "z" * 5000, id="long-text"),
        pytest.param("9" * 300, id="300-digit-string"),
        pytest.param("9" * 5000, id="digits-beyond-python-int-parsing-limit"),
        pytest.param(10**400, id="400-digit-number"),
    ],
)
def test_refusal_message_shows_a_bounded_excerpt_of_the_bad_value(job_id: object) -> None:
    with pytest.raises(RecordError) as caught:
        parse_refresh_job(refresh_record(jobId=job_id))

    assert len(str(caught.value)) < 120


def test_leading_zeros_do_not_push_a_job_id_out_of_range() -> None:
    job = parse_refresh_job(refresh_record(jobId="0" * 30 + "42"))

    assert job.job_id == 42


def test_finished_refresh_states_are_completed_and_failed() -> None:
    finished = {
        state
        for state in ("RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed")
        if parse_refresh_job(refresh_record(state=state)).finished
    }

    assert finished == {"RefreshCompleted", "RefreshFailed"}


# -- import/describe: the job, its files, and the recorded answers of a real server -----------

FIXTURES = Path(__file__).parent / "fixtures"
CREATED = datetime(2026, 11, 23, 10, 50, 25, tzinfo=timezone.utc).timestamp()  # 18:50:25+08:00
FAILED_READ = (
    "failed to read file s3://bulk-import/movies/part-00001.parquet: no such file or directory"
)
FAILED_IMPORTING = "schema mismatch: field 'embedding' has dim 768, collection expects 1024"


def recorded_describe(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_bytes())["data"]
    assert isinstance(data, dict)
    return data


def test_a_recorded_failed_import_has_no_rows_no_completion_and_the_reason_on_every_file() -> None:
    recorded = recorded_describe("milvus_import_describe_failed_importing.json")
    details = parse_import_details(recorded)

    assert (details.job_id, details.collection, details.state) == (
        "458912301925678749",
        "movies",
        "Failed",
    )
    assert (details.progress_ratio, details.imported_rows, details.total_rows) == (0.0, 0, 0)
    assert (details.create_time, details.complete_time) == (CREATED, None)
    assert details.reason == FAILED_IMPORTING
    assert details.skipped_files == ()
    assert details.files == (
        ImportFileDetails(
            file_name="[s3://bulk-import/movies/part-00000.parquet]",
            state="Failed",
            progress_ratio=0.0,
            imported_rows=0,
            total_rows=183500,
            file_size_bytes=367001600,
            complete_time=None,
            reason=FAILED_IMPORTING,
        ),
        ImportFileDetails(
            file_name="[s3://bulk-import/movies/part-00001.parquet]",
            state="Failed",
            progress_ratio=0.0,
            imported_rows=0,
            total_rows=183500,
            file_size_bytes=367001600,
            complete_time=None,
            reason=FAILED_IMPORTING,
        ),
    )


def test_a_recorded_import_that_failed_in_preimport_has_no_files_and_no_size() -> None:
    details = parse_import_details(recorded_describe("milvus_import_describe_failed.json"))

    assert (details.state, details.reason) == ("Failed", FAILED_READ)
    # rows 0 of 0 and size 0 before pre-import read the files: not known, never reported as 0
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (
        None,
        None,
        None,
    )
    assert (details.files, details.skipped_files) == ((), ())


def test_a_recorded_completed_import_reads_its_times_in_the_servers_offset_as_instants() -> None:
    details = parse_import_details(recorded_describe("milvus_import_describe_completed.json"))

    finished = CREATED + 12 * 60 + 16
    assert (details.state, details.progress_ratio, details.complete_time) == (
        "Completed",
        1.0,
        finished,
    )
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (
        1250000,
        1250000,
        2147483648,
    )
    assert details.reason == ""
    (file,) = details.files
    assert (file.file_name, file.state, file.progress_ratio, file.complete_time) == (
        "[s3://bulk-import/books/part-00000.parquet]",
        "Completed",
        1.0,
        finished,
    )


def test_a_recorded_running_import_keeps_task_states_and_an_absent_reason_is_empty() -> None:
    details = parse_import_details(recorded_describe("milvus_import_describe_running.json"))

    assert (details.state, details.progress_ratio, details.complete_time) == (
        "Importing",
        0.47,
        None,
    )
    assert [(file.state, file.progress_ratio, file.reason) for file in details.files] == [
        ("InProgress", 0.82, ""),
        ("Retry", 0.0, ""),
    ]


@pytest.mark.parametrize(
    ("bad_entry", "reason"),
    [
        pytest.param({"importedRows": "lots"}, "bad_count", id="rows-not-a-number"),
        pytest.param({"fileSize": -1}, "bad_count", id="negative-size"),
        pytest.param({"completeTime": "yesterday"}, "bad_time", id="time-not-rfc-3339"),
        pytest.param({"progress": "most"}, "bad_progress", id="progress-not-a-number"),
        pytest.param({"state": 3}, "bad_state", id="state-not-text"),
        pytest.param({"fileName": ["a.parquet"]}, "bad_file_name", id="name-not-text"),
    ],
)
def test_a_bad_field_in_one_file_entry_costs_only_that_entry(
    bad_entry: dict[str, Any], reason: str
) -> None:
    record = recorded_describe("milvus_import_describe_running.json")
    record["details"][1].update(bad_entry)

    details = parse_import_details(record)

    assert [file.state for file in details.files] == ["InProgress"]
    ((skipped_reason, count, message),) = details.skipped_files
    assert (skipped_reason, count) == (reason, 1)
    assert reason in RECORD_ERROR_REASONS
    assert len(message) < 200
    assert (details.imported_rows, details.total_rows) == (410000, 1000000)


@pytest.mark.parametrize(
    ("details_field", "files", "skipped"),
    [
        pytest.param(None, 0, (), id="missing"),
        pytest.param([], 0, (), id="empty"),
        pytest.param(["a.parquet", {"fileName": "b"}], 1, (("not_an_object", 1),), id="string"),
        pytest.param({"fileName": "a"}, 0, (("not_an_object", 1),), id="object-not-list"),
    ],
)
def test_details_that_are_missing_or_not_a_list_of_objects_leave_the_job_readable(
    details_field: Any, files: int, skipped: tuple[tuple[str, int], ...]
) -> None:
    record = recorded_describe("milvus_import_describe_completed.json")
    record["details"] = details_field

    details = parse_import_details(record)

    assert len(details.files) == files
    assert tuple((reason, count) for reason, count, _ in details.skipped_files) == skipped
    assert details.state == "Completed"


def test_a_file_entry_with_fields_left_out_reads_them_as_unknown() -> None:
    record = recorded_describe("milvus_import_describe_completed.json")
    record["details"] = [{"fileName": "s3://bulk-import/a.json"}]

    (file,) = parse_import_details(record).files

    assert file == ImportFileDetails(
        file_name="s3://bulk-import/a.json",
        state="",
        progress_ratio=None,
        imported_rows=None,
        total_rows=None,
        file_size_bytes=None,
        complete_time=None,
    )


def test_a_describe_without_collection_or_details_still_gives_the_daemon_its_fields() -> None:
    details = parse_import_details(
        {
            "jobId": "448761313698322011",
            "state": "Importing",
            "importedRows": "10",
            "totalRows": 20,
            "fileSize": 4096,
            "createTime": "2026-11-23T10:50:25Z",
            "completeTime": "",
        }
    )

    assert (details.collection, details.files, details.skipped_files) == ("", (), ())
    assert (details.imported_rows, details.total_rows, details.file_size_bytes) == (10, 20, 4096)
    assert (details.create_time, details.complete_time) == (CREATED, None)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        pytest.param("collectionName", 7, "bad_collection", id="collection"),
        pytest.param("progress", "half", "bad_progress", id="progress"),
        pytest.param("totalRows", "many", "bad_count", id="rows"),
        pytest.param("createTime", "at noon", "bad_time", id="time"),
    ],
)
def test_a_bad_job_level_field_of_an_import_describe_is_refused_naming_it(
    field: str, value: Any, reason: str
) -> None:
    record = recorded_describe("milvus_import_describe_completed.json")
    record[field] = value

    with pytest.raises(RecordError) as refused:
        parse_import_details(record)

    assert refused.value.reason == reason
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "s3://minio:9000/external/books/", "s3://minio:9000/external/books/", id="uri"
        ),
        pytest.param('{"type":"volume"}', '{"type":"volume"}', id="json-text"),
        pytest.param(None, "", id="missing"),
        pytest.param({"type": "volume"}, "", id="not-a-string"),
    ],
)
def test_a_refresh_jobs_external_source_is_kept_as_sent_and_never_refuses_the_job(
    source: Any, expected: str
) -> None:
    assert parse_refresh_job(refresh_record(externalSource=source)).external_source == expected


def test_jobs_parsed_with_one_shared_dict_keep_one_copy_of_each_name_and_source() -> None:
    """The JSON decoder makes a new string per record; 100,000 jobs kept ~17 MB of copies."""
    shared: dict[str, str] = {}
    records = [
        json.loads(json.dumps(refresh_record(jobId=job_id, externalSource='{"type":"volume"}')))
        for job_id in (1, 2)
    ]
    first, second = (parse_refresh_job(record, None, shared) for record in records)
    assert first.collection is second.collection
    assert first.external_source is second.external_source
    assert (first.collection, first.external_source) == ("ext_books", '{"type":"volume"}')
    alone = parse_refresh_job(records[1])
    assert (alone.collection, alone.external_source) == (second.collection, second.external_source)
