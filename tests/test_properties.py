"""Hostile input everywhere it enters the exporter gets a clean error, never a crash.

Three doors let the outside in: the upstream's answers (bytes -> JSON -> envelope -> records), the
YAML config, and the little text formats inside both (durations, ``Retry-After``). Each property
below throws random and deliberately nasty input at one door and checks two things: only the
module's own error escapes (``ApiError``, ``RecordError``, ``ConfigError``, ``ValueError``), and
whatever is accepted satisfies the invariants the rest of the exporter relies on.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.config import loader as config_module
from exporter.config.durations import format_duration, parse_duration
from exporter.config.loader import Config, ConfigError, parse_config
from exporter.upstream.client import (
    API_PREFIX,
    IMPORT_LIST,
    MAX_IMPORT_PAGES,
    MAX_RETRY_AFTER,
    REFRESH_LIST,
    ApiError,
    Listing,
    MilvusClient,
    _import,
    _read_new_job_id,
    _read_refresh_job,
    _refresh,
    _unwrap,
    parse_retry_after,
)
from exporter.upstream.client import (
    read_page as _read_page,
)
from exporter.upstream.records import (
    MAX_REASON_LENGTH,
    MAX_STATE_LENGTH,
    RECORD_ERROR_REASONS,
    ImportJob,
    RecordError,
    RefreshJob,
    parse_import_job,
    parse_refresh_job,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BOUNDED_REASON = re.compile(
    r"bad_response|bad_json|auth|rate_limited|server_timeout|too_many_pages|api_[1-9][0-9]{0,4}|api_other"
)
LABEL_SAFE_STATE = re.compile(r"[A-Za-z0-9_.-]+")
ENDPOINT = "https://in01.example.com:19530"

# ---------------------------------------------------------------------------------------------
# Hostile JSON values
# ---------------------------------------------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\n",
    "²",  # str.isdigit() says yes, int() says no
    "\u0661\u0662\u0663",  # Arabic-Indic digits: int() and float() accept them
    "--5",
    "-0",
    "1_000",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "  42 ",
    "0x10",
    "9" * 25,
    "9" * 400,  # float() says inf
    "9" * 5000,  # int() refuses more than 4300 digits
    "x" * 100_000,
    "RefreshInProgress",
    "Refresh In\nProgress",
    "job-0a1b2c3d4e5f",
    "\x00",
    "\u2028",
    "ü" * 300,
]

NASTY_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    99,
    100,
    101,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    10**19,
    10**400,  # beyond float range: float(), math.isfinite() and / overflow
    -(10**400),
    0.5,
    -0.0,
    1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
]


def beyond_str() -> int:
    """An int ``str()`` refuses to print (over 4300 digits); built lazily, as repr() fails on it."""
    return 10**5000


json_scalars = st.one_of(
    st.builds(beyond_str),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(NASTY_TEXT),
)

RECORD_FIELDS = [
    "jobId",
    "collectionName",
    "state",
    "progress",
    "startTime",
    "endTime",
    "reason",
    "records",
    "count",
    "pageSize",
    "currentPage",
    "code",
    "data",
    "message",
]

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(RECORD_FIELDS) | st.text(max_size=8), children, max_size=6
        )
    ),
    max_leaves=25,
)


def refresh_record() -> dict[str, Any]:
    return {
        "jobId": 449503829274509301,
        "collectionName": "ext_books",
        "state": "RefreshInProgress",
        "progress": 42,
        "startTime": 1712832000000,
        "endTime": 0,
    }


def import_record() -> dict[str, Any]:
    return {
        "jobId": "448761313698322011",
        "collectionName": "quick_setup",
        "state": "Importing",
        "progress": 50,
        "reason": "",
    }


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A valid record with a few fields removed or swapped for hostile values."""
    record = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        field = draw(st.sampled_from([*valid, "reason", "progress", "jobId"]))
        if draw(st.booleans()) and field in record:
            del record[field]
        else:
            record[field] = draw(json_values)
    return record


records = st.one_of(
    json_values,
    mutated(refresh_record()),
    mutated(import_record()),
    st.just(refresh_record()),
    st.just(import_record()),
)

