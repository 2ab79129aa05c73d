"""The operator commands as an operator meets them: the real CLI in a process, the simulator.

Every run goes through ``run`` (or ``run_in_terminal``), which also checks what must hold for
every command: the token never appears in the output and nothing ends in a traceback.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator import Fault, Simulator, SimulatorOptions

REPO = Path(__file__).resolve().parent.parent
TOKEN = "operator-token-3c9f1e77"
REFRESH_API = "/v2/vectordb/jobs/external_collection/refresh"
DESCRIBE_API = "/v2/vectordb/jobs/external_collection/describe"
QUIET = {
    "refresh_jobs_per_collection": 0,
    "auto_refresh": False,
    "failure_probability": 0.0,
    "hang_probability": 0.0,
}
"""A world where only the test starts refreshes, and every refresh started over HTTP completes."""
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

Started = tuple[Simulator, Path]


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("NO_COLOR", "COLUMNS", "TERM")
    }
    environment.update({"MILVUS_TOKEN": TOKEN, "TZ": "UTC", "TERM": "xterm"})
    environment.update(extra or {})
    return environment


def _check_output(stdout: str, stderr: str) -> None:
    assert TOKEN not in stdout and TOKEN not in stderr, "a token was printed"
    assert "Traceback" not in stderr


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env=_environment(env),
    )
    _check_output(result.stdout, result.stderr)
    return result


def run_in_terminal(
    *args: str, columns: int = 80, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run with stdout on a real pseudo-terminal ``columns`` wide; return (code, out, err)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=_environment(env),
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child has closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    code = process.wait(timeout=10)
    stdout = b"".join(chunks).decode()
    _check_output(stdout, stderr)
    return code, stdout, stderr


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""request_timeout: 2s
max_retries: 0
clusters:
  - name: prod
    endpoint: {url}
    token: ${{MILVUS_TOKEN}}
    databases: [default, analytics]
  - name: staging
    endpoint: {url}
    token: ${{MILVUS_TOKEN}}
    databases: [default]
"""
    )
    return path


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., Started]]:
    """Start a simulator with these options (over a small, calm default) and write a config."""
    servers = []

    def start(**overrides: Any) -> Started:
        options: dict[str, Any] = {
            "seed": 11,
            "tokens": (TOKEN,),
            "databases": ("default", "analytics"),
            "collections_per_database": 2,
            "time_scale": 1.0,
        }
        options.update(overrides)
        simulator = Simulator(SimulatorOptions(**options))
        server = simulator.serve("127.0.0.1", 0)
        servers.append(server)
        return simulator, write_config(tmp_path, server.url)

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def world(start_simulator: Callable[..., Started]) -> Started:
    """A day of job history in real time: nothing changes much during a test."""
    return start_simulator()


