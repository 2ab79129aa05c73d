"""Signals from the first instruction of ``main`` to the last (issue 20), sent to a real
``python -m exporter serve`` during a start-up made slow on purpose (a state file of 100,000
collections takes seconds to restore) and once it runs. Every wait is bounded."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exporter.memory.history import CollectionHistory
from exporter.memory.state import KindMemory, SavedState, save_state

from . import hostile
from .conftest import TOKEN_A
from .helpers import wait_until_answered
from .test_cli import REPO, free_port

pytestmark = pytest.mark.slow

COLLECTIONS = 100_000
WRITTEN_AT = 1_700_000_000.0
STATE_LIMIT = 64 * 1024 * 1024
"""Above the 16 MiB default: the point is a restore slow enough to signal into."""


def write_state(path: Path) -> None:
    """A valid state file big enough that restoring it takes a couple of seconds."""
    at = time.time() - 3600
    save_state(
        path,
        SavedState(
            kinds={
                "refresh": KindMemory(
                    history=[
                        (
                            ("prod", "default", f"ext_{index:07d}"),
                            CollectionHistory(at, None, at, "", ""),
                        )
                        for index in range(COLLECTIONS)
                    ]
                )
            }
        ),
        WRITTEN_AT,
        max_bytes=STATE_LIMIT,
    )


@pytest.fixture(scope="module")
def big_state(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("state") / "state.json"
    write_state(path)
    return path.read_bytes()


def written_at(path: Path) -> float:
    return float(json.loads(path.read_bytes())["written_at"])


@contextmanager
def slow_starting_exporter(
    tmp_path: Path, state: bytes, upstream: str
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    state_path = tmp_path / "state.json"
    state_path.write_bytes(state)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"poll_interval: 1s\nrequest_timeout: 500ms\nmax_retries: 0\nstate_file: {state_path}\n"
        f"max_state_file_bytes: {STATE_LIMIT}\n"
        f"clusters:\n  - name: prod\n    endpoint: {upstream}\n    token: {TOKEN_A}\n"
        "    databases: [default]\n    jobs: [refresh]\n"
    )
    config.chmod(0o600)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "exporter", "serve", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", "--log-format", "json",
        ],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield process, port, state_path
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {
        name: value.strip()
        for name, _, value in (line.partition(":") for line in text.splitlines())
    }


def handles(pid: int, number: int) -> bool:
    """The process has a handler of its own for signal ``number`` (SigCgt)."""
    caught = status(pid).get("SigCgt")
    return caught is not None and bool(int(caught, 16) >> (number - 1) & 1)


def send_during_start_up(
    process: subprocess.Popen[str], port: int, phase: str, *signals: int
) -> None:
    """Send ``signals`` while the process is still starting: in ``imports`` (handlers in place,
    logging not yet configured: one thread) or in ``restore`` (logging's writer thread runs,
    the port is not open yet: the state file is being read)."""
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, "the exporter exited before the signal was sent"
        assert time.monotonic() < deadline, f"never saw the {phase} phase"
        threads = int(status(process.pid).get("Threads", "0") or 0)
        if phase == "imports" and handles(process.pid, signal.SIGTERM) and threads == 1:
            break
        if phase == "restore" and threads >= 2:
            time.sleep(0.1)  # past configure_logging, whose writer thread just started
            break
        time.sleep(0.002)
    for number in signals:
        process.send_signal(number)
        time.sleep(0.02)
    assert not listening(port), "start-up was over before the signals were sent"


def wait_until_serving(process: subprocess.Popen[str], port: int, timeout: float = 30) -> None:
    wait_until_answered(
        f"http://127.0.0.1:{port}/readyz",
        "the exporter never became ready",
        timeout,
        process=process,
    )


def events(stderr: str) -> list[dict[str, object]]:
    found = []
    for line in stderr.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def stop(process: subprocess.Popen[str], number: int = signal.SIGTERM) -> tuple[float, str]:
    sent = time.time()
    process.send_signal(number)
    _out, err = process.communicate(timeout=15)
    return sent, err


@pytest.mark.parametrize("phase", ["imports", "restore"])
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_term_or_int_during_start_up_exits_0_without_a_traceback_and_keeps_the_state_file(
    tmp_path, big_state, number, phase
):
    with (
        hostile.hostile_server({}) as upstream,
        slow_starting_exporter(tmp_path, big_state, upstream.url) as (process, port, state),
    ):
        send_during_start_up(process, port, phase, number)
        _out, err = process.communicate(timeout=15)
        assert process.returncode == 0, err[-2000:]
        assert "Traceback" not in err
        name = signal.Signals(number).name
        if phase == "imports":  # logging is not configured yet: one plain line
            assert err == f"milvus-jobs-exporter: stopped by {name} while starting\n"
        else:
            assert any(
                event.get("event") == "exporter.stopping" and event.get("signal") == name
                for event in events(err)
            ), err[-2000:]
        assert written_at(state) == WRITTEN_AT, "a start-up cut short must not rewrite the state"


@pytest.mark.parametrize("phase", ["imports", "restore"])
def test_hup_and_usr1_usr2_alrm_during_start_up_and_after_leave_it_running(
    tmp_path, big_state, phase
):
    """HUP during start-up becomes one reload once it runs; USR1, USR2 and ALRM are logged and
    ignored, during start-up and after; INT then stops it with the final save."""
    ignorable = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
    with (
        hostile.hostile_server({}) as upstream,
        slow_starting_exporter(tmp_path, big_state, upstream.url) as (process, port, state),
    ):
        send_during_start_up(process, port, phase, signal.SIGHUP, *ignorable)
        wait_until_serving(process, port)
        for number in ignorable:
            process.send_signal(number)
            time.sleep(0.05)
        time.sleep(0.5)
        assert process.poll() is None, f"the exporter died ({process.returncode})"
        sent, err = stop(process, signal.SIGINT)
        assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    seen = events(err)
    names = [str(event.get("event")) for event in seen]
    started = names.index("exporter.started")
    reloads = [
        index for index, name in enumerate(names) if name in ("config.unchanged", "config.reloaded")
    ]
    assert len(reloads) == 1 and reloads[0] > started, names
    ignored = [str(event.get("signal")) for event in seen if event.get("event") == "signal.ignored"]
    assert sorted(ignored) == sorted(["SIGUSR1", "SIGUSR2", "SIGALRM"] * 2), ignored
    assert written_at(state) >= sent - 1, "no final save after SIGINT"