codes = st.one_of(
    st.sampled_from([0, 200, "0", " 0 ", "200", "²", "--5", "-1", 1800, 1401, 8, 1807, 100]),
    st.sampled_from([21119, 99_999, 100_000, -1, 10**400, "9" * 5000, True, 0.0, None]),
    json_scalars,
)


@st.composite
def data_objects(draw: st.DrawFn) -> Any:
    """What sits in ``data``: a records list with optional paging, one record, or anything."""
    shape = draw(st.sampled_from(["records", "paged", "one", "job_id", "any"]))
    if shape == "records":
        return {"records": draw(st.lists(records, max_size=4))}
    if shape == "paged":
        paging = {
            key: draw(st.sampled_from([1, 2, 5, 100, "3"]) | json_scalars)
            for key in ("count", "pageSize", "currentPage")
            if draw(st.integers(min_value=0, max_value=4))
        }
        return {"records": draw(st.lists(records, max_size=3)), **paging}
    if shape == "one":
        return draw(records)
    if shape == "job_id":
        return {"jobId": draw(json_scalars)}
    return draw(json_values)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    """A decoded answer: an envelope with a hostile code, data and message, or anything at all."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(json_values)
    payload: dict[str, Any] = {"code": draw(codes), "data": draw(data_objects())}
    if draw(st.booleans()):
        payload["message"] = draw(json_values)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        del payload["code"]
    return payload


def assert_clean_api_error(error: ApiError) -> None:
    assert BOUNDED_REASON.fullmatch(error.reason), error.reason
    assert "\n" not in str(error)


def assert_refresh_job_invariants(job: RefreshJob) -> None:
    assert isinstance(job.job_id, int) and not isinstance(job.job_id, bool)
    assert 0 <= job.job_id < 2**63
    assert_common_invariants(job)
    for moment in (job.start_time, job.end_time):
        assert moment is None or (isinstance(moment, float) and math.isfinite(moment))
        assert moment is None or moment >= 0


def assert_import_job_invariants(job: ImportJob) -> None:
    assert isinstance(job.job_id, str) and job.job_id
    assert_common_invariants(job)


def assert_common_invariants(job: RefreshJob | ImportJob) -> None:
    assert isinstance(job.progress_ratio, float)
    assert 0.0 <= job.progress_ratio <= 1.0
    assert isinstance(job.state, str) and 0 < len(job.state) <= MAX_STATE_LENGTH
    assert LABEL_SAFE_STATE.fullmatch(job.state), job.state
    assert isinstance(job.collection, str)
    assert isinstance(job.reason, str) and len(job.reason) <= MAX_REASON_LENGTH


def check_listing(listing: Listing[Any]) -> None:
    for reason, count, message in listing.skipped:
        assert reason in RECORD_ERROR_REASONS
        assert count >= 1
        assert "\n" not in message


def check_refresh_list(listing: Listing[RefreshJob]) -> None:
    check_listing(listing)
    for job in listing.jobs:
        assert_refresh_job_invariants(job)


def check_import_page(page: tuple[Listing[ImportJob], tuple[int, int, int] | None]) -> None:
    listing, paging = page
    check_listing(listing)
    for job in listing.jobs:
        assert_import_job_invariants(job)
    if paging is not None:
        current, pages, page_size = paging
        assert current >= 1 and page_size >= 1 and pages >= 0


def check_new_job_id(job_id: int) -> None:
    assert isinstance(job_id, int) and 0 <= job_id < 2**63


def _read_refresh_list(data: Any) -> Listing[RefreshJob]:
    return _read_page(data, _refresh, time.time(), paged=False)[0]


def _read_import_page(data: Any) -> tuple[Listing[ImportJob], tuple[int, int, int] | None]:
    return _read_page(data, _import, time.time(), paged=True)


READERS: list[tuple[Callable[[Any], Any], Callable[[Any], None]]] = [
    (_read_refresh_list, check_refresh_list),
    (_read_import_page, check_import_page),
    (_read_refresh_job, assert_refresh_job_invariants),
    (_read_new_job_id, check_new_job_id),
]

# ---------------------------------------------------------------------------------------------
# 1. The response parsing path
# ---------------------------------------------------------------------------------------------


@FAST
@given(payload=payloads())
@example(payload={"code": "²"})
@example(payload={"code": "--5"})
@example(payload={"code": 10**5000, "message": "x"})
@example(payload={"code": 1100, "message": 10**5000})
@example(payload={"code": 0, "data": {"records": [], "count": float("inf"), "pageSize": 1}})
@example(payload={"code": 0, "data": {"records": [], "count": 10**400, "pageSize": 7}})
@example(payload={"code": 0, "data": {"records": [{**refresh_record(), "progress": 10**400}]}})
@example(payload={"code": 0, "data": {"records": [{**refresh_record(), "startTime": 10**400}]}})
@example(payload={"code": 0, "data": {"records": [{**import_record(), "reason": 10**5000}]}})
def test_any_decoded_answer_is_read_or_refused_with_a_bounded_reason(payload: Any) -> None:
    for read, check in READERS:
        try:
            result = read(_unwrap(payload))
        except ApiError as error:
            assert_clean_api_error(error)
        else:
            check(result)


@FAST
@given(
    paging=st.fixed_dictionaries(
        {"count": json_scalars, "pageSize": json_scalars}, optional={"currentPage": json_scalars}
    )
)
@example(paging={"count": 10, "pageSize": 1, "currentPage": -(10**9)})
@example(paging={"count": 10, "pageSize": 1, "currentPage": 0})
def test_hostile_page_counts_never_ask_for_more_than_the_page_limit(paging: dict[str, Any]) -> None:
    body = dumps({"code": 0, "data": {"records": [], **paging}})
    with (
        requests.Session() as session,
        responses.RequestsMock(assert_all_requests_are_fired=False) as api,
    ):
        api.add(responses.POST, ENDPOINT + API_PREFIX + IMPORT_LIST, body=body, status=200)
        client = MilvusClient(ENDPOINT, "token-for-tests", session, 5.0)
        try:
            client.list_import_jobs("default")
        except ApiError as error:
            assert_clean_api_error(error)
        assert len(api.calls) <= MAX_IMPORT_PAGES


@FAST
@given(record=records)
@example(record={**refresh_record(), "progress": 10**400})
@example(record={**refresh_record(), "progress": "9" * 400})
@example(record={**refresh_record(), "startTime": 10**400})
@example(record={**refresh_record(), "endTime": "\u0661\u0662\u0663"})
@example(record={**refresh_record(), "reason": 10**5000})
@example(record={**refresh_record(), "jobId": "²"})
@example(record={**refresh_record(), "jobId": 10**5000})
def test_any_refresh_record_is_parsed_within_invariants_or_refused(record: Any) -> None:
    try:
        job = parse_refresh_job(record)
    except RecordError as error:
        assert "\n" not in str(error)
        return
    assert_refresh_job_invariants(job)


@FAST
@given(record=records)
@example(record={**import_record(), "progress": 10**400})
@example(record={**import_record(), "reason": 10**5000})
@example(record={**import_record(), "jobId": " " * 300})
@example(record={**import_record(), "jobId": "²"})
def test_any_import_record_is_parsed_within_invariants_or_refused(record: Any) -> None:
    try:
        job = parse_import_job(record)
    except RecordError as error:
        assert "\n" not in str(error)
        return
    assert_import_job_invariants(job)
    assert isinstance(job.order_key, tuple)


# ---------------------------------------------------------------------------------------------
# 2. Raw bytes, end to end through the client
# ---------------------------------------------------------------------------------------------

VALID_BODY = json.dumps(
    {"code": 0, "data": {"records": [refresh_record(), {**refresh_record(), "endTime": 1}]}}
)
NASTY_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b"\xff\xfe\x00\x00garbage",
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b"[" * 900 + b"]" * 900,
    b"1" * 5000,
    b'{"code": 0, "data": {"records": [{"jobId": 1, "collectionName": "c", "state": "s", '
    b'"progress": 1' + b"0" * 400 + b"}]}}",
    b'{"code": 0, "data": {"records": [{"jobId": 1, "collectionName": "c", "state": "s", '
    b'"startTime": 1' + b"0" * 400 + b"}]}}",
    b'{"code": 0, "data": {"records": [], "count": 1' + b"0" * 400 + b', "pageSize": 3}}',
    b'{"code": 0, "data": {"records": [], "count": 1e400, "pageSize": 3}}',
    b'{"code": 0, "data": {"records": [{"progress": NaN, "state": "s"}]}}',
    b'{"code": "\xc2\xb2", "message": "x"}',  # "²"
    b'{"code": 1100, "message": [' + b"[" * 900 + b"]" * 900 + b"]}",
]

json_encodable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**420), max_value=10**420),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from([text for text in NASTY_TEXT if len(text) < 1000]),
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(RECORD_FIELDS), children, max_size=6)
    ),
    max_leaves=20,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["bytes", "truncated", "nasty", "envelope", "json"]))
    if shape == "bytes":
        return draw(st.binary(max_size=200))
    if shape == "truncated":
        return VALID_BODY[: draw(st.integers(min_value=0, max_value=len(VALID_BODY)))].encode()
    if shape == "nasty":
        return draw(st.sampled_from(NASTY_BODIES))
    if shape == "envelope":
        data = {
            "records": draw(st.lists(mutated(refresh_record()) | mutated(import_record()))),
            **draw(
                st.dictionaries(
                    st.sampled_from(["count", "pageSize", "currentPage"]), json_encodable
                )
            ),
        }
        return dumps({"code": draw(st.sampled_from([0, 200, "0"])), "data": data})
    return dumps(draw(json_encodable))


def dumps(value: Any) -> bytes:
    """JSON text; numbers beyond ``str()``'s 4300 digits are written out by hand."""
    try:
        return json.dumps(value).encode()
    except ValueError:
        return b'{"code": 0, "data": {"records": [{"progress": 1' + b"0" * 4299 + b"}]}}"


