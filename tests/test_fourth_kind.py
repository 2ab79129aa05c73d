"""A fourth kind of job, declared here and nowhere else, works without a change to the exporter.

``COMPACTION`` is a made-up kind with an endpoint, a record shape, states and metrics of its own
(none of them in the catalogue). Added to the registry for the duration of a test, it is polled
by the real daemon from a small fake server on 127.0.0.1, exported on /metrics, remembered
across a restart, and listed by ``jobs list``: proof that a kind is one declaration, which is
what ``tests/test_kinds.py`` checks from the other side (no central module names a kind).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import build_parser
from exporter.commands import run
from exporter.config.loader import ClusterConfig, Config
from exporter.daemon import Daemon
from exporter.exposition.catalogue import CATALOGUE, COLLECTION, JOB, Metric
from exporter.kinds import KINDS
from exporter.kinds.declaration import (
    NEWEST_FINISHED,
    Alerting,
    Endpoints,
    Fields,
    JobKind,
    Ordering,
    ReasonSeries,
    Saved,
    Series,
    Shown,
    States,
    StateSeries,
    Times,
    Value,
)
from exporter.upstream.records import (
    RecordError,
    read_name,
    read_progress,
    read_reason,
    read_state,
    shared_text,
)

from . import hostile
from .conftest import TOKEN_A, RunningExporter, serve_quickly, value

STATES = ("Queued", "Merging", "Done", "Broken")


@dataclass(frozen=True, slots=True)
class CompactionJob:
    job_id: str
    collection: str
    state: str
    progress_ratio: float
    reason: str = ""
    progress_out_of_range: bool = False

    @property
    def finished(self) -> bool:
        return self.state in ("Done", "Broken")

    @property
    def known_state(self) -> bool:
        return self.state in STATES


def parse_compaction(record: Any, now: float, shared: dict[str, str]) -> CompactionJob:
    """``{"compactionId": "c-7", "segmentOf": "books", "phase": "Merging", "percent": 50,
    "error": ""}``: a shape none of the real kinds has."""
    if not isinstance(record, dict):
        raise RecordError("expected a job object")
    job_id = record.get("compactionId")
    if not isinstance(job_id, str) or not job_id:
        raise RecordError("compactionId must be a string", "bad_job_id")
    progress, out_of_range = read_progress(record.get("percent"))
    return CompactionJob(
        job_id=job_id,
        collection=shared_text(read_name(record.get("segmentOf"), "segmentOf"), shared),
        state=read_state(record.get("phase")),
        progress_ratio=progress,
        reason=read_reason(record.get("error")),
        progress_out_of_range=out_of_range,
    )


def metric(name: str, labels: tuple[str, ...], kind: str = "gauge") -> Metric:
    return Metric(name, kind, f"{name} of a compaction job.", labels, "declared by a test")


PROGRESS = metric("milvus_compaction_job_progress_ratio", JOB)
STATE = metric("milvus_compaction_job_state", (*JOB, "state"))
FAILURE = metric("milvus_compaction_job_failure_info", (*JOB, "reason"))
COUNTS = metric("milvus_compaction_jobs", (*COLLECTION, "state"))
DURATION = metric(
    "milvus_compaction_duration_seconds", ("milvus_cluster", "database", "state"), "histogram"
)


def _saved(job: CompactionJob) -> dict[str, Any]:
    return {"id": job.job_id, "of": job.collection, "phase": job.state, "done": job.progress_ratio,
            "error": job.reason}  # fmt: skip


def _read_saved(entry: Mapping[str, Any], fields: Fields) -> CompactionJob:
    return CompactionJob(
        fields.identifier(entry["id"]),
        fields.text(entry["of"]),
        fields.text(entry["phase"]),
        fields.ratio(entry["done"]),
        fields.text(entry["error"]),
    )


COMPACTION: JobKind[CompactionJob, None] = JobKind(
    name="compaction",
    noun="compaction",
    plural="compactions",
    title="Compaction jobs",
    metric_prefix="milvus_compaction",
    default=False,
    endpoints=Endpoints(
        list="compaction/list",
        describe="compaction/describe",
        not_found=frozenset({"api_4040"}),
        numeric_ids=False,
    ),
    parse=parse_compaction,
    states=States(
        pending=("Queued",),
        running=("Merging",),
        succeeded="Done",
        failed="Broken",
        documented=STATES,
    ),
    ordering=Ordering(
        listed=lambda job: job.job_id,
        newest=lambda job, details, first_seen: (first_seen or 0.0, job.job_id),
        age=lambda job, details, first_seen: first_seen or 0.0,
    ),
    times=Times(
        started=lambda job, details: None,
        ended=lambda job, details: None,
        duration=lambda job, details, now: None,
    ),
    series=Series(
        per_job=(
            Value(PROGRESS, lambda view: view.job.progress_ratio),
            StateSeries(STATE),
            ReasonSeries(FAILURE, lambda job: job.state == "Broken"),
        ),
        counts=COUNTS,
        durations=DURATION,
        observed=lambda job, details: None,
    ),
    memory=NEWEST_FINISHED,
    alerting=Alerting(
        row_title="Compactions",
        subject="Compaction of",
        newest="The newest compaction of collection",
        collection="collection",
        failed_comment="The newest compaction failed. {held}",
        failed_table="Collections whose newest compaction failed.",
    ),
    described=lambda data, now: parse_compaction(data, now, {}),
    shown=lambda job, now: Shown(fields=(("Job ID", job.job_id, False),), document={}),
    saved=Saved(job=_saved, read_job=_read_saved),
)


@dataclass
class FakeCompactions:
    """A server that lists compactions, and nothing of any other kind."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def behave(self, exchange: hostile.Exchange) -> None:
        if exchange.path == "/v2/vectordb/jobs/compaction/list":
            exchange.answer({"code": 0, "data": {"records": self.records}})
        elif exchange.path.endswith("/collections/list"):
            exchange.answer({"code": 0, "data": ["books", "films"]})
        else:
            exchange.answer({"code": 1100, "message": f"not here: {exchange.path}"})


