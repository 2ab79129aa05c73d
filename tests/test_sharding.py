"""Scaling out: shards split the targets with no coordination and share each token's limit."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import replace

import pytest

from exporter.config.loader import ClusterConfig, ConfigError, parse_config
from exporter.polling.targets import targets_of

from .conftest import TOKEN_A, cluster, series, value
from .helpers import config
from .test_cli import REPO, write_config

DATABASES = tuple(f"db{index:02d}" for index in range(50))


def sharded(index: int, count: int):
    clusters = tuple(
        ClusterConfig(name=name, endpoint="http://127.0.0.1:1", token="t", databases=DATABASES)
        for name in ("prod-us", "prod-eu", "staging")
    )
    return replace(config(clusters=clusters), shard_index=index, shard_count=count)


def test_four_shards_cover_every_target_exactly_once():
    everything = Counter(target.key for target in targets_of(sharded(0, 1)))
    pieces = Counter(
        key for index in range(4) for key in (t.key for t in targets_of(sharded(index, 4)))
    )
    assert len(everything) == 3 * 50 * 2
    assert pieces == everything


def test_shards_get_a_fair_share_of_the_targets():
    sizes = [len(targets_of(sharded(index, 4))) for index in range(4)]
    assert min(sizes) >= 0.15 * sum(sizes), sizes


def test_a_target_stays_in_its_shard_across_runs():
    first = [t.key for t in targets_of(sharded(2, 4))]
    again = [t.key for t in targets_of(sharded(2, 4))]
    assert first == again
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from exporter.polling.targets import shard_of; print(shard_of('prod-us', 'db07', 'refresh', 4))",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        timeout=30,
    )
    assert int(probe.stdout) == next(
        i
        for i in range(4)
        if ("prod-us", "db07", "refresh") in {t.key for t in targets_of(sharded(i, 4))}
    )


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        pytest.param("4/4", "shard index must be 0..COUNT-1", id="index-too-big"),
        pytest.param("1-4", "expected INDEX/COUNT", id="no-slash"),
        pytest.param("0/0", "shard index must be 0..COUNT-1", id="zero-count"),
    ],
)
def test_a_bad_shard_in_the_config_is_refused_with_its_line(shard, message):
    text = f'shard: "{shard}"\nclusters: [{{name: a, endpoint: "http://x"}}]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml", {})
    assert f"config.yaml:1: shard: {message}" in str(caught.value)


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        pytest.param("5/4", "--shard: shard index must be 0..COUNT-1, got '5/4'", id="too-big"),
        pytest.param(
            "", "--shard: expected INDEX/COUNT such as 0/4 (0-based), got nothing", id="empty"
        ),
        pytest.param(
            " ", "--shard: expected INDEX/COUNT such as 0/4 (0-based), got nothing", id="blank"
        ),
    ],
)
def test_a_bad_shard_flag_is_a_usage_error_in_one_line(tmp_path, simulator, shard, message):
    """An empty --shard (an unset variable in a manifest) used to run unsharded."""
    _sim, url = simulator
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "serve",
            "--config",
            str(write_config(tmp_path, url)),
            "--shard",
            shard,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"MILVUS_TOKEN": TOKEN_A, "PATH": ""},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == f"milvus-jobs-exporter: {message}\n"


@pytest.mark.slow
def test_four_replicas_on_one_token_stay_under_its_limit_together(simulator, start_exporter):
    sim, url = simulator
    names = tuple(f"db{index:02d}" for index in range(40))
    for name in names:
        sim.add_database(name, collections=1)
    replicas = [
        start_exporter(
            cluster(url, databases=names),
            poll_interval=60.0,
            import_details=False,
            shard_index=index,
            shard_count=4,
        )
        for index in range(4)
    ]
    polled = Counter()
    for replica in replicas:
        parsed = replica.scrape()
        assert (
            value(
                parsed,
                "milvus_jobs_exporter_shard_info",
                index=str(replica.daemon.config.shard_index),
                count="4",
            )
            == 1
        )
        assert value(parsed, "milvus_jobs_exporter_shards") == 4
        for labels in series(parsed, "milvus_jobs_exporter_target_up"):
            polled[(labels["database"], labels["kind"])] += 1
            assert value(parsed, "milvus_jobs_exporter_target_up", **labels) == 1
    assert set(polled) == {(name, kind) for name in names for kind in ("refresh", "import")}
    assert set(polled.values()) == {1}
    arrivals: dict[str, list[float]] = {}
    for record in sim.request_log():
        if record.path.endswith("/list"):
            arrivals.setdefault(record.path, []).append(record.arrival)
            assert record.status != 429 and record.code not in (8, 1807)
    for times in arrivals.values():
        times.sort()
        busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
        assert busiest <= 20


def test_a_reload_that_changes_the_shard_count_resizes_the_rate_limit():
    from exporter.daemon import Daemon

    before = config(source="config.yaml", max_retries=0)
    daemon = Daemon(
        before, config_loader=lambda path: replace(before, shard_index=1, shard_count=4)
    )
    try:
        assert daemon.poller.limiter.capacity == 20
        assert daemon.request_reload().ok
        daemon.run_cycle()  # applies the reloaded config before polling
        assert daemon.poller.limiter.capacity == 5
    finally:
        daemon.stop(timeout=5)
