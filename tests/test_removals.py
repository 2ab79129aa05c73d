"""Removal by config or upstream, said out loud: a marker for an hour, and nothing else.

A target the config no longer names (a cluster, a database, a kind; a rename is a removal and
an addition) or whose database discovery no longer lists gets
``milvus_jobs_exporter_target_removed_timestamp_seconds`` for an hour, with its cause, and its
memory goes at once. A target that merely moved to another shard, failed or went late gets no
marker. Across a restart the state file remembers the watched targets and the live markers.
"""

from __future__ import annotations

from dataclasses import replace

from exporter.config.loader import ClusterConfig, Config
from exporter.memory.removals import REMOVED_TARGET_MARKER_SECONDS
from exporter.memory.state import load_state, save_state
from exporter.metrics.model import MetricsModel
from exporter.polling.snapshots import CycleResult, Snapshot
from exporter.polling.targets import targets_of
from exporter.polling.watchlist import Watchlist

from .helpers import T0, failed, ok, refresh_job, samples, series, value

PROD = ClusterConfig("prod", "http://127.0.0.1:1", "t", databases=("default", "sales"))
STAGING = ClusterConfig("staging", "http://127.0.0.1:2", "t", databases=("default",))
FAILURE = refresh_job(7, "RefreshFailed", start=T0 - 120, end=T0 - 60, reason="boom")
MARKER = "milvus_jobs_exporter_target_removed_timestamp_seconds"


def config(*clusters: ClusterConfig, **settings: object) -> Config:
    return Config(clusters=clusters, **settings)  # type: ignore[arg-type]


def cycle(
    settings: Config,
    *snapshots: Snapshot,
    listed: dict[str, tuple[str, ...]] | None = None,
) -> CycleResult:
    return CycleResult(
        targets=targets_of(settings, listed), snapshots=snapshots, requests=(),
        started_at=T0, seconds=0.1, watchlist=Watchlist(settings, listed or {}),
    )  # fmt: skip


def polled(settings: Config, at: float, listed: dict[str, tuple[str, ...]] | None = None) -> tuple:
    """A good poll of every target of ``settings``: a failed refresh in each refresh target."""
    return tuple(
        ok(target, at, (FAILURE,) if target.kind == "refresh" else ())
        for target in targets_of(settings, listed)
    )


def markers(parsed: dict) -> set[tuple[str, str, str, str, float]]:
    return {
        (s["milvus_cluster"], s["database"], s["kind"], s["cause"], parsed[(MARKER, frozenset(s.items()))])
        for s in series(parsed, MARKER)
    }  # fmt: skip


def failures(parsed: dict, cluster: str) -> list[dict[str, str]]:
    return [
        s for s in series(parsed, "milvus_refresh_last_failure_info")
        if s["milvus_cluster"] == cluster
    ]  # fmt: skip


def test_a_cluster_the_config_no_longer_names_is_marked_for_an_hour_and_forgotten_at_once():
    subject = MetricsModel(1000, 30.0)
    before = config(PROD, STAGING)
    subject.update(cycle(before, *polled(before, T0)), T0)
    after = config(STAGING)
    parsed = samples(subject.update(cycle(after, *polled(after, T0 + 30)), T0 + 30))
    assert markers(parsed) == {
        ("prod", database, kind, "config", T0 + 30)
        for database in ("default", "sales")
        for kind in ("refresh", "import")
    }
    assert failures(parsed, "prod") == []
    assert failures(parsed, "staging")
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="dropped") == 0
    assert [removal.key for removal in subject.removed] == [
        ("prod", "default", "import"), ("prod", "default", "refresh"),
        ("prod", "sales", "import"), ("prod", "sales", "refresh"),
    ]  # fmt: skip

    later = T0 + 30 + REMOVED_TARGET_MARKER_SECONDS - 1
    assert markers(samples(subject.update(cycle(after, *polled(after, later)), later)))
    gone = T0 + 30 + REMOVED_TARGET_MARKER_SECONDS
    assert not markers(samples(subject.update(cycle(after, *polled(after, gone)), gone)))


def test_a_renamed_cluster_is_a_removal_and_an_addition():
    subject = MetricsModel(1000, 30.0)
    before = config(PROD)
    subject.update(cycle(before, *polled(before, T0)), T0)
    after = config(replace(PROD, name="production"))
    parsed = samples(subject.update(cycle(after, *polled(after, T0 + 30)), T0 + 30))
    assert {marker[0] for marker in markers(parsed)} == {"prod"}
    assert failures(parsed, "production") and not failures(parsed, "prod")


def test_a_database_or_a_kind_the_config_drops_is_marked_too():
    subject = MetricsModel(1000, 30.0)
    before = config(PROD)
    subject.update(cycle(before, *polled(before, T0)), T0)
    after = config(replace(PROD, databases=("default",), jobs=("refresh",)))
    parsed = samples(subject.update(cycle(after, *polled(after, T0 + 30)), T0 + 30))
    assert {marker[:4] for marker in markers(parsed)} == {
        ("prod", "default", "import", "config"),
        ("prod", "sales", "refresh", "config"),
        ("prod", "sales", "import", "config"),
    }


def test_a_target_added_back_loses_its_marker_at_once():
    subject = MetricsModel(1000, 30.0)
    before = config(PROD)
    subject.update(cycle(before, *polled(before, T0)), T0)
    subject.update(cycle(config(STAGING)), T0 + 30)
    parsed = samples(subject.update(cycle(before, *polled(before, T0 + 60)), T0 + 60))
    assert {marker[0] for marker in markers(parsed)} == {"staging"}  # prod's are gone


