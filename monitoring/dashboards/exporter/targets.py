"""The rows of the exporter dashboard about what the exporters see: targets up or down and why,
database discovery, targets out of sight. Merged by the labels that identify a target, so an HA
pair shows what one exporter shows.
"""

from __future__ import annotations

from ... import expressions
from ...expressions import TARGET_KEY, selector
from ...settings import Settings
from ..layout import CLUSTER, SCRAPE, Grid
from ..panels import (
    UP_DOWN,
    bargauge,
    or_unknown,
    override,
    stat,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
    unknown_mapping,
    value_mapping,
    zero_while_reported,
)
from .common import (
    BARS,
    BUILD_INFO,
    EXPORTER,
    LANES,
    LINES,
    MERGED,
    PER_EXPORTER,
    TABLE_ROWS,
    TARGET,
    TARGET_COLUMNS,
    TARGET_LEGEND,
    rate_limited_per_exporter,
    since_last_success,
)


def targets_row(grid: Grid, settings: Settings) -> None:
    alerts = settings.alerts
    up = selector("milvus_jobs_exporter_target_up", *TARGET)
    grid.row("Targets")
    grid.add(
        stat(
            "Targets up",
            f"Polled (cluster, database, job kind) targets every exporter polled successfully "
            f"at its last attempt. No data: no exporter reports. {MERGED}",
            [
                target(
                    zero_while_reported(f"count(min by ({TARGET_KEY}) ({up}) == 1)", BUILD_INFO),
                    "up",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green"),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Targets down",
            "Targets some exporter could not poll at its last attempt (MilvusJobsExporterTargetDown "
            f"fires after {alerts.target_down_for.words}); the table below has the reasons. "
            f"{MERGED}",
            [
                target(
                    zero_while_reported(f"count({expressions.targets_down(TARGET)})", BUILD_INFO),
                    "down",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "red")),
        ),
        4,
        4,
    )
    untracked = selector("milvus_jobs_exporter_untracked_jobs", *SCRAPE)
    grid.add(
        stat(
            "Untracked jobs",
            "The most jobs any exporter leaves without per-job series because max_tracked_jobs "
            "was reached (they still count in the per-state totals); the Exporter instances "
            "table has each exporter's. Above 0: raise max_tracked_jobs.",
            [target(f"max({untracked})", "untracked", instant=True)],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        4,
        4,
    )
    unknown = selector("milvus_jobs_exporter_unknown_state_jobs", *TARGET)
    grid.add(
        stat(
            "Jobs in unknown states",
            "Listed jobs whose state the exporter does not know (kept with the state as sent). "
            f"Above 0: the Milvus API has a new state worth a look. {MERGED}",
            [
                target(
                    zero_while_reported(f"sum(max by ({TARGET_KEY}) ({unknown}))", BUILD_INFO),
                    "unknown",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        4,
        4,
    )
    cycle = selector("milvus_jobs_exporter_poll_cycle_duration_seconds", *SCRAPE)
    interval = selector("milvus_jobs_exporter_poll_interval_seconds", *SCRAPE)
    grid.add(
        stat(
            "Last poll cycle, share of poll_interval",
            "Each exporter's last poll cycle as a share of its poll_interval: yellow from half, "
            "red from all of it (targets are then polled less often than configured). "
            f"{PER_EXPORTER}",
            [
                target(
                    f"max by (instance) (\n  max by ({EXPORTER}) ({cycle})\n"
                    f"  / max by ({EXPORTER}) ({interval})\n)",
                    "{{instance}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            steps=thresholds("green", (0.5, "yellow"), (1, "red")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Rate-limited requests in range",
            "Requests the Milvus API refused with a rate-limit answer within the time range, "
            "per exporter. The exporter keeps under the documented limit, so any is worth a "
            "look (another client sharing the token?).",
            [
                target(
                    rate_limited_per_exporter("increase", "$__range"),
                    "{{instance}}",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
            decimals=0,
        ),
        4,
        4,
    )
    down = expressions.targets_down(TARGET)
    since = since_last_success()
    longest_down = (
        f"topk({TABLE_ROWS},\n"
        f"{expressions.indent(or_unknown(f'{since} and on ({TARGET_KEY}) {down}', down, TARGET_KEY))}"
        "\n)"
    )
    error = selector("milvus_jobs_exporter_target_error_info", *TARGET)
    grid.add(
        table(
            "Targets down, longest first",
            "Every target some exporter could not poll at its last attempt (at most "
            f"{TABLE_ROWS}), with the reason of its last failure (timeout, connect, tls, "
            "http_<status>, auth, rate_limited, bad_json, bad_response, too_large, api_<code>, "
            "internal, deadline) and the time since its last successful poll ('unknown': "
            f"none since the exporter started). Empty while every target is up. {MERGED}",
            [
                target(
                    f"max by ({TARGET_KEY}, reason) ({error})\nand on ({TARGET_KEY}) {longest_down}",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(longest_down, ref_id="B", instant=True, table=True),
            ],
            columns={**TARGET_COLUMNS, "reason": "Reason", "Value #B": "Since last success"},
            unit="s",
            overrides=[override("Since last success", mappings=unknown_mapping())],
            sort_by=("Since last success", True),
        ),
        14,
        8,
    )
    grid.add(
        bargauge(
            "Longest since a successful poll",
            f"The {BARS} targets polled successfully longest ago, oldest first: a target that "
            "polls well stays near poll_interval; red from "
            f"{alerts.target_down_for.words} (MilvusJobsExporterTargetDown's for:). {MERGED}",
            [target(f"sort_desc(topk({BARS}, {since}))", TARGET_LEGEND, instant=True)],
            unit="s",
            steps=thresholds("green", (alerts.target_down_for.seconds, "red")),
        ),
        10,
        8,
    )
    least_available = (
        f"bottomk({LANES}, min by ({TARGET_KEY}) (avg_over_time({up}[$__range] @ end())) < 1)"
    )
    grid.add(
        state_timeline(
            "Targets that were down",
            f"UP or DOWN over time of the {LANES} targets that were down the longest share of "
            "the time range (targets always up are left out: empty when none was down). "
            f"{MERGED}",
            [
                target(
                    f"min by ({TARGET_KEY}) ({up})\nand on ({TARGET_KEY}) {least_available}",
                    TARGET_LEGEND,
                )
            ],
            mappings=UP_DOWN,
        ),
        24,
        6,
    )
    errors = selector("milvus_jobs_exporter_poll_errors_total", *TARGET)
    most_errors = (
        f"topk({LINES}, max by ({TARGET_KEY}, reason) (increase({errors}[$__range] @ end())) > 0)"
    )
    grid.add(
        timeseries(
            "Poll errors by reason",
            f"Failed polls per second, by bounded reason and target, for the {LINES} (target, "
            "reason) pairs with the most failures in the time range; a flat (none) line at 0 "
            f"while no poll failed. {MERGED}",
            [
                target(
                    zero_while_reported(
                        f"max by ({TARGET_KEY}, reason) (rate({errors}[$__rate_interval]))\n"
                        f"and on ({TARGET_KEY}, reason) {most_errors}",
                        BUILD_INFO,
                        "reason",
                    ),
                    "{{reason}} " + TARGET_LEGEND,
                )
            ],
            unit="ops",
        ),
        12,
        8,
    )
    most_unknown = (
        f"topk({LINES}, max by ({TARGET_KEY}) (max_over_time({unknown}[$__range] @ end())) > 0)"
    )
    grid.add(
        timeseries(
            "Untracked and unknown-state jobs",
            "Jobs each exporter leaves without per-job series by max_tracked_jobs, and listed "
            f"jobs in a state the exporter does not know for the {LINES} targets with most. "
            "Both should stay at 0.",
            [
                target(f"max by ({EXPORTER}) ({untracked})", "untracked: {{instance}}", "A"),
                target(
                    f"max by ({TARGET_KEY}) ({unknown})\nand on ({TARGET_KEY}) {most_unknown}",
                    "unknown state: " + TARGET_LEGEND,
                    "B",
                ),
            ],
            unit="short",
        ),
        12,
        8,
    )


def discovery_row(grid: Grid, settings: Settings) -> None:
    """Clusters whose databases come from patterns: did the last listing work, what it found."""
    alerts = settings.alerts
    grid.row("Database discovery")
    up = selector("milvus_jobs_exporter_discovery_up", *SCRAPE, CLUSTER)
    found = selector("milvus_jobs_exporter_discovered_databases", *SCRAPE, CLUSTER)
    last = selector(
        "milvus_jobs_exporter_last_discovery_success_timestamp_seconds", *SCRAPE, CLUSTER
    )
    errors = selector("milvus_jobs_exporter_discovery_errors_total", *SCRAPE, CLUSTER)
    since = or_unknown(f"max by (milvus_cluster) (time() - {last})", up, "milvus_cluster")
    grid.add(
        table(
            "Database discovery",
            "Clusters whose config names database patterns: whether every exporter's last "
            "listing of their databases worked (FAILING keeps polling the databases found "
            "last; MilvusJobsExporterDatabaseDiscoveryFailing fires after "
            f"{alerts.discovery_failing_for.words}), the fewest databases an exporter found, the "
            "time since the last successful listing ('unknown': none since the exporter "
            "started), and the failed listings within the time range. Empty when no cluster "
            f"uses patterns. {MERGED}",
            [
                target(f"min by (milvus_cluster) ({up})", ref_id="A", instant=True, table=True),
                target(f"min by (milvus_cluster) ({found})", ref_id="B", instant=True, table=True),
                target(since, ref_id="C", instant=True, table=True),
                target(
                    f"sum by (milvus_cluster) (max by (milvus_cluster, reason) "
                    f"(increase({errors}[$__range] @ end())))\n"
                    f"or on (milvus_cluster) 0 * min by (milvus_cluster) ({up})",
                    ref_id="D",
                    instant=True,
                    table=True,
                ),
            ],
            columns={
                "milvus_cluster": "Cluster",
                "Value #A": "Discovery",
                "Value #B": "Databases",
                "Value #C": "Since last success",
                "Value #D": "Failed listings in range",
            },
            unit="short",
            overrides=[
                override(
                    "Discovery",
                    unit="none",
                    mappings=value_mapping({"1": ("OK", "green"), "0": ("FAILING", "red")}),
                    custom__cellOptions={"type": "color-background"},
                ),
                override("Since last success", unit="s", mappings=unknown_mapping()),
            ],
            sort_by=("Discovery", False),
        ),
        24,
        6,
    )


def sight_row(grid: Grid, settings: Settings) -> None:
    """What no exporter watches any more: targets lost from sight, and targets removed on
    purpose (by config, or because their database is gone upstream)."""
    horizon = settings.alerts.sight_horizon
    grid.row("Sight")
    lost = expressions.lost_targets(TARGET, horizon.text)
    polled = selector("milvus_jobs_exporter_last_success_timestamp_seconds", *TARGET)
    since = (
        f"time() - max by ({TARGET_KEY}) (last_over_time({polled}[{horizon.text}]))\n"
        f"and on ({TARGET_KEY})\n({lost})"
    )
    grid.add(
        table(
            "Targets no exporter reports",
            "Targets (cluster, database, kind) that an exporter of the scrape job reported within "
            f"the last {horizon.words} and that no exporter reports now: an exporter deleted, "
            "crashed or scaled away, a shard missing, a re-shard half done. Their failures page "
            "nobody; their open job alerts stay open (MilvusJobsExporterTargetLost fires after "
            f"{settings.alerts.target_lost_for.words}). A target removed from the config on "
            "purpose is not listed. 'unknown': never polled successfully within the horizon.",
            [
                target(
                    f"topk({TABLE_ROWS}, {or_unknown(since, lost, TARGET_KEY)})",
                    instant=True,
                    table=True,
                )
            ],
            columns={**TARGET_COLUMNS, "Value": "Since last poll"},
            unit="s",
            overrides=[override("Since last poll", unit="s", mappings=unknown_mapping())],
            sort_by=("Since last poll", True),
        ),
        12,
        6,
    )
    removed = selector("milvus_jobs_exporter_target_removed_timestamp_seconds", *TARGET)
    grid.add(
        table(
            "Targets removed on purpose",
            "Targets an exporter stopped watching in the last hour because its config no longer "
            "names them (cause config: a reload or a restart without them) or because their "
            "database is gone from the cluster (cause dropped). Their job alerts resolved on "
            "purpose; nothing about them is watched any more. "
            f"{MERGED}",
            [
                target(
                    f"topk({TABLE_ROWS}, max by ({TARGET_KEY}, cause) ({removed}) * 1000)",
                    instant=True,
                    table=True,
                )
            ],
            columns={**TARGET_COLUMNS, "cause": "Cause", "Value": "Removed at"},
            unit="dateTimeAsIso",
            sort_by=("Removed at", True),
        ),
        12,
        6,
    )
