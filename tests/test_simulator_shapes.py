"""The simulator's newest server shapes, kind by kind, and the knobs that bend them.

Snapshot restores (`snapshot-jobs.md`): off by default, the recorded shapes and codes, whole
segments of progress, `timeCost` only once finished, names resolved from a live collection,
and the Zilliz Cloud of today that does not serve them. Refreshes and imports ("Newest server
shapes" in the upstream API summary): a pending refresh retrying a transient error, progress
falling in an index wait, no import rows before pre-import ends, HTTP 403 without the import
privilege, `None` with its reason. Then the knob plumbing (options, flags, control API), and a
fourth kind declared here that the simulator serves with no change to its central code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.simulator import (
    FAULT_KINDS,
    FLAVORS,
    Fault,
    Simulator,
    SimulatorOptions,
    add_arguments,
    options_from_args,
)
from exporter.simulator.kinds import KINDS, Registry
from exporter.simulator.kinds.base import Placement, Request, Settings, SimKind
from exporter.simulator.kinds.chains import DatabaseChain, DatabaseStream, new_database_chain
from exporter.simulator.kinds.knobs import switch
from exporter.simulator.reply import Reply, error, success_with_records

from .simulated import START, FakeClock, Served, start

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "simulator.md"
REFRESH_LIST = "/v2/vectordb/jobs/external_collection/list"
REFRESH_DESCRIBE = "/v2/vectordb/jobs/external_collection/describe"
IMPORT_LIST = "/v2/vectordb/jobs/import/list"
IMPORT_DESCRIBE = "/v2/vectordb/jobs/import/describe"
RESTORE_LIST = "/v2/vectordb/jobs/snapshot/list"
RESTORE_DESCRIBE = "/v2/vectordb/jobs/snapshot/describe"
RESTORES = {"knobs": {"restore_jobs_per_database": 6}}


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def shape(value: Any) -> Any:
    """Keys and JSON types, with a list as the set of its items' shapes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(shape(item), sort_keys=True) for item in value})
    return type(value).__name__


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


# -- snapshot restores ------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_restores_are_off_by_default_yet_served(world, flavor):
    served = world(flavor=flavor, auto_refresh=True)
    assert served.payload(RESTORE_LIST, {}) == {"code": 0, "data": {"records": []}}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_server_without_snapshot_jobs_answers_gos_plain_text_404_until_a_live_knob_says(
    world, flavor
):
    served = world(flavor=flavor, knobs={"restore_not_served": True, **RESTORES["knobs"]})
    for path, body in ((RESTORE_LIST, {}), (RESTORE_DESCRIBE, {"jobId": "1"})):
        for token in ("demo-token", None):
            answer = served.post(path, body, token=token)
            assert (answer.status_code, answer.text) == (404, "404 page not found")
            assert answer.headers["Content-Type"].startswith("text/plain")
    assert served.post(IMPORT_LIST, {}).status_code == 200
    changed = served.control("POST", "/knobs", {"restore_not_served": False})
    assert changed.json() == {"ok": True}
    assert served.records(RESTORE_LIST)


def test_the_simulated_restore_answers_have_the_recorded_shapes(world, clock):
    served = world(flavor="milvus", **RESTORES)
    listed = served.records(RESTORE_LIST)
    assert set(shape(listed)) <= set(shape(recorded("milvus_restore_list.json")["data"]["records"]))
    running = served.simulator.start_job("restore", "default", "books", "completed", 100)
    failed = served.simulator.start_job("restore", "default", "movies", "failed", 10, "boom")
    clock.advance(50)
    for job_id, name in (
        (running, "milvus_restore_describe.json"),
        (failed, "milvus_restore_describe_failed.json"),
    ):
        described = served.data(RESTORE_DESCRIBE, {"jobId": str(job_id)})
        assert shape(described) == shape(recorded(name)["data"])
    assert served.data(RESTORE_DESCRIBE, {"jobId": str(failed)})["reason"] == "boom"


