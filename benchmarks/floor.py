"""The loopback floor: a server that answers every GET with N bytes it already holds in memory.

Whatever a scrape of N bytes costs beyond what this server's answer costs the same client is the
exporter's own work. It runs in a process of its own, as the exporter does: in the client's
process, the two threads would trade one interpreter lock after every ``recv`` and ``send``.
Prints ``ready 127.0.0.1:PORT`` and serves until SIGTERM.

    python -m benchmarks.floor --bytes 104857600
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
from types import FrameType

from .upstream import READY_PREFIX

LOOPBACK = "127.0.0.1"


def serve(size: int, port: int = 0) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\n"
    answer_head = (head + "Connection: close\r\n\r\n").encode()
    line = b'milvus_refresh_job_progress_ratio{job_id="1"} 0.42\n'
    body = (line * (size // len(line) + 1))[:size]  # real pages, not calloc's zero pages
    with socket.create_server((LOOPBACK, port)) as listener:
        print(f"{READY_PREFIX}{LOOPBACK}:{listener.getsockname()[1]}", flush=True)
        while True:
            connection, _ = listener.accept()
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                with contextlib.suppress(OSError):
                    connection.sendall(answer_head)
                    connection.sendall(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bytes", type=int, required=True, help="body size of every answer")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve(args.bytes, args.port)


if __name__ == "__main__":
    main()