def list_json(config: Path, *filters: str) -> list[dict[str, Any]]:
    result = run("jobs", "list", "--config", str(config), "--output", "json", *filters)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def describe_json(config: Path, job_id: str) -> dict[str, Any]:
    result = run(
        "jobs", "describe", "--config", str(config), "--cluster", "prod", "--output", "json", job_id
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def refresh_requests(simulator: Simulator) -> list[Any]:
    return [record for record in simulator.request_log() if record.path == REFRESH_API]


# -- jobs list -------------------------------------------------------------------------------


def test_jobs_list_prints_a_table_of_every_configured_target(world):
    simulator, config = world
    failed = simulator.start_refresh(
        "analytics", "ext_books", outcome="failed", duration_seconds=0, reason="no files found"
    )
    result = run("jobs", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"CLUSTER +DATABASE +KIND +COLLECTION +JOB ID +STATE +PROGRESS +STARTED +DURATION +REASON",
        lines[0],
    )
    targets = {tuple(line.split()[:3]) for line in lines[1:]}
    assert targets == {
        ("prod", "default", "refresh"),
        ("prod", "default", "import"),
        ("prod", "analytics", "refresh"),
        ("prod", "analytics", "import"),
        ("staging", "default", "refresh"),
        ("staging", "default", "import"),
    }
    row = next(line for line in lines if str(failed) in line)
    assert row.split()[:5] == ["prod", "analytics", "refresh", "ext_books", str(failed)]
    assert "RefreshFailed" in row and row.endswith("no files found")
    started = describe_json(config, str(failed))["startTime"]
    assert started.replace("T", " ").removesuffix("Z") in row  # local time, TZ=UTC here
    for line in lines[1:]:
        assert re.search(r" \d{1,3}% ", line), line
        if " import " in line:
            assert re.search(r"% +- +-( |$)", line), "imports have no start time or duration"
    assert "\x1b[" not in result.stdout, "no colour when stdout is not a terminal"


def test_jobs_list_json_has_stable_keys_and_lists_newest_first(world):
    _simulator, config = world
    rows = list_json(config)
    assert rows
    for row in rows:
        assert list(row) == [
            "cluster",
            "database",
            "kind",
            "collection",
            "jobId",
            "state",
            "progress",
            "startTime",
            "endTime",
            "durationSeconds",
            "reason",
        ]
        assert isinstance(row["jobId"], str) and row["jobId"].isdigit()
        assert 0 <= row["progress"] <= 100
        if row["kind"] == "refresh":
            assert RFC3339.fullmatch(row["startTime"])
            assert row["durationSeconds"] >= 0
            assert row["endTime"] is None or RFC3339.fullmatch(row["endTime"])
        else:
            assert row["startTime"] is None and row["durationSeconds"] is None
    for cluster, database in (("prod", "default"), ("prod", "analytics"), ("staging", "default")):
        mine = [row for row in rows if (row["cluster"], row["database"]) == (cluster, database)]
        starts = [row["startTime"] for row in mine if row["kind"] == "refresh"]
        imports = [int(row["jobId"]) for row in mine if row["kind"] == "import"]
        assert len(starts) >= 2 and len(imports) >= 2
        assert starts == sorted(starts, reverse=True)
        assert imports == sorted(imports, reverse=True)


def test_jobs_list_filters_by_cluster_database_kind_collection_and_state(world):
    simulator, config = world
    failed = simulator.start_refresh("analytics", "ext_books", outcome="failed", duration_seconds=0)
    pending = simulator.start_refresh("analytics", "ext_movies", outcome="hang_pending")

    rows = list_json(
        config, "--cluster", "prod", "--database", "analytics", "--state", "failed,pending"
    )
    failed_or_pending = {"RefreshFailed", "RefreshPending", "Failed", "Pending"}
    assert {row["state"] for row in rows} <= failed_or_pending
    assert {str(failed), str(pending)} <= {row["jobId"] for row in rows}
    assert {(row["cluster"], row["database"]) for row in rows} == {("prod", "analytics")}

    books = list_json(config, "--collection", "ext_books", "--kind", "refresh")
    assert str(failed) in {row["jobId"] for row in books}
    assert {(row["collection"], row["kind"]) for row in books} == {("ext_books", "refresh")}

    exact = list_json(config, "--cluster", "staging", "--state", "refreshcompleted")
    assert exact and {(row["cluster"], row["state"]) for row in exact} == {
        ("staging", "RefreshCompleted")
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(("--cluster", "prdo"), "did you mean 'prod'?", id="cluster"),
        pytest.param(("--database", "analytic"), "did you mean 'analytics'?", id="database"),
        pytest.param(("--state", "faild"), "did you mean 'failed'?", id="state"),
    ],
)
def test_a_filter_naming_nothing_configured_is_a_usage_error_with_a_suggestion(
    world, flags, expected
):
    _simulator, config = world
    result = run("jobs", "list", "--config", str(config), *flags)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_failing_target_is_one_line_on_stderr_and_exit_1_while_the_others_are_listed(world):
    simulator, config = world
    simulator.set_fault(Fault("auth"), database="analytics")
    result = run("jobs", "list", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "milvus-jobs-exporter: prod/analytics refresh: auth (HTTP 401: the token was refused)",
        "milvus-jobs-exporter: prod/analytics import: auth (HTTP 401: the token was refused)",
    ]
    listed = {tuple(line.split()[:3]) for line in result.stdout.splitlines()[1:]}
    assert listed == {
        ("prod", "default", "refresh"),
        ("prod", "default", "import"),
        ("staging", "default", "refresh"),
        ("staging", "default", "import"),
    }