@pytest.mark.parametrize(
    ("body", "knobs", "name"),
    [
        pytest.param(
            {"jobId": "462118736925678799"}, {}, "milvus_restore_not_found.json", id="2101"
        ),
        pytest.param(
            {"jobId": "462118736925678799"},
            {"restore_not_found_code": 2100},
            "milvus_restore_not_found_older.json",
            id="2100-older",
        ),
        pytest.param(
            {"jobId": 462118736925678799}, {}, "milvus_restore_wrong_id_type.json", id="1801"
        ),
        pytest.param({"jobId": "job-7"}, {}, "milvus_restore_invalid_id.json", id="1100"),
        pytest.param({}, {}, "milvus_restore_missing_id.json", id="1802"),
    ],
)
def test_the_simulated_restore_errors_match_the_recorded_ones(world, body, knobs, name):
    served = world(flavor="milvus", knobs=knobs)
    answer = served.post(RESTORE_DESCRIBE, body)
    assert (answer.status_code, answer.json()) == (200, recorded(name))


def test_restore_progress_moves_in_whole_segments_and_time_cost_waits_for_the_end(world, clock):
    served = world()
    job_id = str(served.simulator.start_job("restore", "default", "books", "completed", 100))
    seen = []
    for _ in range(12):
        job = served.data(RESTORE_DESCRIBE, {"jobId": job_id})
        seen.append((job["state"], job["progress"], job["timeCost"]))
        assert job["startTime"] == round(START * 1000), "epoch ms of its creation"
        clock.advance(10)
    states = [state for state, _, _ in seen]
    assert states[0] == "RestoreSnapshotPending" and states[-1] == "RestoreSnapshotCompleted"
    executing = [(progress, cost) for state, progress, cost in seen if state.endswith("Executing")]
    assert executing and all(progress % 10 == 0 and cost == 0 for progress, cost in executing)
    assert [progress for progress, _ in executing] == sorted(progress for progress, _ in executing)
    assert seen[-1][1:] == (100, 100_000)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_restore_of_a_dropped_collection_leaves_the_list_and_describes_without_names(
    world, clock, flavor
):
    served = world(flavor=flavor)
    job_id = served.simulator.start_job("restore", "analytics", "music", "completed", 10)
    clock.advance(20)
    assert [r["jobId"] for r in served.records(RESTORE_LIST, {"dbName": "analytics"})] == [job_id]
    served.simulator.drop_collection("analytics", "music")
    assert served.records(RESTORE_LIST, {"dbName": "analytics"}) == []
    job = served.data(RESTORE_DESCRIBE, {"jobId": str(job_id)})
    assert (job["dbName"], job["collectionName"], job["state"]) == (
        "",
        "",
        "RestoreSnapshotCompleted",
    )
    assert (
        served.payload(RESTORE_LIST, {"dbName": "analytics", "collectionName": "music"})["code"]
        == 100
    )


def test_a_finished_restore_is_forgotten_after_the_import_retention(world, clock):
    served = world(import_retention_seconds=600.0)
    job_id = str(served.simulator.start_job("restore", "default", "books", "failed", 10))
    clock.advance(300)
    assert served.data(RESTORE_DESCRIBE, {"jobId": job_id})["state"] == "RestoreSnapshotFailed"
    clock.advance(400)
    assert served.payload(RESTORE_DESCRIBE, {"jobId": job_id})["code"] == 2101
    assert served.records(RESTORE_LIST) == []


def test_restore_knobs_fail_every_automatic_restore_with_the_given_reason(world, clock):
    knobs = {**RESTORES["knobs"], "restore_outcome": "failed", "restore_reason": "NoSuchKey"}
    served = world(knobs=knobs)
    clock.advance(3600)
    listed = served.records(RESTORE_LIST)
    assert {(r["state"], r["reason"]) for r in listed} == {("RestoreSnapshotFailed", "NoSuchKey")}
    assert all(r["timeCost"] > 0 and r["progress"] < 100 for r in listed)


# -- refreshes --------------------------------------------------------------------------------


