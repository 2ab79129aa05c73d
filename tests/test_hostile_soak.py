"""Hostile soak: every hostile upstream at once, for a minute, next to healthy ones.

The healthy targets must stay fresh the whole time (last success never older than two poll
intervals plus the request timeout), /metrics must stay valid UTF-8 and parseable, threads must
stay bounded, and SIGTERM must end the process within 10 s. Bounded by HOSTILE_SOAK_SECONDS
(default 60).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import Simulator, SimulatorOptions

from . import hostile
from .conftest import TOKEN_A, TOKEN_B
from .helpers import wait_until_answered
from .test_cli import REPO, free_port
from .test_no_silent_stall import SURROGATE_ANSWER

pytestmark = pytest.mark.soak

POLL_INTERVAL = 2.0
REQUEST_TIMEOUT = 1.0
FRESH = 2 * POLL_INTERVAL + REQUEST_TIMEOUT

HOSTILE = {
    "trickle_headers": hostile.trickle_headers(every=0.3),
    "trickle_body": hostile.trickle_body(every=0.3),
    "pages": hostile.endless_pages,
    "surrogates": hostile.raw_json(SURROGATE_ANSWER),
    "unreadable": hostile.records(
        hostile.refresh_record(1, "ok"), hostile.refresh_record(2, "seconds", startTime=1)
    ),
    "new_names": hostile.new_collections_each_poll(30),
    "reset": hostile.reset_mid_body,
    "echo": hostile.records(hostile.refresh_record(3, "x", "RefreshFailed", reason=TOKEN_A)),
}


def write_config(path: Path, simulator_url: str, hostile_url: str, throttled_url: str) -> None:
    databases = ", ".join([*HOSTILE, "good"])
    path.write_text(
        f"""poll_interval: {POLL_INTERVAL:g}s
request_timeout: {REQUEST_TIMEOUT:g}s
max_retries: 1
max_tracked_collections: 300
clusters:
  - name: healthy
    endpoint: {simulator_url}
    token: {TOKEN_A}
    databases: [default, analytics]
  - name: hostile
    endpoint: {hostile_url}
    token: {TOKEN_A}
    databases: [{databases}]
  - name: throttled
    endpoint: {throttled_url}
    token: {TOKEN_B}
    databases: [default]
"""
    )
    path.chmod(0o600)


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_hostile_upstreams_for_a_minute_never_stale_the_healthy_targets(tmp_path):
    simulator = Simulator(
        SimulatorOptions(seed=3, tokens=(TOKEN_A,), databases=("default", "analytics"))
    )
    duration = float(os.environ.get("HOSTILE_SOAK_SECONDS", "60"))
    with (
        simulator.serve("127.0.0.1", 0) as healthy,
        hostile.hostile_server(HOSTILE) as bad,
        hostile.hostile_server({}, default=hostile.too_many_requests(300)) as throttled,
    ):
        config = tmp_path / "config.yaml"
        write_config(config, healthy.url, bad.url, throttled.url)
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "serve", "--config", str(config),
             "--listen", f"127.0.0.1:{port}", "--log-format", "json"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_answered(
                f"http://127.0.0.1:{port}/readyz",
                "the exporter never became ready",
                20,
                request_timeout=2,
                pause=0.2,
            )
            started = time.monotonic()
            scrapes, worst_age, most_threads = 0, 0.0, 0
            while time.monotonic() - started < duration:
                raw = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).content
                text = raw.decode("utf-8")  # strict
                ages = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if (
                            sample.name == "milvus_jobs_exporter_last_success_timestamp_seconds"
                            and sample.labels["milvus_cluster"] == "healthy"
                        ):
                            ages[sample.labels["database"], sample.labels["kind"]] = (
                                time.time() - sample.value
                            )
                assert len(ages) == 4, ages
                worst_age = max(worst_age, *ages.values())
                assert worst_age <= FRESH, f"a healthy target went {worst_age:.1f}s unpolled"
                assert TOKEN_A not in text and TOKEN_B not in text
                most_threads = max(most_threads, threads_of(process.pid))
                scrapes += 1
                time.sleep(0.5)
            assert process.poll() is None
            assert scrapes >= duration  # two a second, give or take
            assert most_threads < 60, f"{most_threads} threads"
            print(
                f"hostile soak: {duration:.0f}s, worst age {worst_age:.2f}s, threads {most_threads}"
            )

            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
            assert time.monotonic() - stopped_at < 10
            assert process.returncode == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