def call_with_body(body: bytes, method: str) -> list[Any]:
    with (
        requests.Session() as session,
        responses.RequestsMock(assert_all_requests_are_fired=False) as api,
    ):
        client = MilvusClient(ENDPOINT, "token-for-tests", session, 5.0)
        for path in (REFRESH_LIST, IMPORT_LIST):
            api.add(responses.POST, ENDPOINT + API_PREFIX + path, body=body, status=200)
        if method == "refresh":
            return list(client.list_refresh_jobs("default").jobs)
        return list(client.list_import_jobs("default").jobs)


@SLOW
@given(body=bodies(), method=st.sampled_from(["refresh", "import"]))
@example(body=NASTY_BODIES[10], method="refresh")
@example(body=NASTY_BODIES[11], method="refresh")
@example(body=NASTY_BODIES[12], method="import")
@example(body=NASTY_BODIES[13], method="import")
def test_any_answer_body_gives_jobs_or_an_api_error(body: bytes, method: str) -> None:
    try:
        jobs = call_with_body(body, method)
    except ApiError as error:
        assert_clean_api_error(error)
        return
    for job in jobs:
        if method == "refresh":
            assert_refresh_job_invariants(job)
        else:
            assert_import_job_invariants(job)


@pytest.mark.parametrize(
    "body",
    [pytest.param(body, id=f"nasty-{index}") for index, body in enumerate(NASTY_BODIES)],
)
@pytest.mark.parametrize("method", ["refresh", "import"])
def test_each_known_nasty_body_is_an_api_error_or_jobs(body: bytes, method: str) -> None:
    try:
        call_with_body(body, method)
    except ApiError as error:
        assert_clean_api_error(error)