def refresh_of(served: Served, job_id: int) -> dict[str, Any]:
    return dict(served.data(REFRESH_DESCRIBE, {"jobId": job_id}))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_refresh_retrying_a_transient_error_stays_pending_with_the_error_as_reason(
    world, clock, flavor
):
    served = world(flavor=flavor)
    answer = served.control(
        "POST", "/refresh", {"collectionName": "ext_books", "outcome": "retrying"}
    ).json()
    clock.advance(30 * 24 * 3600)
    job = refresh_of(served, answer["jobId"])
    assert (job["state"], job["progress"], job["endTime"]) == ("RefreshPending", 0, 0)
    assert "retrying" in job["reason"]


def test_automatic_refreshes_show_their_retry_reason_only_while_pending(world, clock):
    served = world(knobs={"refresh_retry_probability": 1.0}, auto_refresh=True)
    seen: dict[str, set[bool]] = {}
    for _ in range(60):
        for record in served.records(REFRESH_LIST):
            seen.setdefault(record["state"], set()).add("reason" in record)
        clock.advance(61)
    assert seen["RefreshPending"] == {True}
    assert seen["RefreshInProgress"] == {False}
    assert seen["RefreshCompleted"] == {False}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_refresh_in_its_index_wait_falls_from_99_yet_stays_in_progress(world, clock, flavor):
    served = world(flavor=flavor)
    job_id = served.simulator.start_refresh("default", "ext_books", "index_wait", 100)
    seen = []
    for _ in range(21):
        job = refresh_of(served, job_id)
        seen.append((job["state"], job["progress"]))
        clock.advance(5)
    running = [progress for state, progress in seen if state == "RefreshInProgress"]
    assert max(running) >= 90 and max(running) <= 99
    peak = running.index(max(running))
    assert min(running[peak:]) < 50, "it falls to the indexed fraction"
    assert seen[-1] == ("RefreshCompleted", 100)


def test_automatic_refreshes_fall_in_an_index_wait_when_the_knob_says(world, clock):
    served = world(knobs={"refresh_index_wait_probability": 1.0}, failure_probability=0.0)
    served.simulator.start_refresh("default", "ext_books")  # a busy collection still works
    last: dict[int, int] = {}
    fell = False
    for _ in range(200):
        for record in served.records(REFRESH_LIST):
            if record["state"] == "RefreshInProgress":
                fell |= record["progress"] < last.get(record["jobId"], 0)
                last[record["jobId"]] = record["progress"]
        served.control("POST", "/refresh", {"collectionName": "ext_movies"})
        clock.advance(7)
    assert fell


# -- imports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("v3", "top"), [(False, 40), (True, 50)])
def test_an_import_has_no_rows_size_or_files_until_preimport_ends(world, clock, flavor, v3, top):
    served = world(flavor=flavor, knobs={"import_v3_jobs": v3})
    job_id = served.simulator.start_import("default", "books", "completed", 200)
    phases = set()
    for _ in range(105):
        job = served.data(IMPORT_DESCRIBE, {"jobId": job_id})
        clock.advance(2)
        if job["state"] == "Pending" or (job["state"] == "Importing" and job["progress"] <= top):
            assert (job["importedRows"], job["totalRows"], job["fileSize"]) == (0, 0, 0), job
            assert job["details"] == []
            phases.add("preimport")
            continue
        details = job["details"]
        assert details and job["fileSize"] == sum(detail["fileSize"] for detail in details)
        assert job["importedRows"] == sum(detail["importedRows"] for detail in details)
        if job["state"] == "Importing":
            phases.add("importing")
            for detail in details:
                assert detail["importedRows"] == detail["totalRows"] * job["progress"] // 100
    assert phases == {"preimport", "importing"}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_an_import_in_state_none_carries_its_reason_in_the_list_and_describe(world, flavor):
    served = world(flavor=flavor)
    job_id = served.simulator.start_import("default", outcome="unknown_state")
    listed = {record["jobId"]: record for record in served.records(IMPORT_LIST)}
    assert (listed[job_id]["state"], listed[job_id]["reason"]) == (
        "None",
        "unknown import job state",
    )
    assert served.data(IMPORT_DESCRIBE, {"jobId": job_id})["reason"] == "unknown import job state"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_token_without_the_import_privilege_gets_http_403_on_import_describe(world, flavor):
    served = world(flavor=flavor, tokens=("reader:pw", "admin:pw"))
    job_id = served.simulator.start_import("default")
    body = {"jobId": job_id}
    assert served.post(IMPORT_DESCRIBE, body, token="reader:pw").status_code == 200
    answer = served.control("POST", "/knobs", {"import_privilege_denied_tokens": ["reader:pw"]})
    assert answer.json() == {"ok": True}
    denied = served.post(IMPORT_DESCRIBE, body, token="reader:pw")
    assert (denied.status_code, denied.json()) == (403, recorded("milvus_import_no_privilege.json"))
    assert served.post(IMPORT_DESCRIBE, {"jobId": 7}, token="reader:pw").json()["code"] == 1801
    assert served.post(IMPORT_DESCRIBE, body, token="admin:pw").status_code == 200
    assert served.post(IMPORT_LIST, {}, token="reader:pw").status_code == 200


