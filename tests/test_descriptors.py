"""Descriptors kept for the listener (issue 20): under a low ``RLIMIT_NOFILE`` the poller took
every descriptor, and ``/metrics`` could accept nothing. Against the real daemon, bounded."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from exporter.config.loader import Config
from exporter.polling.descriptors import upstream_budget

from . import hostile
from .conftest import TOKEN_A
from .helpers import CLUSTER
from .test_cli import REPO, free_port


def test_a_high_limit_leaves_the_configured_concurrency_alone():
    budget = upstream_budget(Config(clusters=(CLUSTER,)), soft_limit=65536, in_use=12)
    assert (budget.concurrency, budget.pool_size, budget.limited) == (32, 32, False)


def test_no_limit_at_all_leaves_the_configured_concurrency_alone():
    config = Config(clusters=(CLUSTER,), max_concurrent_requests=200)
    budget = upstream_budget(config, soft_limit=resource.RLIM_INFINITY, in_use=12)
    assert (budget.concurrency, budget.pool_size, budget.limited) == (200, 200, False)


@pytest.mark.parametrize(
    ("soft_limit", "limited"), [(48, True), (100, True), (256, False), (1024, False)]
)
def test_a_low_limit_caps_requests_and_kept_connections_below_it_with_room_to_spare(
    soft_limit, limited
):
    clusters = tuple(CLUSTER.__class__(f"c{index}", CLUSTER.endpoint, "t") for index in range(3))
    config = Config(clusters=clusters, max_concurrent_requests=64)
    budget = upstream_budget(config, soft_limit=soft_limit, in_use=13)
    most_upstream = budget.concurrency + budget.pool_size * len(clusters)
    assert budget.limited is limited
    assert budget.concurrency >= 1 and budget.pool_size >= 1
    assert 13 + most_upstream + budget.reserved <= soft_limit
    assert budget.reserved >= 16
    assert str(soft_limit) in budget.warning


def test_a_limit_too_low_for_anything_still_allows_one_request():
    budget = upstream_budget(Config(clusters=(CLUSTER,)), soft_limit=20, in_use=13)
    assert (budget.concurrency, budget.pool_size, budget.limited) == (1, 1, True)


@pytest.mark.slow
def test_metrics_keeps_answering_while_the_poller_is_short_of_descriptors(tmp_path: Path):
    """64 requests allowed at once, 120 targets trickling their answers, a limit of 48
    descriptors: before, about every second scrape timed out while accept() got EMFILE."""
    databases = ", ".join(f"db{index:02d}" for index in range(60))
    with hostile.hostile_server({}, default=hostile.trickle_body(every=0.5)) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(
            "poll_interval: 2s\nrequest_timeout: 5s\nmax_retries: 0\n"
            "max_concurrent_requests: 64\nclusters:\n"
            f"  - name: slow\n    endpoint: {upstream.url}\n    token: {TOKEN_A}\n"
            f"    databases: [{databases}]\n"
        )
        config.chmod(0o600)
        port = free_port()

        def low_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

        process = subprocess.Popen(
            [
                sys.executable, "-m", "exporter", "serve", "--config", str(config),
                "--listen", f"127.0.0.1:{port}", "--log-format", "json",
            ],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=low_limit,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while len(upstream.seen) < 20:  # the poller is busy now
                assert process.poll() is None, "the exporter exited"
                assert time.monotonic() < deadline, "the exporter sent too few requests"
                time.sleep(0.1)
            answers: list[int | str] = []
            for _ in range(12):
                try:
                    status: int | str = requests.get(
                        f"http://127.0.0.1:{port}/metrics", timeout=2
                    ).status_code
                except requests.RequestException as error:
                    status = type(error).__name__
                answers.append(status)
                time.sleep(0.4)
        finally:
            process.terminate()
            _out, err = process.communicate(timeout=20)
    assert answers == [200] * 12, answers
    assert "poll.descriptors_limited" in err
    assert "Too many open files" not in err