# ---------------------------------------------------------------------------------------------
# 3. The YAML config
# ---------------------------------------------------------------------------------------------

SECRET = "s3cr3t-value-xyz"
ENVIRON = {"SECRET_TOKEN": SECRET}


def valid_config() -> dict[str, Any]:
    return {
        "listen_address": "0.0.0.0:9969",
        "poll_interval": "30s",
        "request_timeout": "10s",
        "requests_per_second": 20,
        "max_tracked_jobs": 50_000,
        "max_concurrent_requests": 8,
        "max_retries": 2,
        "max_response_bytes": 1_048_576,
        "clusters": [
            {
                "name": "prod",
                "endpoint": "https://in01.example.com:19530",
                "token": "${SECRET_TOKEN}",
                "databases": ["default", "analytics"],
                "jobs": ["refresh", "import"],
                "tls_insecure_skip_verify": False,
            },
            {
                "name": "staging",
                "endpoint": "http://127.0.0.1:19530/",
                "token": "Bearer-${SECRET_TOKEN}",
            },
        ],
    }


RAW = "__raw_yaml_snippet__"
RAW_SNIPPETS = [
    "!!python/object:os.system",
    "!!python/object/apply:os.system ['true']",
    "!!int abc",
    "!!int 9" + "9" * 5000,
    "!!float x",
    "!!bool maybe",
    "!!timestamp nope",
    "!!binary '@@@'",
    "!!set {a: 1}",
    "!!omap [a]",
    "!!merge x",
    "{<<: 5}",
    "9" * 5000,
    "-9" + "9" * 5000,
    "0x" + "f" * 4000,
    "-0x" + "f" * 4000,
    "1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20:21:22:23:24:25:26:27:28:29",
    ".nan",
    ".inf",
    "-.inf",
    "2001-13-45",
    "*undefined_alias",
    "&loop [*loop]",
    "&loop {key: *loop}",
    "[" * 1000,  # deep enough for PyYAML's recursive composer to hit the recursion limit
    "[" * 1000 + "]" * 1000,
    "'${SECRET_TOKEN}'",
    "'${UNSET_VARIABLE}'",
    "'$${SECRET_TOKEN}'",
    "'${SECRET_TOKEN'",
    '"line one\\nline two"',
    "~",
    "''",
    "[]",
    "{}",
    "'\\x00'",
]