def test_the_simulated_request_timeout_matches_the_recorded_one(world):
    served = world(flavor="milvus")
    served.control("POST", "/faults", {"kind": "request_timeout", "path": "import/describe"})
    answer = served.post(IMPORT_DESCRIBE, {"jobId": "1"})
    assert (answer.status_code, answer.json()) == (408, recorded("milvus_request_timeout.json"))


# -- knobs --------------------------------------------------------------------------------------


def test_an_unknown_knob_or_a_bad_value_is_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown simulator knob 'restore_jobs'"):
        Simulator(SimulatorOptions(knobs={"restore_jobs": 1}))
    with pytest.raises(ValueError, match="restore_outcome must be one of"):
        Simulator(SimulatorOptions(knobs={"restore_outcome": "sometimes"}))
    with pytest.raises(ValueError, match="between 0 and 1"):
        Simulator(SimulatorOptions(knobs={"refresh_retry_probability": 2}))


def test_every_knob_is_a_simulate_flag_and_documented():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = options_from_args(
        parser.parse_args(
            [
                "--restore-jobs-per-database=3",
                "--restore-outcome=hang_pending",
                "--restore-not-served",
                "--restore-not-found-code=2100",
                "--import-privilege-denied-tokens=a,b",
                "--refresh-index-wait-probability=0.5",
            ]
        )
    )
    assert dict(options.knobs) == {
        "restore_jobs_per_database": 3,
        "restore_outcome": "hang_pending",
        "restore_not_served": True,
        "restore_not_found_code": 2100,
        "import_privilege_denied_tokens": ("a", "b"),
        "refresh_index_wait_probability": 0.5,
    }
    assert dict(options_from_args(parser.parse_args([])).knobs) == {}
    for bad in ("--restore-outcome=maybe", "--restore-jobs-per-database=-1"):
        with pytest.raises(SystemExit):
            parser.parse_args([bad])
    docs = DOCS.read_text(encoding="utf-8")
    for knob in KINDS.knobs():
        assert f"`{knob.flag}" in docs, f"docs/simulator.md does not document {knob.flag}"
    for kind in FAULT_KINDS:
        assert f"`{kind}`" in docs, f"docs/simulator.md does not name the fault {kind}"


def test_the_control_api_shows_every_knob_and_changes_only_live_ones(world):
    served = world()
    shown = served.control("GET", "/knobs").json()["knobs"]
    assert set(shown) == {knob.name for knob in KINDS.knobs()}
    assert shown["restore_outcome"] == "random"
    fixed = served.control("POST", "/knobs", {"restore_outcome": "failed"})
    assert fixed.status_code == 400 and "fixed when the simulator starts" in fixed.json()["error"]
    mixed = {"restore_not_served": True, "restore_not_found_code": 1}
    assert served.control("POST", "/knobs", mixed).status_code == 400
    assert served.control("GET", "/knobs").json()["knobs"]["restore_not_served"] is False


