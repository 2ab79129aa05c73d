"""Real parts for end-to-end paging: the exporter as a process, Prometheus, Alertmanager and a
webhook receiver of our own, all on 127.0.0.1, running the generated rules.

Used by the end-to-end tests (``tests/e2e/``, ``tests/test_alertmanager.py``) and the
time-to-page benchmark (``benchmarks/paging.py``). Every process is stopped by its context
manager; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from .rule_times import shortened_rules
from .rules import rule_file, rules
from .settings import load_settings

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str) -> str | None:
    """A Debian binary's path; also finds Alertmanager under its Debian name."""
    return shutil.which(name) or (
        shutil.which("prometheus-alertmanager") if name == "alertmanager" else None
    )


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


BATCH_NICENESS = 10
"""The niceness of a process that only crunches (a Prometheus answering heavy queries, promtool):
in a parallel run it takes the CPU that tests waiting on the clock leave, instead of making
their deadlines late."""


def batch(command: list[str]) -> list[str]:
    """``command`` run at ``BATCH_NICENESS`` (``nice``, so every thread of it is nice)."""
    return ["nice", "-n", str(BATCH_NICENESS), *command]


def start(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rules_with_for(destination: Path, seconds: float | None) -> Path:
    """The shipped rules with every ``for:`` set to ``seconds`` (None: as shipped); the older
    spelling of ``shortened_rules(destination, hold=seconds)``, which also cuts the lookback
    and other ranges."""
    return shortened_rules(destination, hold=seconds)


def shipped_rules(destination: Path, **alerts: str) -> Path:
    """The shipped rules as generated from prometheus/thresholds.yml with some ``alerts.*``
    thresholds replaced (``lookback="5s"``, ``target_lost_for="2s"``...): exactly what a user
    with those thresholds gets, so a test waits seconds where the shipped rules wait minutes."""
    document = yaml.safe_load((REPO / "prometheus" / "thresholds.yml").read_text())
    unknown = set(alerts) - set(document["alerts"])
    assert not unknown, f"not thresholds: {unknown}"
    document["alerts"].update(alerts)
    thresholds = destination / "thresholds.yml"
    thresholds.write_text(yaml.safe_dump(document))
    settings = load_settings(thresholds)
    path = destination / "alerts.yml"
    path.write_text(rule_file.render(rules(settings), settings))
    return path


@contextmanager
def exporter_process(
    workdir: Path,
    name: str,
    config_text: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """``milvus-jobs-exporter serve`` with ``config_text`` (and ``args``); yields its URL once it
    listens. Give ``port`` to restart an exporter where Prometheus already scrapes it."""
    port = port or free_port()
    config = workdir / f"{name}.yaml"
    config.write_text(config_text)
    config.chmod(0o600)
    process = start(
        [sys.executable, "-m", "exporter", "serve", "--config", str(config),
         "--listen", f"127.0.0.1:{port}", "--log-format", "json", *args],
        workdir / f"{name}.log",
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/healthz"), 30, f"exporter {name} to listen", 0.1)
        yield url
    finally:
        stop(process)


@dataclass
class Prometheus:
    url: str
    targets_file: Path | None = None
    """With file-based service discovery: the file its targets are read from."""

    def set_targets(self, targets: list[str]) -> None:
        """Replace the scraped targets (file-based service discovery), as a pod deleted or
        added would: written whole and renamed into place."""
        assert self.targets_file is not None, "started without file_sd"
        written = self.targets_file.with_suffix(".new")
        written.write_text(json.dumps([{"targets": targets}]))
        written.replace(self.targets_file)

    def firing(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """The firing ``name`` alerts whose labels include ``labels``."""
        return [
            alert
            for alert in self.alerts(name)
            if alert["state"] == "firing"
            and all(alert["labels"].get(key) == value for key, value in labels.items())
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        payload = response.json()
        assert payload["status"] == "success", f"{expr}: {payload}"
        return list(payload["data"]["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        payload = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return [a for a in payload["data"]["alerts"] if a["labels"]["alertname"] == name]


@contextmanager
def prometheus_process(
    workdir: Path,
    targets: list[str],
    rules: Path,
    *,
    scrape_interval: float = 1.0,
    evaluation_interval: float = 1.0,
    alertmanager: str | None = None,
    file_sd: bool = False,
) -> Iterator[Prometheus]:
    """A real Prometheus scraping ``targets`` (host:port) as job ``milvus-jobs``; with
    ``file_sd``, found through a file that ``Prometheus.set_targets`` rewrites."""
    executable = binary("prometheus")
    assert executable, "prometheus is not installed (Debian package prometheus)"
    port = free_port()
    alerting = ""
    if alertmanager:
        alerting = f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{alertmanager}]\n"
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {scrape_interval:g}s\n"
        f"  evaluation_interval: {evaluation_interval:g}s\n"
        f"rule_files: [{rules}]\n{alerting}"
        "scrape_configs:\n  - job_name: milvus-jobs\n"
        f"    scrape_timeout: {min(scrape_interval, 10):g}s\n"
        + (
            f"    file_sd_configs:\n      - files: [{workdir / 'targets.json'}]\n"
            "        refresh_interval: 1s\n"
            if file_sd
            else f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )
    )
    targets_file = workdir / "targets.json" if file_sd else None
    if targets_file is not None:
        targets_file.write_text(json.dumps([{"targets": targets}]))
    process = start(
        [executable, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}",
         f"--rules.alert.resend-delay={max(evaluation_interval, 1):g}s"],
        workdir / "prometheus.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/-/ready"), 30, "Prometheus to be ready")
        yield Prometheus(url, targets_file)
    finally:
        stop(process)


@dataclass
class Notification:
    """One alert of one webhook notification, as Alertmanager sent it."""

    received: float
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class WebhookReceiver:
    """Alertmanager's webhook receiver: records every notification it is sent."""

    notifications: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, alertname: str, **labels: str) -> list[Notification]:
        with self.lock:
            return [
                note
                for note in self.notifications
                if note.labels.get("alertname") == alertname
                and all(note.labels.get(k) == v for k, v in labels.items())
            ]

    def record(self, payload: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            for alert in payload.get("alerts", []):
                self.notifications.append(
                    Notification(now, alert["status"], alert["labels"], alert["annotations"])
                )


@contextmanager
def webhook_receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            receiver.record(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def alertmanager_process(
    workdir: Path,
    webhook_url: str,
    *,
    group_wait: float = 1.0,
    group_interval: float = 2.0,
    repeat_interval: str = "4h",
    shipped: bool = False,
) -> Iterator[str]:
    """A real Alertmanager (Debian's prometheus-alertmanager) sending to ``webhook_url``;
    yields its host:port. ``shipped``: with the route tree and inhibitions of
    prometheus/alertmanager.yml (its pager URLs pointed at ``webhook_url``, its waits shortened
    to ``group_wait`` and ``group_interval``) instead of one route grouping every alert alone."""
    executable = binary("alertmanager")
    assert executable, "Alertmanager is not installed (Debian package prometheus-alertmanager)"
    port = free_port()
    config = workdir / "alertmanager.yml"
    if shipped:
        text = (REPO / "prometheus" / "alertmanager.yml").read_text()
        text = re.sub(r"url: \S+", f"url: {webhook_url}", text)
        text = re.sub(r"group_wait: \S+", f"group_wait: {group_wait:g}s", text)
        text = re.sub(r"group_interval: \S+", f"group_interval: {group_interval:g}s", text)
        config.write_text(text)
    else:
        config.write_text(
            "route:\n  receiver: webhook\n"
            "  group_by: [alertname, milvus_cluster, database, collection, kind, instance]\n"
            f"  group_wait: {group_wait:g}s\n  group_interval: {group_interval:g}s\n"
            f"  repeat_interval: {repeat_interval}\n"
            "receivers:\n  - name: webhook\n    webhook_configs:\n"
            f"      - url: {webhook_url}\n        send_resolved: true\n"
        )
    process = start(
        [executable, f"--config.file={config}", f"--storage.path={workdir / 'alertmanager'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        workdir / "alertmanager.log",
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"http://{address}/-/ready"), 30, "Alertmanager to be ready")
        yield address
    finally:
        stop(process)