REPLACEMENTS: list[Any] = [
    None,
    [],
    {},
    [None],
    ["${SECRET_TOKEN}", "${SECRET_TOKEN}"],
    {"nested": ["${SECRET_TOKEN}"]},
    True,
    0,
    -1,
    10**400,
    -(10**400),
    float("nan"),
    float("inf"),
    float("-inf"),
    ".nan",
    "",
    " ",
    "${SECRET_TOKEN}",
    "https://${SECRET_TOKEN}",
    "${SECRET_TOKEN}:9969",
    "${UNSET_VARIABLE}",
    "${UNSET_VARIABLE:-fallback}",
    "ftp://example.com",
    "https://example.com/?q=${SECRET_TOKEN}",
    "30",
    "0s",
    "9" * 400 + "h",
    "\u0661s",
    "line one\nline two",
    "\x85",
    RAW,
]

CLUSTER_KEYS = list(config_module.CLUSTER_KEYS)


@st.composite
def mutated_configs(draw: st.DrawFn) -> str:
    """The valid config with keys removed, renamed or retyped, as YAML text."""
    config = valid_config()
    target: dict[Any, Any]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            target = config
            keys = [key for key in config if isinstance(key, str)]
        else:
            cluster_list = config.get("clusters")
            if not isinstance(cluster_list, list) or not cluster_list:
                continue
            target = draw(st.sampled_from(cluster_list))
            if not isinstance(target, dict):
                continue
            keys = [*(key for key in target if isinstance(key, str)), *CLUSTER_KEYS]
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["remove", "rename", "retype", "retype", "retype"]))
        if action == "remove":
            target.pop(key, None)
        elif action == "rename":
            new_names: list[Any] = [key.upper(), key + "s", key[:-1], "${SECRET_TOKEN}", 7]
            target[draw(st.sampled_from(new_names))] = target.pop(key, None)
        else:
            target[key] = draw(st.sampled_from(REPLACEMENTS) | json_scalars.filter(_dumpable))
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    if RAW in text:
        text = text.replace(RAW, draw(st.sampled_from(RAW_SNIPPETS)), 1)
    return text


def _dumpable(value: Any) -> bool:
    return not isinstance(value, int) or abs(value) < 10**4000


