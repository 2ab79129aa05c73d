"""The simulator counts a request when it reached the host, not when it got the CPU to read it.

Rate-limit tests compare the simulator's arrival stamps with the 20-a-second limit. Stamped when
a busy handler thread finally read the request line, requests that came in evenly bunched into
bursts the client never sent (a soak under a loaded machine counted 21 in a second where the
kernel's receive times had 20). So the simulator stamps with the kernel's receive time. Here the
simulator process is stopped while a request comes in: its stamp must be when it was sent, not
when the simulator was continued.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from .helpers import wait_for_simulator
from .test_cli import free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMP is Linux's")

TOKEN = "arrival-token-1d4e"
PATH = "/v2/vectordb/jobs/import/list"
STOPPED = 1.0


@pytest.fixture
def simulator_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "simulate", "--listen", f"127.0.0.1:{port}",
         "--tokens", TOKEN, "--databases", "default"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_simulator(url)
        yield process, url
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(timeout=10)


def request_bytes(host: str) -> bytes:
    body = json.dumps({"dbName": "default"}).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_answer(connection: socket.socket) -> int:
    """Read one HTTP answer off a kept-alive connection; its status."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, "the simulator closed the connection"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the simulator closed the connection"
        body += chunk
    return int(lines[0].split()[1])


def test_a_request_that_comes_in_while_the_simulator_waits_for_the_cpu_is_stamped_on_arrival(
    simulator_process,
):
    process, url = simulator_process
    host = url.removeprefix("http://")
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=10) as connection:
        connection.sendall(request_bytes(host))  # a handler thread now waits on this connection
        assert read_answer(connection) == 200
        os.kill(process.pid, signal.SIGSTOP)
        try:
            connection.sendall(request_bytes(host))
            sent_by = time.time()  # in the kernel's hands: on loopback, received
            time.sleep(STOPPED)
            continued_at = time.time()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert read_answer(connection) == 200
    log = requests.get(f"{url}/_simulator/requests", timeout=10).json()["requests"]
    arrivals = [record["arrival"] for record in log if record["path"] == PATH]
    assert len(arrivals) == 2
    assert arrivals[1] < continued_at - STOPPED / 2, (
        f"stamped {arrivals[1] - sent_by:.2f}s after it arrived: when the simulator got the CPU"
    )
    assert arrivals[1] <= sent_by + 0.05, "stamped after it was sent"
