"""Every job kind the simulator serves answers like its server, in both flavours.

The tests run once per kind in the simulator's registry (`exporter.simulator.kinds.KINDS`) and
flavour. What each kind must do comes from `FACTS` below, written from the upstream API summary
and `snapshot-jobs.md`, never from the simulator's own declarations: a kind registered without
facts fails `test_every_registered_kind_has_its_facts_here`, so a new kind cannot skip them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from exporter.simulator import FLAVORS, Fault
from exporter.simulator.kinds import KINDS

from .simulated import FakeClock, Served, start

RECORD_TYPES = {int: "a JSON number", str: "a JSON string"}


@dataclass(frozen=True)
class Facts:
    """What the server does for one kind (the upstream API summary, snapshot-jobs.md)."""

    list_path: str
    describe_path: str
    id_type: type  # of `jobId` in records; describe requests take it as `describe_id_type`
    describe_id_type: type
    states: frozenset[str]  # documented
    keys: frozenset[str]  # always in a list record
    optional_keys: frozenset[str]  # sometimes in a list record
    describe_keys: frozenset[str]  # always in a describe answer (besides `keys`)
    not_found_code: int
    unknown_id: object  # of the describe type, never a job
    wrong_ids: tuple[tuple[dict[str, object], int], ...]  # body, code
    collection: str  # a collection the kind's jobs run on
    control_route: str
    fates: dict[str, str]  # outcome -> state long after its end (stuck ones: for ever)
    fail_knobs: dict[str, Any]  # options that make every automatic job fail
    stick_knobs: dict[str, Any] | None  # options that make automatic jobs stick
    failed_state: str
    running_states: frozenset[str]
    extra: dict[str, Any] = field(default_factory=dict)


REFRESH_STATES = frozenset(
    {"RefreshPending", "RefreshInProgress", "RefreshCompleted", "RefreshFailed"}
)
IMPORT_STATES = frozenset(
    {"Pending", "Importing", "Completed", "Failed", "Uncommitted", "Committing", "None"}
)
RESTORE_STATES = frozenset(
    {
        "RestoreSnapshotPending",
        "RestoreSnapshotExecuting",
        "RestoreSnapshotCompleted",
        "RestoreSnapshotFailed",
    }
)

FACTS: dict[str, Facts] = {
    "refresh": Facts(
        list_path="/v2/vectordb/jobs/external_collection/list",
        describe_path="/v2/vectordb/jobs/external_collection/describe",
        id_type=int,
        describe_id_type=int,
        states=REFRESH_STATES,
        keys=frozenset(
            {"jobId", "collectionName", "state", "progress", "externalSource", "externalSpec"}
            | {"startTime", "endTime"}
        ),
        optional_keys=frozenset({"reason"}),
        describe_keys=frozenset(),
        not_found_code=1100,
        unknown_id=449503829274509399,
        wrong_ids=(
            ({"jobId": "449503829274509301"}, 1801),
            ({"jobId": 4.5e17}, 1801),
            ({"jobId": True}, 1801),
            ({}, 1802),
            ({"jobId": None}, 1802),
        ),
        collection="ext_books",
        control_route="/refresh",
        fates={
            "completed": "RefreshCompleted",
            "failed": "RefreshFailed",
            "hang": "RefreshInProgress",
            "hang_pending": "RefreshPending",
            "retrying": "RefreshPending",
            "index_wait": "RefreshCompleted",
        },
        fail_knobs={"failure_probability": 1.0},
        stick_knobs={"failure_probability": 0.0, "hang_probability": 1.0},
        failed_state="RefreshFailed",
        running_states=frozenset({"RefreshPending", "RefreshInProgress"}),
    ),
    "import": Facts(
        list_path="/v2/vectordb/jobs/import/list",
        describe_path="/v2/vectordb/jobs/import/describe",
        id_type=str,
        describe_id_type=str,
        states=IMPORT_STATES,
        keys=frozenset({"jobId", "collectionName", "state", "progress"}),
        optional_keys=frozenset({"reason"}),
        describe_keys=frozenset(
            {"importedRows", "totalRows", "fileSize", "createTime", "completeTime", "details"}
        ),
        not_found_code=2100,
        unknown_id="458912301925678799",
        wrong_ids=(
            ({"jobId": 448761313698322011}, 1801),
            ({"jobId": "99999999999999999999"}, 1801),
            ({"jobId": "job-7"}, 2100),
            ({}, 1802),
            ({"jobId": ""}, 1802),
        ),
        collection="books",
        control_route="/imports",
        fates={
            "completed": "Completed",
            "failed": "Failed",
            "failed_preimport": "Failed",
            "manual_commit": "Completed",
            "unknown_state": "None",
        },
        fail_knobs={"failure_probability": 1.0},
        stick_knobs=None,  # no knob: an import the server cannot name is outcome unknown_state
        failed_state="Failed",
        running_states=frozenset({"Pending", "Importing", "Uncommitted", "Committing", "None"}),
    ),
    "restore": Facts(
        list_path="/v2/vectordb/jobs/snapshot/list",
        describe_path="/v2/vectordb/jobs/snapshot/describe",
        id_type=int,
        describe_id_type=str,
        states=RESTORE_STATES,
        keys=frozenset(
            {"jobId", "snapshotName", "dbName", "collectionName", "state", "progress", "reason"}
            | {"startTime", "timeCost"}
        ),
        optional_keys=frozenset(),
        describe_keys=frozenset(),
        not_found_code=2101,
        unknown_id="462118736925678799",
        wrong_ids=(
            ({"jobId": 462118736925678721}, 1801),
            ({"jobId": "job-7"}, 1100),
            ({"jobId": "1.5"}, 1100),
            ({"jobId": "99999999999999999999"}, 1100),
            ({}, 1802),
            ({"jobId": ""}, 1802),
            ({"jobId": None}, 1802),
        ),
        collection="books",
        control_route="/restores",
        fates={
            "completed": "RestoreSnapshotCompleted",
            "failed": "RestoreSnapshotFailed",
            "hang": "RestoreSnapshotExecuting",
            "hang_pending": "RestoreSnapshotPending",
        },
        fail_knobs={"knobs": {"restore_jobs_per_database": 6, "restore_outcome": "failed"}},
        stick_knobs={"knobs": {"restore_jobs_per_database": 6, "restore_outcome": "hang"}},
        failed_state="RestoreSnapshotFailed",
        running_states=frozenset({"RestoreSnapshotPending", "RestoreSnapshotExecuting"}),
    ),
}
WITH_JOBS = {"knobs": {"restore_jobs_per_database": 6}, "failure_probability": 0.4}
"""A world where every kind has a history: restores are off unless asked for."""

KIND_NAMES = [kind.name for kind in KINDS]
KIND_AND_FLAVOR = [
    pytest.param(kind, flavor, id=f"{kind}-{flavor}") for kind in KIND_NAMES for flavor in FLAVORS
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> Iterator[Any]:
    started: list[Served] = []

    def make(**overrides: Any) -> Served:
        served = start(clock, **overrides)
        started.append(served)
        return served

    yield make
    for served in started:
        served.server.shutdown()


def describe_id(facts: Facts, listed: object) -> object:
    """A listed job id as its describe request wants it."""
    return facts.describe_id_type(listed)


def test_every_registered_kind_has_its_facts_here() -> None:
    assert set(KIND_NAMES) == set(FACTS)
    for kind in KINDS:
        facts = FACTS[kind.name]
        assert (kind.list_path, kind.describe_path) == (facts.list_path, facts.describe_path)
        assert "/" + kind.control_route == facts.control_route
        assert set(kind.outcomes) == set(facts.fates), "every outcome has its expected state"


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_list_answers_records_of_the_documented_shape(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor, **WITH_JOBS)
    answer = served.payload(facts.list_path, {"dbName": "default"})
    assert (answer["code"], set(answer["data"])) == (0, {"records"}), "no paging on either"
    records = answer["data"]["records"]
    assert records
    for record in records:
        assert facts.keys <= set(record) <= facts.keys | facts.optional_keys, record
        assert isinstance(record["jobId"], facts.id_type), RECORD_TYPES[facts.id_type]
        assert record["state"] in facts.states
        assert isinstance(record["progress"], int) and 0 <= record["progress"] <= 100
        if record["state"] == facts.failed_state:
            assert record["reason"], "a failed job says why"
    if facts.id_type is int:
        assert all(record["jobId"] > 2**53 for record in records), "int64 ids above 2^53"


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_describe_answers_each_listed_job_given_its_id_in_the_describe_type(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor, **WITH_JOBS)
    for record in served.records(facts.list_path)[:6]:
        described = served.data(facts.describe_path, {"jobId": describe_id(facts, record["jobId"])})
        assert described["jobId"] == record["jobId"]
        assert facts.keys | facts.describe_keys <= set(described)
        assert set(described) <= facts.keys | facts.optional_keys | facts.describe_keys
        assert (described["state"], described["progress"]) == (record["state"], record["progress"])


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_an_unknown_job_answers_the_kinds_not_found_code_with_http_200(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    answer = served.post(facts.describe_path, {"jobId": facts.unknown_id})
    assert answer.status_code == 200
    assert answer.json()["code"] == facts.not_found_code
    assert str(facts.unknown_id) in answer.json()["message"]


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_an_id_of_the_wrong_type_or_form_answers_its_code(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    for body, code in facts.wrong_ids:
        answer = served.post(facts.describe_path, body)
        assert (answer.status_code, answer.json()["code"]) == (200, code), body


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_list_of_an_unknown_database_or_collection_answers_800_or_100(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    assert served.payload(facts.list_path, {"dbName": "nope"})["code"] == 800
    assert served.payload(facts.list_path, {"collectionName": "nope"})["code"] == 100
    assert served.payload(facts.list_path, {"dbName": 7})["code"] == 1801


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_requests_without_a_valid_token_answer_http_401_and_code_1800(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    for path, body in ((facts.list_path, {}), (facts.describe_path, {"jobId": facts.unknown_id})):
        for token in (None, "wrong"):
            answer = served.post(path, body, token=token)
            assert (answer.status_code, answer.json()["code"]) == (401, 1800)


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_list_and_describe_are_rate_limited_on_zilliz_cloud_and_not_on_a_milvus_server(
    world, kind, flavor
):
    facts = FACTS[kind]
    served = world(flavor=flavor, requests_per_second=3)
    for path, body in ((facts.list_path, {}), (facts.describe_path, {"jobId": facts.unknown_id})):
        answers = [served.post(path, body) for _ in range(4)]
        statuses = [answer.status_code for answer in answers]
        if flavor == "zilliz":
            assert statuses == [200, 200, 200, 429]
            assert answers[-1].headers["Retry-After"] == "1"
        else:
            assert statuses == [200] * 4
            assert all(answer.json()["code"] != 1807 for answer in answers)


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_control_api_starts_a_job_of_every_fate(world, clock, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    started = {}
    for outcome in facts.fates:
        body = {
            "collectionName": facts.collection,
            "outcome": outcome,
            "durationSeconds": 10,
            "reason": f"simulated {outcome}",
        }
        answer = served.control("POST", facts.control_route, body)
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["jobId"]
        assert isinstance(job_id, facts.id_type)
        started[outcome] = job_id
    clock.advance(3600)  # long after every end, within every retention
    for outcome, job_id in started.items():
        job = served.data(facts.describe_path, {"jobId": describe_id(facts, job_id)})
        assert (outcome, job["state"]) == (outcome, facts.fates[outcome])
        if job["state"] == facts.failed_state:
            assert job["reason"] == f"simulated {outcome}"
    for bad in ({"outcome": "bogus"}, {"collectionName": "nope"}, {"dbName": "nope"}):
        refused = served.control(
            "POST", facts.control_route, {"collectionName": facts.collection, **bad}
        )
        assert refused.status_code == 400, bad


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_knobs_make_every_automatic_job_fail_with_a_reason(world, clock, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor, **facts.fail_knobs)
    clock.advance(3600)
    records = served.records(facts.list_path)
    finished = [record for record in records if record["state"] not in facts.running_states]
    assert finished
    for record in finished:
        assert record["state"] == facts.failed_state
        assert record.get("reason"), record


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_knobs_make_automatic_jobs_stick_with_frozen_progress(world, clock, kind, flavor):
    facts = FACTS[kind]
    if facts.stick_knobs is None:
        pytest.skip(f"no knob makes a {kind} job stick (see its fates for one that does)")
    served = world(flavor=flavor, **facts.stick_knobs)
    clock.advance(30 * 24 * 3600)  # finished ones are forgotten by now; stuck ones are not
    before = served.records(facts.list_path)
    clock.advance(7 * 24 * 3600)
    after = served.records(facts.list_path)
    assert before and after == before
    assert {record["state"] for record in after} <= facts.running_states


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_unknown_state_fault_writes_a_state_outside_the_documented_ones(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor, **WITH_JOBS)
    served.simulator.set_fault(Fault("unknown_state"), path=facts.list_path)
    states = {record["state"] for record in served.records(facts.list_path)}
    assert states and not states & facts.states


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_request_timeout_fault_answers_http_408_with_code_10001(world, kind, flavor):
    facts = FACTS[kind]
    served = world(flavor=flavor)
    served.simulator.set_fault(Fault("request_timeout"), path=facts.describe_path)
    answer = served.post(facts.describe_path, {"jobId": facts.unknown_id})
    assert (answer.status_code, answer.json()) == (
        408,
        {"code": 10001, "message": "request timeout"},
    )
    assert served.post(facts.list_path, {}).status_code == 200


@pytest.mark.parametrize(("kind", "flavor"), KIND_AND_FLAVOR)
def test_the_same_seed_and_clock_give_the_same_bytes(world, clock, kind, flavor):
    facts = FACTS[kind]
    first = world(flavor=flavor, seed=42, auto_refresh=True, **WITH_JOBS)
    second = world(flavor=flavor, seed=42, auto_refresh=True, **WITH_JOBS)
    other = world(flavor=flavor, seed=43, auto_refresh=True, **WITH_JOBS)
    clock.advance(2 * 3600)
    answer = first.post(facts.list_path, {}).content
    assert answer == second.post(facts.list_path, {}).content
    assert answer != other.post(facts.list_path, {}).content