def billion_laughs(depth: int, used_in: str) -> str:
    """Each level is ten aliases of the one before: 10**depth leaves from a few hundred bytes."""
    lines = ["x: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, depth + 1):
        lines.append(f"x{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    top = f"*l{depth}"
    if used_in == "clusters":
        lines.append(f"clusters: {top}")
    elif used_in == "cluster-value":
        lines.append(f"clusters: [{{name: a, endpoint: 'http://a', databases: {top}}}]")
    else:
        lines.append(f"{used_in}: {top}")
        lines.append("clusters: [{name: a, endpoint: 'http://a'}]")
    return "\n".join(lines) + "\n"


random_yaml_documents = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**500), max_value=10**500),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(
            ["${SECRET_TOKEN}", "${UNSET}", "http://x", "clusters", "30s", *CLUSTER_KEYS]
        ),
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["clusters", "poll_interval", "listen_address", *CLUSTER_KEYS])
            | st.text(max_size=8)
            | st.integers(),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
).map(lambda document: yaml.safe_dump(document, sort_keys=False, allow_unicode=True))

yaml_alphabet_text = st.lists(
    st.sampled_from([*":-[]{}&*!|>'\"#%@`,? \n\tab19$.~", "${SECRET_TOKEN}"]), max_size=60
).map("".join)

config_texts = st.one_of(
    st.text(max_size=200),
    yaml_alphabet_text,
    random_yaml_documents,
    mutated_configs(),
    mutated_configs(),
    st.builds(
        billion_laughs,
        st.integers(min_value=1, max_value=4),
        st.sampled_from(["clusters", "cluster-value", "poll_interval", "listen_address"]),
    ),
)


def check_config_outcome(text: str) -> Config | None:
    try:
        config = parse_config(text, "config.yaml", ENVIRON)
    except ConfigError as error:
        message = str(error)
        lines = message.splitlines()
        assert error.problems, "a refused config names at least one problem"
        assert len(lines) == len(error.problems), message
        for line in lines:
            assert line.startswith("config.yaml"), line
        assert SECRET not in message
        return None
    names = [cluster.name for cluster in config.clusters]
    assert config.clusters
    assert len(names) == len(set(names))
    for cluster in config.clusters:
        assert re.match(r"https?://", cluster.endpoint), cluster.endpoint
    for cluster in config.clusters:
        assert f"token={cluster.token!r}" not in repr(cluster)
    return config


@SLOW
@given(text=config_texts)
@example(text=yaml.safe_dump(valid_config(), sort_keys=False))
def test_any_config_text_is_accepted_valid_or_refused_one_line_per_problem(text: str) -> None:
    check_config_outcome(text)


def config_with(snippet: str, where: str) -> str:
    config = valid_config()
    if where.startswith("clusters[0]."):
        config["clusters"][0][where.removeprefix("clusters[0].")] = RAW
    else:
        config[where] = RAW
    return yaml.safe_dump(config, sort_keys=False).replace(RAW, snippet, 1)


@pytest.mark.parametrize(
    "snippet",
    [
        pytest.param(snippet, id=f"{index}-{snippet[:20]}")
        for index, snippet in enumerate(RAW_SNIPPETS)
    ],
)
@pytest.mark.parametrize(
    "where",
    ["poll_interval", "requests_per_second", "max_retries", "clusters[0].name", "unknown"],
)
def test_every_hostile_yaml_value_is_a_config_error_not_a_crash(snippet: str, where: str) -> None:
    check_config_outcome(config_with(snippet, where))


@pytest.mark.parametrize(
    "where",
    [
        "listen_address",
        "clusters[0].name",
        "clusters[0].endpoint",
        "clusters[0].token_file",
        "clusters[0].tls_ca_file",
        "clusters[0].jobs",
        "clusters[0].databases",
    ],
)
def test_a_token_from_the_environment_never_shows_in_a_config_error(where: str) -> None:
    config = valid_config()
    value: Any = "${SECRET_TOKEN}"
    if where.endswith(("jobs", "databases")):
        value = ["${SECRET_TOKEN}", "${SECRET_TOKEN}"]
    if where == "clusters[0].name":
        config["clusters"][1]["name"] = "${SECRET_TOKEN}"
    if where.startswith("clusters[0]."):
        config["clusters"][0][where.removeprefix("clusters[0].")] = value
    else:
        config[where] = value
    config["clusters"][0].pop("token")  # token_file and token together is refused before reading

    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(config, sort_keys=False), "config.yaml", ENVIRON)

    assert SECRET not in str(caught.value)
    assert "${SECRET_TOKEN}" in str(caught.value)