@pytest.fixture
def compactions() -> Iterator[tuple[FakeCompactions, str]]:
    world = FakeCompactions(
        [
            {"compactionId": "c-1", "segmentOf": "books", "phase": "Merging", "percent": 35},
            {
                "compactionId": "c-2",
                "segmentOf": "films",
                "phase": "Broken",
                "percent": 80,
                "error": "segment 12 missing",
            },
        ]
    )
    with KINDS.added(COMPACTION), hostile.hostile_server({}, default=world.behave) as server:
        yield world, server.url


def start(url: str, **settings: Any) -> RunningExporter:
    from exporter.web.server import ExporterHTTPServer

    cluster = ClusterConfig("prod", url, TOKEN_A, jobs=("compaction",))
    values: dict[str, Any] = {"poll_interval": 0.3, "request_timeout": 1.0, "max_retries": 0}
    values.update(settings)
    daemon = Daemon(Config(clusters=(cluster,), listen_address="127.0.0.1:0", **values))
    server = ExporterHTTPServer(("127.0.0.1", 0), lambda: daemon)
    serve_quickly(server)
    exporter = RunningExporter(daemon, server)
    daemon.start()
    exporter.wait_for_cycles(1)
    return exporter


def stop(exporter: RunningExporter) -> None:
    exporter.daemon.stop(timeout=5)
    exporter.server.shutdown()
    exporter.server.server_close()


def test_the_real_daemon_polls_and_exports_a_kind_declared_in_a_test(compactions):
    _world, url = compactions
    exporter = start(url)
    try:
        exporter.wait_for_cycles(1)
        parsed = exporter.scrape()
        text = requests.get(exporter.url + "/metrics", timeout=5).text
    finally:
        stop(exporter)
    assert all(name not in {m.name for m in CATALOGUE} for name in (PROGRESS.name, STATE.name))
    merging = {"milvus_cluster": "prod", "database": "default", "collection": "books",
               "job_id": "c-1"}  # fmt: skip
    assert value(parsed, "milvus_compaction_job_progress_ratio", **merging) == 0.35
    assert value(parsed, "milvus_compaction_job_state", **merging, state="Merging") == 1
    assert value(parsed, "milvus_compaction_job_state", **merging, state="Done") == 0
    broken = {**merging, "collection": "films", "job_id": "c-2"}
    assert (
        value(parsed, "milvus_compaction_job_failure_info", **broken, reason="segment 12 missing")
        == 1
    )
    films = {"milvus_cluster": "prod", "database": "default", "collection": "films"}
    assert value(parsed, "milvus_compaction_jobs", **films, state="Broken") == 1
    target = {"milvus_cluster": "prod", "database": "default", "kind": "compaction"}
    assert value(parsed, "milvus_jobs_exporter_target_up", **target) == 1
    assert value(parsed, "milvus_jobs_exporter_unknown_state_jobs", **target) == 0
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {"milvus_compaction_jobs", "milvus_compaction_duration_seconds"} <= families


def test_a_kind_declared_in_a_test_is_remembered_across_a_restart(compactions, tmp_path):
    world, url = compactions
    state_file = str(tmp_path / "state.json")
    first = start(url, state_file=state_file)
    stop(first)  # saves the state at shutdown
    saved = json.loads(Path(state_file).read_text())
    (entry,) = saved["kinds"]["compaction"]["newest_finished"]
    assert entry["job"]["error"] == "segment 12 missing"

    world.records = []  # the server forgot both jobs
    second = start(url, state_file=state_file)
    try:
        second.wait_for_cycles(1)
        parsed = second.scrape()
    finally:
        stop(second)
    broken = {"milvus_cluster": "prod", "database": "default", "collection": "films",
              "job_id": "c-2", "reason": "segment 12 missing"}  # fmt: skip
    assert value(parsed, "milvus_compaction_job_failure_info", **broken) == 1


def test_jobs_list_lists_a_kind_declared_in_a_test(compactions, tmp_path):
    _world, url = compactions
    config = tmp_path / "config.yaml"
    config.write_text(
        f"clusters:\n  - {{name: prod, endpoint: '{url}', token: {TOKEN_A}, jobs: [compaction]}}\n"
    )
    args = build_parser().parse_args(
        ["jobs", "list", "--config", str(config), "--kind", "compaction", "--output", "json"]
    )
    out, err = io.StringIO(), io.StringIO()
    assert run(args, out, err, environ={}) == 0, err.getvalue()
    rows = json.loads(out.getvalue())
    assert [(row["kind"], row["jobId"], row["state"]) for row in rows] == [
        ("compaction", "c-2", "Broken"),
        ("compaction", "c-1", "Merging"),
    ]