def test_targets_that_fail_or_move_to_another_shard_get_no_marker():
    subject = MetricsModel(1000, 30.0)
    whole = config(PROD, STAGING)
    subject.update(cycle(whole, *polled(whole, T0)), T0)
    down = tuple(failed(target, T0 + 30) for target in targets_of(whole))
    assert not markers(samples(subject.update(cycle(whole, *down), T0 + 30)))
    half = config(PROD, STAGING, shard_index=0, shard_count=2)
    moved = set(targets_of(whole)) - set(targets_of(half))
    assert moved, "the test needs a target that moves to the other shard"
    parsed = samples(subject.update(cycle(half, *polled(half, T0 + 60)), T0 + 60))
    assert markers(parsed) == set()
    assert subject.removed == []


def test_a_database_discovery_no_longer_lists_is_marked_dropped_and_its_memory_counted():
    pattern = ClusterConfig("prod", "http://127.0.0.1:1", "t", databases=("*",), jobs=("refresh",))
    settings = config(pattern)
    listed = {"prod": ("default", "sales")}
    subject = MetricsModel(1000, 30.0)
    subject.update(cycle(settings, *polled(settings, T0, listed), listed=listed), T0)
    shrunk = {"prod": ("default",)}
    parsed = samples(
        subject.update(cycle(settings, *polled(settings, T0 + 30, shrunk), listed=shrunk), T0 + 30)
    )
    assert markers(parsed) == {("prod", "sales", "refresh", "dropped", T0 + 30)}
    assert value(parsed, "milvus_jobs_exporter_forgotten_collections_total", reason="dropped") == 1
    assert [s["database"] for s in failures(parsed, "prod")] == ["default"]


def restarted(tmp_path, first: MetricsModel, settings: Config, listed=None) -> MetricsModel:
    """A new model from ``first``'s state file, reconciled with the new config as the daemon
    does before its first poll."""
    path = tmp_path / "state.json"
    save_state(path, first.saved_state(), T0 + 40)
    saved = load_state(path)
    assert saved is not None
    second = MetricsModel(1000, 30.0)
    second.restore(saved)
    second.reconcile(targets_of(settings, listed), Watchlist(settings, listed or {}), T0 + 50)
    return second


def test_a_restart_without_a_cluster_marks_its_targets_removed_by_config(tmp_path):
    first = MetricsModel(1000, 30.0)
    before = config(PROD, STAGING)
    first.update(cycle(before, *polled(before, T0)), T0)
    second = restarted(tmp_path, first, config(STAGING))
    parsed = samples(second.families(T0 + 50))
    assert {marker[:4] for marker in markers(parsed)} == {
        ("prod", database, kind, "config")
        for database in ("default", "sales")
        for kind in ("refresh", "import")
    }
    assert failures(parsed, "prod") == [] and failures(parsed, "staging")


def test_a_restart_on_another_shard_marks_nothing(tmp_path):
    first = MetricsModel(1000, 30.0)
    whole = config(PROD, STAGING)
    first.update(cycle(whole, *polled(whole, T0)), T0)
    second = restarted(tmp_path, first, config(PROD, STAGING, shard_index=1, shard_count=2))
    assert markers(samples(second.families(T0 + 50))) == set()
    assert second.removed == []


def test_a_restart_keeps_a_discovered_database_until_discovery_has_spoken(tmp_path):
    pattern = ClusterConfig("prod", "http://127.0.0.1:1", "t", databases=("*",), jobs=("refresh",))
    settings = config(pattern)
    listed = {"prod": ("default", "sales")}
    first = MetricsModel(1000, 30.0)
    first.update(cycle(settings, *polled(settings, T0, listed), listed=listed), T0)
    second = restarted(tmp_path, first, settings)  # no discovery yet
    parsed = samples(second.update(cycle(settings), T0 + 60))
    assert markers(parsed) == set()
    assert {s["database"] for s in failures(parsed, "prod")} == {"default", "sales"}
    shrunk = {"prod": ("default",)}
    parsed = samples(second.update(cycle(settings, listed=shrunk), T0 + 90))
    assert {marker[:4] for marker in markers(parsed)} == {("prod", "sales", "refresh", "dropped")}
    assert {s["database"] for s in failures(parsed, "prod")} == {"default"}


def test_live_markers_survive_a_restart_and_expired_ones_do_not(tmp_path):
    first = MetricsModel(1000, 30.0)
    before = config(PROD, STAGING)
    first.update(cycle(before, *polled(before, T0)), T0)
    first.update(cycle(config(STAGING)), T0 + 30)
    second = restarted(tmp_path, first, config(STAGING))
    assert len(markers(samples(second.families(T0 + 50)))) == 4
    assert second.removed == []  # already said by the first run: not logged twice
    expired = T0 + 30 + REMOVED_TARGET_MARKER_SECONDS
    assert markers(samples(second.families(expired))) == set()


def test_a_restart_with_the_same_config_removes_nothing_and_forgets_nothing(tmp_path):
    first = MetricsModel(1000, 30.0)
    settings = config(PROD, STAGING)
    first.update(cycle(settings, *polled(settings, T0)), T0)
    second = restarted(tmp_path, first, settings)
    parsed = samples(second.update(cycle(settings), T0 + 60))
    assert markers(parsed) == set() and second.removed == []
    assert {s["database"] for s in failures(parsed, "prod")} == {"default", "sales"}