@pytest.mark.parametrize(
    ("no_color", "coloured"),
    [pytest.param(None, True, id="colour"), pytest.param("1", False, id="NO_COLOR")],
)
def test_states_are_coloured_on_a_terminal_unless_no_color_is_set(world, no_color, coloured):
    simulator, config = world
    simulator.start_refresh("analytics", "ext_books", outcome="failed", duration_seconds=0)
    code, stdout, _ = run_in_terminal(
        "jobs", "list", "--config", str(config), "--cluster", "prod", "--database", "analytics",
        "--kind", "refresh", "--state", "failed",
        env={"NO_COLOR": no_color} if no_color else None,
    )  # fmt: skip
    assert code == 0
    assert "RefreshFailed" in stdout
    assert ("\x1b[31mRefreshFailed\x1b[0m" in stdout) is coloured
    assert ("\x1b[" in stdout) is coloured


# -- jobs describe ---------------------------------------------------------------------------


def test_jobs_describe_shows_a_refresh_job_as_fields_or_json(world):
    simulator, config = world
    job_id = simulator.start_refresh(
        "default", "ext_books", outcome="failed", duration_seconds=0, reason="schema mismatch"
    )
    base = ("jobs", "describe", "--config", str(config), "--cluster", "prod")
    table = run(*base, str(job_id))
    assert table.returncode == 0, table.stderr
    fields = dict(line.split(":", 1) for line in table.stdout.splitlines())
    assert fields["Job ID"].strip() == str(job_id)
    assert fields["Collection"].strip() == "ext_books"
    assert fields["State"].strip() == "RefreshFailed"
    assert fields["Reason"].strip() == "schema mismatch"
    assert json.loads(fields["Source"])["type"] in ("volume", "iceberg")

    document = json.loads(run(*base, "--output", "json", str(job_id)).stdout)
    assert document["jobId"] == str(job_id)
    assert document["state"] == "RefreshFailed"
    assert document["reason"] == "schema mismatch"
    assert RFC3339.fullmatch(document["startTime"]) and RFC3339.fullmatch(document["endTime"])


def test_jobs_describe_shows_an_import_job_with_rows_size_times_and_files(world):
    _simulator, config = world
    imports = list_json(config, "--cluster", "prod", "--database", "default", "--kind", "import")
    # A completed one: before pre-import ends (and if it fails there) a job has no files yet.
    job_id = next(job["jobId"] for job in imports if job["state"] == "Completed")
    base = ("jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", "import")
    table = run(*base, job_id)
    assert table.returncode == 0, table.stderr
    assert re.search(rf"^Job ID: +{job_id}$", table.stdout, re.MULTILINE)
    assert re.search(r"^Rows: +[\d,]+ of [\d,]+ imported$", table.stdout, re.MULTILINE)
    assert re.search(r"^File size: +[\d.]+ [KMGT]?i?B \([\d,]+ bytes\)$", table.stdout, re.M)
    assert re.search(r"^Created: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", table.stdout, re.MULTILINE)
    assert re.search(r"^FILE +STATE +PROGRESS +ROWS +SIZE +COMPLETED", table.stdout, re.MULTILINE)
    assert "s3://bulk-import/" in table.stdout

    document = json.loads(run(*base, "--output", "json", job_id).stdout)
    assert document["jobId"] == job_id
    assert RFC3339.fullmatch(document["createTime"])
    assert document["completeTime"] is None or RFC3339.fullmatch(document["completeTime"])
    assert 0 <= document["importedRows"] <= document["totalRows"]
    assert document["details"] and all(file["fileName"] for file in document["details"])
    assert sum(file["fileSize"] for file in document["details"]) == document["fileSize"]


def test_a_failed_import_on_a_self_hosted_milvus_shows_no_rows_no_completion_and_file_reasons(
    start_simulator,
):
    simulator, config = start_simulator(flavor="milvus")
    reason = "failed to read file part-00001.parquet: no such file"
    job_id = simulator.start_import("default", outcome="failed", duration_seconds=0, reason=reason)
    base = ("jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", "import")

    table = run(*base, job_id)
    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    head, files = table.stdout.split("\n\n")
    fields = {
        name: value.strip() for name, value in (line.split(":", 1) for line in head.splitlines())
    }
    assert (fields["State"], fields["Progress"]) == ("Failed", "0%")
    assert fields["Rows"] == "0 of 0 imported"
    assert fields["Completed"] == "-"
    assert fields["Reason"] == reason
    assert "Duration" not in fields
    header, *rows = files.splitlines()
    assert re.split(r"  +", header) == [
        "FILE", "STATE", "PROGRESS", "ROWS", "SIZE", "COMPLETED", "REASON"
    ]  # fmt: skip
    assert len(rows) >= 1
    for row in rows:
        name, state, progress, _rows, _size, completed, file_reason = re.split(r"  +", row)
        assert re.fullmatch(r"\[s3://bulk-import/\S+\]", name), name
        assert (state, progress, completed) == ("Failed", "0%", "-")
        assert file_reason == reason

    document = json.loads(run(*base, "--output", "json", job_id).stdout)
    assert (document["state"], document["progress"]) == ("Failed", 0)
    assert (document["importedRows"], document["totalRows"]) == (0, 0)
    assert document["completeTime"] is None and "durationSeconds" not in document
    assert RFC3339.fullmatch(document["createTime"])
    for file in document["details"]:
        assert file["fileName"].startswith("[s3://") and file["fileName"].endswith("]")
        assert (file["state"], file["completeTime"], file["reason"]) == ("Failed", None, reason)


