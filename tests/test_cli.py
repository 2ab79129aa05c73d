"""The command line as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from exporter.simulator import Fault

from .conftest import TOKEN_A

REPO = Path(__file__).resolve().parent.parent


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def serve_process(
    config: Path, port: int, *extra: str, token: str = TOKEN_A
) -> subprocess.Popen[str]:
    """``milvus-jobs-exporter serve`` as a real process with JSON logs on stderr."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-format",
            "json",
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, "MILVUS_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    tmp_path: Path,
    url: str,
    databases: str = "[default, analytics]",
    token: str = "${MILVUS_TOKEN}",
) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""listen_address: "127.0.0.1:{free_port()}"
poll_interval: 1s
request_timeout: 2s
max_retries: 0
clusters:
  - name: prod
    endpoint: {url}
    token: {token}
    databases: {databases}
"""
    )
    return path


def test_check_prints_a_table_and_exits_0_when_every_target_answers(simulator, tmp_path):
    _sim, url = simulator
    result = run(
        "check", "--config", str(write_config(tmp_path, url)), env={"MILVUS_TOKEN": TOKEN_A}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CLUSTER", "DATABASE", "KIND", "STATUS", "JOBS", "LATENCY"]
    assert len([line for line in lines[1:] if line.startswith("prod")]) == 4
    assert all(" ok " in line for line in lines[1:5])
    assert lines[-1] == "4 of 4 targets ok"


def test_check_exits_1_and_names_the_reason_when_a_target_fails(simulator, tmp_path):
    sim, url = simulator
    sim.set_fault(Fault(kind="db_not_found"), database="analytics")
    result = run(
        "check", "--config", str(write_config(tmp_path, url)), env={"MILVUS_TOKEN": TOKEN_A}
    )
    assert result.returncode == 1
    assert "error: api_800" in result.stdout
    assert "2 of 4 targets ok" in result.stdout


def test_check_with_a_wrong_token_fails_without_printing_it(simulator, tmp_path):
    _sim, url = simulator
    result = run(
        "check",
        "--config",
        str(write_config(tmp_path, url)),
        env={"MILVUS_TOKEN": "wrong-token-123456"},
    )
    assert result.returncode == 1
    assert "error: auth" in result.stdout
    assert "wrong-token-123456" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        pytest.param(
            "clusters: []\n", "config.yaml:1: clusters: the list is empty", id="empty-clusters"
        ),
        pytest.param(
            "clusters:\n  - name: a\n    endpoint: example.com\n",
            "config.yaml:3: clusters[0].endpoint: must start with http://",
            id="endpoint-scheme",
        ),
        pytest.param(
            "clusters:\n  - name: a\n    endpoint: http://x\n    token: ${NOT_SET_ANYWHERE}\n",
            "environment variable NOT_SET_ANYWHERE is not set",
            id="unset-env",
        ),
        pytest.param(
            "poll_interval: 30\nclusters: [{name: a, endpoint: 'http://x'}]\n",
            "config.yaml:1: poll_interval:",
            id="duration-without-unit",
        ),
        pytest.param(
            "clusters:\n  - name: a\n   endpoint: http://x\n",
            "config.yaml:3: invalid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            "poll_intervall: 30s\nclusters: [{name: a, endpoint: 'http://x'}]\n",
            "did you mean 'poll_interval'?",
            id="did-you-mean",
        ),
    ],
)
def test_a_broken_config_is_refused_with_exit_2_and_one_line_per_problem(
    tmp_path, config_text, expected
):
    path = tmp_path / "config.yaml"
    path.write_text(config_text)
    result = run("check", "--config", str(path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_missing_config_file_is_one_line_and_exit_2(tmp_path):
    result = run("serve", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr and "cannot read config file" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_scrapes_and_exits_0_on_sigterm(simulator, tmp_path):
    _sim, url = simulator
    config = write_config(tmp_path, url, databases="[default]")
    port = free_port()
    process = serve_process(config, port)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "exporter never became ready"
            time.sleep(0.1)
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert (
            'milvus_jobs_exporter_target_up{milvus_cluster="prod",database="default",kind="refresh"} 1.0'
            in body
        )
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert '"event": "exporter.stopped"' in err
    assert TOKEN_A not in err


def test_serve_on_a_taken_port_says_so_in_one_line_and_exits_1(simulator, tmp_path):
    _sim, url = simulator
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "serve",
            "--config",
            str(write_config(tmp_path, url)),
            "--listen",
            f"127.0.0.1:{port}",
            env={"MILVUS_TOKEN": TOKEN_A},
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