# -- a fourth kind, declared here -------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    job_id: int
    database: str
    collection: str
    created_at: float
    end_at: float


class BackupStream(DatabaseStream[Backup]):
    def invent(self, created_at: float) -> Backup:
        collection = self.chain.rng.choice(self.chain.collections)
        return Backup(
            self.chain.next_job_id(), self.chain.database, collection, created_at, created_at + 60
        )

    def scripted(self, now, collection, outcome, duration_seconds, reason) -> Backup:
        end = now + duration_seconds if outcome == "completed" else float("inf")
        return Backup(self.chain.next_job_id(), self.chain.database, collection, now, end)


class BackupKind(SimKind[Backup]):
    name = "backup"
    list_path = "/v2/vectordb/jobs/backup/list"
    describe_path = "/v2/vectordb/jobs/backup/describe"
    family = "plain"
    control_route = "backups"
    outcomes = ("completed", "hang")
    unknown_state = "BackupPaused"
    sample_record = b'{"jobId":1,"state":"BackupDone"}'
    knobs = (switch("backup_flaky", "a knob of the fourth kind"),)

    def new_stream(self, settings: Settings, database: str, collections, where: Placement):
        chain: DatabaseChain = new_database_chain(
            "backup", settings.options.seed, database, (where.database_index, 8), 1 << 60,
            collections, (2 if collections else 0, 3600.0),
        )  # fmt: skip
        return BackupStream(settings, chain, 2 if collections else 0, 3600.0)

    def order_key(self, job: Backup) -> float:
        return job.created_at

    def retention_seconds(self, settings: Settings) -> float:
        return 3600.0

    def list_record(self, job, now, base, settings) -> dict[str, object]:
        state = "BackupDone" if now >= job.end_at else "BackupRunning"
        return {"jobId": job.job_id, "collectionName": job.collection, "state": state}

    def next_change(self, job: Backup, now: float) -> float:
        return job.end_at if now < job.end_at else float("inf")

    def describe_job_id(self, body: dict[str, object]) -> int:
        value = body.get("jobId")
        return value if isinstance(value, int) else 0

    def list_answer(self, request: Request) -> Reply:
        records = request.world.records(self, request.database(), None, request.now)
        return success_with_records(records.records_json, request.settings.rules.success_code)

    def describe_answer(self, request: Request) -> Reply:
        job = request.world.job(self, self.describe_job_id(request.body), request.now)
        if not isinstance(job, Backup):
            return error(2999, "backup job not found")
        base = request.world.wall_base(request.now)
        return request.success(self.list_record(job, request.now, base, request.settings))


def test_a_fourth_kind_declared_in_a_test_is_served_with_no_central_change(clock):
    kinds = Registry((*KINDS.kinds, BackupKind()))
    options = SimulatorOptions(clock=clock, auto_refresh=False, requests_per_second=2)
    simulator = Simulator(options, kinds=kinds)
    with simulator.serve("127.0.0.1", 0) as server:
        auth = {"Authorization": "Bearer demo-token"}

        def post(path: str, body: dict[str, object]) -> requests.Response:
            return requests.post(server.url + path, json=body, headers=auth, timeout=5)

        lists = [post(BackupKind.list_path, {}) for _ in range(3)]
        assert len(lists[0].json()["data"]["records"]) == 2, "its history"
        assert [answer.status_code for answer in lists] == [200, 200, 429], "Zilliz limits it"
        control = server.url + "/_simulator"
        started = requests.post(control + "/backups", json={"outcome": "hang"}, timeout=5)
        job_id = started.json()["jobId"]
        assert post(BackupKind.describe_path, {"jobId": job_id}).json()["data"]["state"] == (
            "BackupRunning"
        )
        simulator.set_fault(Fault("unknown_state"), path="backup/describe")
        faulty = post(BackupKind.describe_path, {"jobId": job_id})
        assert faulty.json()["data"]["state"] == "BackupPaused"
        knobs = requests.get(control + "/knobs", timeout=5).json()["knobs"]
        assert knobs["backup_flaky"] is False