@pytest.mark.parametrize(
    ("kind", "job_id", "server_says"),
    [
        pytest.param(
            "refresh",
            "449503829274509300",
            "code 1100: refresh job 449503829274509300 not found",
            id="refresh",
        ),
        pytest.param(
            "import",
            "448761313698322011",
            "code 2100: import job does not exist, jobID=448761313698322011",
            id="import",
        ),
    ],
)
def test_describing_a_job_that_does_not_exist_is_one_line_and_exit_1(
    world, kind, job_id, server_says
):
    _simulator, config = world
    result = run(
        "jobs", "describe", "--config", str(config), "--cluster", "prod", "--kind", kind, job_id
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"milvus-jobs-exporter: prod: {kind} job {job_id} not found ({server_says})\n"
    )


@pytest.mark.parametrize(
    "flavor", ["zilliz", pytest.param("milvus", marks=pytest.mark.slow)]
)  # the second flavour is left to the full run, as in test_integration.py
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("jobs", "describe", "--kind", "refresh", "449503829274509300"), id="refresh"),
        pytest.param(("jobs", "describe", "--kind", "import", "448761313698322011"), id="import"),
        pytest.param(("jobs", "wait", "--timeout", "10s", "449503829274509300"), id="wait"),
    ],
)
def test_an_unknown_job_of_either_kind_is_the_same_not_found_line_and_exit_1(
    start_simulator, flavor, argv
):
    _simulator, config = start_simulator(flavor=flavor)
    command, action, *rest = argv
    result = run(command, action, "--config", str(config), "--cluster", "prod", *rest)
    assert result.returncode == 1
    assert result.stdout == ""
    kind = "import" if "import" in rest else "refresh"
    assert re.fullmatch(
        rf"milvus-jobs-exporter: prod: {kind} job {rest[-1]} not found \(code \d+: [^\n]+\)\n",
        result.stderr,
    ), result.stderr


def test_an_unknown_cluster_is_a_usage_error_with_a_suggestion(world):
    _simulator, config = world
    result = run("jobs", "describe", "--config", str(config), "--cluster", "stagin", "1")
    assert result.returncode == 2
    assert "no such cluster" in result.stderr and "did you mean 'staging'?" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("jobs", "list"), id="list"),
        pytest.param(("jobs", "describe", "--cluster", "prod", "1"), id="describe"),
        pytest.param(("jobs", "wait", "--cluster", "prod", "1"), id="wait"),
        pytest.param(
            ("refresh", "--cluster", "prod", "--database", "default", "--collection", "x"),
            id="refresh",
        ),
    ],
)
def test_every_operator_command_requires_a_config_file(argv):
    result = run(*argv)
    assert result.returncode == 2
    assert "--config" in result.stderr


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        pytest.param(
            "--timeout",
            "1.5s",
            "--timeout: '1.5s' is not a duration; Prometheus durations take whole numbers: "
            "write 1500ms",
            id="fraction",
        ),
        pytest.param(
            "--interval",
            "5s1m",
            "--interval: '5s1m' is not a duration; put the units from the largest down",
            id="units-out-of-order",
        ),
    ],
)
def test_a_wait_flag_takes_a_prometheus_duration_or_is_a_usage_error(world, flag, value, expected):
    _simulator, config = world
    result = run("jobs", "wait", "--config", str(config), "--cluster", "prod", flag, value, "1")
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_prints_just_the_new_job_id_which_describe_then_finds(start_simulator):
    simulator, config = start_simulator(**QUIET)
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_books",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+\n", result.stdout)
    job_id = result.stdout.strip()
    assert describe_json(config, job_id)["collection"] == "ext_books"
    assert len(refresh_requests(simulator)) == 1


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(
            ("--external-source", '{"type": "volume"}'),
            "--external-source needs --external-spec",
            id="source-alone",
        ),
        pytest.param(
            ("--external-spec", '{"format": "parquet"}'),
            "--external-spec needs --external-source",
            id="spec-alone",
        ),
        pytest.param(
            ("--external-source", "", "--external-spec", '{"format": "parquet"}'),
            "--external-source is empty",
            id="source-empty",
        ),
        pytest.param(
            ("--external-source", "s3://bucket/books/", "--external-spec", "  "),
            "--external-spec is empty",
            id="spec-blank",
        ),
    ],
)
def test_a_refresh_with_a_bad_source_or_spec_is_refused_before_anything_is_sent(
    start_simulator, flags, expected
):
    simulator, config = start_simulator(**QUIET)
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_books", *flags,
    )  # fmt: skip
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert refresh_requests(simulator) == []


