"""The operator commands in-process, against recorded answers the simulator does not send.

``tests/test_operator.py`` runs the commands as a user does, against the simulator; here the
upstream is a server on 127.0.0.1 giving recorded answers, for the answers only a real server gives (code 2101 of the
newest servers, a ``details[]`` entry that cannot be read) and for what the commands share with
the daemon (the retry policy, a watchdog stopped when the command ends).
"""

from __future__ import annotations

import email.utils
import http
import io
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import build_parser
from exporter.commands import run
from exporter.commands.upstream import Upstream
from exporter.config.loader import load_config
from exporter.upstream.client import ApiError

from . import hostile

TOKEN = "root:Milvus-7c1d"
JOBS = "/v2/vectordb/jobs"
IMPORT_DESCRIBE_URL = f"{JOBS}/import/describe"
REFRESH_DESCRIBE_URL = f"{JOBS}/external_collection/describe"
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class RecordedAnswers:
    """Answers given per path in the order they were added, the last one again once all were
    given; a path with none is a 404."""

    answers: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    given: dict[str, int] = field(default_factory=dict)

    def post(self, path: str, body: bytes = b"", document: Any = None, status: int = 200) -> None:
        if document is not None:
            body = json.dumps(document).encode()
        self.answers.setdefault(path, []).append((status, body))

    def unanswered(self) -> list[str]:
        return [
            path for path, queue in self.answers.items() if self.given.get(path, 0) < len(queue)
        ]

    def __call__(self, exchange: hostile.Exchange) -> None:
        queue = self.answers.get(exchange.path) or [(404, b"")]
        index = self.given.get(exchange.path, 0)
        self.given[exchange.path] = index + 1
        status, body = queue[min(index, len(queue) - 1)]
        exchange.send(
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


@pytest.fixture
def upstream_server() -> Iterator[hostile.HostileServer]:
    with hostile.hostile_server({}, default=RecordedAnswers()) as server:
        yield server


@pytest.fixture
def api(upstream_server: hostile.HostileServer) -> Iterator[RecordedAnswers]:
    answers = upstream_server.default
    assert isinstance(answers, RecordedAnswers)
    yield answers
    assert not answers.unanswered(), "answers never asked for"


@pytest.fixture
def config_path(tmp_path: Path, upstream_server: hostile.HostileServer) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""request_timeout: 2s
max_retries: 3
clusters:
  - name: onprem
    endpoint: {upstream_server.url}
    token: {TOKEN}
    databases: [default]
"""
    )
    return path


def command(*argv: str) -> tuple[int, str, str]:
    """Run one operator command in this process; return (exit code, stdout, stderr)."""
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = run(args, stdout=out, stderr=err, environ={})
    assert TOKEN not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("url", "recorded", "kind", "job_id"),
    [
        pytest.param(
            IMPORT_DESCRIBE_URL,
            "milvus_import_not_found.json",
            "import",
            "458912301925678799",
            id="import-2100",
        ),
        pytest.param(
            IMPORT_DESCRIBE_URL,
            "milvus_import_not_found_newest.json",
            "import",
            "458912301925678799",
            id="import-2101-newest-server",
        ),
        pytest.param(
            REFRESH_DESCRIBE_URL,
            "milvus_refresh_not_found.json",
            "refresh",
            "449503829274509399",
            id="refresh-1100",
        ),
    ],
)
def test_every_not_found_code_of_a_real_server_is_the_same_one_line_and_exit_1(
    api, config_path, url, recorded, kind, job_id
):
    api.post(url, body=fixture(recorded))
    code, stdout, stderr = command(
        "jobs", "describe", "--config", str(config_path), "--cluster", "onprem",
        "--kind", kind, job_id,
    )  # fmt: skip
    message = json.loads(fixture(recorded))["message"]
    server_code = json.loads(fixture(recorded))["code"]
    assert (code, stdout) == (1, "")
    assert stderr == (
        f"milvus-jobs-exporter: onprem: {kind} job {job_id} not found "
        f"(code {server_code}: {message})\n"
    )


def test_an_unreadable_file_entry_is_named_on_stderr_and_the_rest_of_the_job_is_shown(
    api, config_path
):
    answer = json.loads(fixture("milvus_import_describe_running.json"))
    answer["data"]["details"][1]["importedRows"] = "about half"
    api.post(IMPORT_DESCRIBE_URL, document=answer)
    code, stdout, stderr = command(
        "jobs", "describe", "--config", str(config_path), "--cluster", "onprem",
        "--kind", "import", "--output", "json", "458912301925678733",
    )  # fmt: skip
    assert code == 0
    document = json.loads(stdout)
    assert [file["fileName"] for file in document["details"]] == [
        "[s3://bulk-import/books/part-00000.parquet]"
    ]
    assert (document["importedRows"], document["totalRows"]) == (410000, 1000000)
    assert stderr.startswith(
        "milvus-jobs-exporter: onprem: import job 458912301925678733: 1 file entry not shown, "
        "bad_count (importedRows must be an int64"
    )
    assert stderr.count("\n") == 1


def test_import_times_are_shown_in_utc_whatever_offset_the_server_wrote(api, config_path):
    api.post(IMPORT_DESCRIBE_URL, body=fixture("milvus_import_describe_completed.json"))
    code, stdout, _ = command(
        "jobs", "describe", "--config", str(config_path), "--cluster", "onprem",
        "--kind", "import", "458912301925678721",
    )  # fmt: skip
    assert code == 0
    assert "Created:    2026-11-23T10:50:25Z\n" in stdout  # 18:50:25+08:00 on the server
    assert "Completed:  2026-11-23T11:02:41Z\n" in stdout
    assert "[s3://bulk-import/books/part-00000.parquet]  Completed  100%" in stdout


class Highest(random.Random):
    """Jitter that always keeps the whole backoff, so the waits are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_a_command_retries_a_temporary_failure_with_the_daemons_backoff(api, config_path):
    for _ in range(3):
        api.post(REFRESH_DESCRIBE_URL, status=503)
    api.post(REFRESH_DESCRIBE_URL, body=fixture("milvus_refresh_list.json"))
    waits: list[float] = []
    upstream = Upstream(load_config(str(config_path)), sleep=waits.append, rng=Highest())
    try:
        cluster = upstream.config.clusters[0]
        with pytest.raises(ApiError) as wrong_shape:  # a list is not one job: not retried
            upstream.call(cluster, lambda client: client.describe_refresh_job(1))
    finally:
        upstream.close()
    assert wrong_shape.value.reason == "bad_response"
    assert waits == [0.5, 1.0, 2.0]


def test_a_failure_that_would_repeat_is_not_retried(api, config_path):
    api.post(REFRESH_DESCRIBE_URL, status=401)
    waits: list[float] = []
    upstream = Upstream(load_config(str(config_path)), sleep=waits.append)
    try:
        with pytest.raises(ApiError) as refused:
            upstream.call(
                upstream.config.clusters[0], lambda client: client.describe_refresh_job(1)
            )
    finally:
        upstream.close()
    assert (refused.value.reason, waits) == ("auth", [])


def test_the_commands_watchdog_is_stopped_when_the_command_ends(api, config_path):
    api.post(REFRESH_DESCRIBE_URL, body=fixture("milvus_refresh_not_found.json"))
    command(
        "jobs", "describe", "--config", str(config_path), "--cluster", "onprem", "1",
    )  # fmt: skip
    watchdogs = [thread for thread in threading.enumerate() if thread.name == "operator-watchdog"]
    for thread in watchdogs:
        thread.join(timeout=5)  # stop() wakes it; it ends on its own, a moment later
    assert not [thread for thread in watchdogs if thread.is_alive()]