@pytest.mark.parametrize(
    "used_in", ["clusters", "cluster-value", "poll_interval", "listen_address"]
)
def test_an_alias_bomb_is_refused_quickly(used_in: str) -> None:
    started = time.monotonic()

    check_config_outcome(billion_laughs(6, used_in))

    assert time.monotonic() - started < 2.0


def test_the_valid_config_used_for_mutations_is_itself_valid() -> None:
    config = check_config_outcome(yaml.safe_dump(valid_config(), sort_keys=False))

    assert config is not None
    assert [cluster.name for cluster in config.clusters] == ["prod", "staging"]


# ---------------------------------------------------------------------------------------------
# 4. Durations
# ---------------------------------------------------------------------------------------------

duration_texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789.msdhwy \u0660\u0661\u00b2", max_size=30),
    st.builds(
        "".join,
        st.lists(
            st.builds(
                lambda number, unit: f"{number}{unit}",
                st.integers(min_value=0, max_value=10**30)
                | st.sampled_from(["1.5", "0.001", "9" * 400]),
                st.sampled_from(["ms", "s", "m", "h", "d", "w", "y"]),
            ),
            min_size=1,
            max_size=4,
        ),
    ),
)


@FAST
@given(text=duration_texts)
@example(text="9" * 400 + "s")
@example(text="1" * 400 + "d")
@example(text="\u0661s")
def test_any_duration_text_is_a_finite_duration_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert isinstance(seconds, float)
    assert math.isfinite(seconds) and seconds >= 0
    assert parse_duration(format_duration(seconds)) == seconds  # whole milliseconds: exact


@FAST
@given(seconds=st.floats(min_value=0.0, max_value=10**9, allow_nan=False, allow_infinity=False))
@example(seconds=0.001234567891)
@example(seconds=1.2345678912)
@example(seconds=123456.7891234)
def test_printed_duration_parses_back_to_the_nearest_millisecond(seconds: float) -> None:
    """The grammar's finest unit is the millisecond (Prometheus's too): half of one, plus the
    float noise of numbers up to 1e9, is the bound."""
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=0.000501)


# ---------------------------------------------------------------------------------------------
# 5. Retry-After
# ---------------------------------------------------------------------------------------------

retry_after_texts = st.one_of(
    st.text(max_size=60),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.builds(
        "{}, {} {} {} {:02d}:{:02d}:{:02d} {}".format,
        st.sampled_from(["Mon", "Wed", "Xyz"]),
        st.integers(min_value=-5, max_value=40),
        st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
        st.integers(min_value=-1, max_value=10**6),
        st.integers(min_value=0, max_value=99),
        st.integers(min_value=0, max_value=99),
        st.integers(min_value=0, max_value=99),
        st.sampled_from(["GMT", "+0000", "-0000", "+9999", "-2359", "+2400", "EST", "", "XYZ"]),
    ),
)


@FAST
@given(text=retry_after_texts)
@example(text="Wed, 21 Oct 0001 07:28:00 -0000")
@example(text="Fri, 31 Dec 9999 23:59:59 -1200")
@example(text="1e400")
@example(text="nan")
@example(text="-5")
def test_any_retry_after_is_nothing_or_seconds_between_zero_and_the_cap(text: str) -> None:
    seconds = parse_retry_after(text)

    assert seconds is None or (
        isinstance(seconds, float) and math.isfinite(seconds) and 0.0 <= seconds <= MAX_RETRY_AFTER
    )


EXTREME_DATES = [
    "Mon, 01 Jan 0001 00:00:00 -0000",
    "Fri, 31 Dec 9999 23:59:59 -0000",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Mon, 01 Jan 0001 00:00:00 +2359",
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_retry_after_dates_read_the_same_in_every_local_time_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        seconds = [parse_retry_after(text) for text in EXTREME_DATES]
    finally:
        monkeypatch.undo()
        time.tzset()

    assert seconds == [0.0, MAX_RETRY_AFTER, MAX_RETRY_AFTER, 0.0]