def test_a_uri_source_goes_to_a_self_hosted_milvus_as_given_and_the_refresh_completes(
    start_simulator,
):
    _simulator, config = start_simulator(flavor="milvus", time_scale=600.0, **QUIET)
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_books", "--external-source", "s3://bucket/books/",
        "--external-spec", '{"format":"parquet"}', "--wait", "--interval", "100ms",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job_id, *progress = result.stdout.splitlines()
    assert progress[-1].split()[3:5] == ["RefreshCompleted", "100%"]
    described = describe_json(config, job_id)
    assert (described["state"], described["externalSource"]) == (
        "RefreshCompleted",
        "s3://bucket/books/",
    )


def test_a_source_the_server_refuses_is_the_servers_refusal_not_the_commands(start_simulator):
    simulator, config = start_simulator(**QUIET)  # Zilliz Cloud: sources must be JSON
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_books", "--external-source", "s3://bucket/books/",
        "--external-spec", '{"format":"parquet"}',
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "milvus-jobs-exporter: prod/default ext_books: refresh refused: api_1100 (code 1100: "
    )
    assert len(refresh_requests(simulator)) == 1


def test_refresh_wait_prints_progress_lines_and_exits_0_when_the_refresh_completes(
    start_simulator,
):
    _simulator, config = start_simulator(time_scale=600.0, **QUIET)
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_movies", "--wait", "--interval", "100ms",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job_id, *progress = result.stdout.splitlines()
    assert job_id.isdigit()
    assert progress, "at least the final state is shown"
    for line in progress:
        assert re.fullmatch(
            rf"{RFC3339.pattern} job {job_id} Refresh(Pending|InProgress|Completed) \d+% "
            r"elapsed \d+(m\d\ds|s)",
            line,
        ), line
    shown = [line.split()[3:5] for line in progress]
    assert all(before != after for before, after in itertools.pairwise(shown))
    assert shown[-1] == ["RefreshCompleted", "100%"]


def test_jobs_wait_exits_1_and_prints_the_reason_when_the_refresh_fails(start_simulator):
    simulator, config = start_simulator(time_scale=10.0)
    job_id = simulator.start_refresh(
        "default", "ext_books", outcome="failed", duration_seconds=10, reason="bucket is gone"
    )
    result = run(
        "jobs", "wait", "--config", str(config), "--cluster", "prod", "--interval", "200ms",
        str(job_id),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].split()[3] == "RefreshFailed"
    assert result.stderr == f"milvus-jobs-exporter: refresh job {job_id} failed: bucket is gone\n"


def test_refresh_wait_exits_3_at_the_timeout_and_says_how_to_keep_watching(start_simulator):
    _simulator, config = start_simulator(**QUIET)  # real time: the refresh takes 20 s or more
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "analytics",
        "--collection", "ext_books", "--wait", "--timeout", "1s", "--interval", "200ms",
    )  # fmt: skip
    assert result.returncode == 3
    job_id = result.stdout.splitlines()[0]
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"milvus-jobs-exporter: gave up waiting after 1s (--timeout): refresh job {job_id} "
        "keeps running"
    )
    assert (
        f"milvus-jobs-exporter jobs wait --config {shlex.quote(str(config))} --cluster prod "
        f"{job_id}" in lines[1]
    )


@pytest.mark.slow
def test_waiting_asks_no_faster_than_the_rate_limit(start_simulator):
    simulator, config = start_simulator()
    job_id = simulator.start_refresh("default", "ext_books", outcome="hang")
    result = run(
        "jobs", "wait", "--config", str(config), "--cluster", "prod", "--timeout", "2s",
        "--interval", "1ms", str(job_id),
    )  # fmt: skip
    assert result.returncode == 3
    arrivals = [record.arrival for record in simulator.request_log() if record.path == DESCRIBE_API]
    assert len(arrivals) >= 20, "the command did try to ask as fast as it could"
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 20
    assert all(record.status == 200 for record in simulator.request_log())


@pytest.mark.slow
def test_a_temporary_failure_while_waiting_is_shown_and_waiting_goes_on(start_simulator):
    simulator, config = start_simulator(time_scale=10.0)
    job_id = simulator.start_refresh("default", "ext_books", duration_seconds=20)
    simulator.set_fault(Fault("http_503"), path="external_collection/describe")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "jobs", "wait", "--config", str(config),
            "--cluster", "prod", "--interval", "100ms", str(job_id),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_environment(None),
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    simulator.clear_faults()
    stdout, stderr = process.communicate(timeout=20)
    _check_output(stdout, stderr)
    assert re.fullmatch(
        rf"{RFC3339.pattern} job {job_id} describe failed: http_503 \(HTTP 503\); still waiting\n",
        first,
    )
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[-1].split()[3:5] == ["RefreshCompleted", "100%"]


def test_a_refresh_refused_because_one_is_running_names_the_running_job(world):
    simulator, config = world
    running = simulator.start_refresh("default", "ext_books", outcome="hang")
    result = run(
        "refresh", "--config", str(config), "--cluster", "prod", "--database", "default",
        "--collection", "ext_books",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"milvus-jobs-exporter: prod/default ext_books: refresh refused: job {running} is "
        "already running"
    )
    assert line.endswith(f"jobs wait --config {shlex.quote(str(config))} --cluster prod {running}")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_waiting_exits_130_leaves_the_job_running_and_says_how_to_resume(
    start_simulator,
):
    _simulator, config = start_simulator(**QUIET)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "refresh", "--config", str(config),
            "--cluster", "prod", "--database", "default", "--collection", "ext_books",
            "--wait", "--interval", "200ms",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_environment(None),
        # A shell that starts CI in the background makes its children ignore SIGINT, and Python
        # then installs no KeyboardInterrupt handler: give the command the terminal's default.
        preexec_fn=_default_sigint,
    )  # fmt: skip
    assert process.stdout is not None
    job_id = process.stdout.readline().strip()
    assert " job " in process.stdout.readline(), "waiting has begun"
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"no exit 30 s after SIGINT; stderr: {stderr[-2000:]}") from None
    _check_output(stdout, stderr)
    assert process.returncode == 130
    assert f"stopped waiting; refresh job {job_id} keeps running" in stderr
    assert (
        f"milvus-jobs-exporter jobs wait --config {shlex.quote(str(config))} --cluster prod "
        f"{job_id}" in stderr
    )
    assert "jobs describe" in stderr
    assert describe_json(config, job_id)["state"] in ("RefreshPending", "RefreshInProgress")


@pytest.mark.slow
def test_on_a_terminal_waiting_redraws_one_progress_bar_in_place(start_simulator):
    simulator, config = start_simulator(time_scale=10.0)
    job_id = simulator.start_refresh("default", "ext_books", duration_seconds=25)
    columns = 72
    code, stdout, stderr = run_in_terminal(
        "jobs", "wait", "--config", str(config), "--cluster", "prod", "--interval", "100ms",
        str(job_id), columns=columns,
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout.count("\r") > 5, "the bar is redrawn in place"
    assert stdout.endswith("\r\n"), "the finished bar is left on its own line"
    frames = [ANSI.sub("", frame) for frame in stdout.rstrip("\r\n").split("\r") if frame]
    percentages = {int(match) for frame in frames for match in re.findall(r"(\d+)%", frame)}
    assert len(percentages) >= 3 and 100 in percentages
    assert all(len(frame) < columns for frame in frames), "every frame fits the terminal"
    assert "RefreshCompleted" in frames[-1]
    assert "\x1b[32mRefreshCompleted\x1b[0m" in stdout
