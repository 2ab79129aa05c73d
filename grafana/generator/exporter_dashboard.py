"""The "Milvus jobs exporter" dashboard: is the exporter polling, how the Milvus job API
answers, what the exporter costs.

Its own series (poll cycle, process) carry no ``milvus_cluster`` label, so besides the cluster
every query is filtered by scrape job and instance.
"""

from __future__ import annotations

from .layout import Grid, dashboard, dashboard_link, query_variable
from .overview import CLUSTER, EXPORTER_UID, OVERVIEW_UID
from .panels import (
    UP_DOWN,
    Json,
    bargauge,
    override,
    selector,
    stat,
    state_timeline,
    table,
    target,
    thresholds,
    timeseries,
    zero_when_empty,
)

SCRAPE_JOB = 'job=~"$job"'
SCRAPE_INSTANCE = 'instance=~"$instance"'
TARGET_KEY = "milvus_cluster, database, kind"
TARGET_LEGEND = "{{milvus_cluster}} / {{database}} / {{kind}}"
TARGET_COLUMNS = {"milvus_cluster": "Cluster", "database": "Database", "kind": "Kind"}


def exporter_dashboard() -> Json:
    """Milvus jobs exporter: is the exporter polling, how the API answers, what it costs."""
    scrape = (SCRAPE_JOB, SCRAPE_INSTANCE)
    target_series = (CLUSTER, *scrape)
    requests = "milvus_jobs_exporter_api_requests_total"
    rate_limited = selector(requests, *target_series, 'outcome="rate_limited"')
    grid = Grid()

    grid.row("Targets")
    grid.add(
        stat(
            "Targets up",
            "Polled (cluster, database, job kind) targets whose last poll succeeded.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_target_up', *target_series)})"
                    " or vector(0)",
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
            "Targets whose last poll failed; the Targets table has the reason.",
            [
                target(
                    f"count({selector('milvus_jobs_exporter_target_up', *target_series)} == 0)"
                    " or vector(0)",
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
    grid.add(
        stat(
            "Untracked jobs",
            "Jobs left without per-job series because max_tracked_jobs was reached (they "
            "still count in the per-state totals). Above 0: raise max_tracked_jobs.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_untracked_jobs', *scrape)}) or vector(0)",
                    "untracked",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds("green", (1, "orange")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Jobs in unknown states",
            "Listed jobs whose state the exporter does not know (kept with the state as sent). "
            "Above 0: the Milvus API has a new state worth a look.",
            [
                target(
                    "sum("
                    f"{selector('milvus_jobs_exporter_unknown_state_jobs', *target_series)}"
                    ") or vector(0)",
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
    grid.add(
        stat(
            "Last poll cycle",
            "How long the last full poll cycle took. It should stay well under poll_interval "
            "(30 s by default): yellow from 15 s, red from 30 s.",
            [
                target(
                    f"max({selector('milvus_jobs_exporter_poll_cycle_duration_seconds', *scrape)})",
                    "cycle",
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds("green", (15, "yellow"), (30, "red")),
        ),
        4,
        4,
    )
    grid.add(
        stat(
            "Rate-limited requests in range",
            "Requests the Milvus API refused with a rate-limit answer within the time range. "
            "The exporter keeps under the documented limit, so any is worth a look (another "
            "client sharing the token?).",
            [
                target(
                    f"sum(increase({rate_limited}[$__range])) or vector(0)",
                    "rate limited",
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
    grid.add(
        table(
            "Targets",
            "Every polled target: UP or DOWN with the reason of its last failure (timeout, "
            "connect, tls, http_<status>, auth, rate_limited, bad_json, bad_response, "
            "too_large, api_<code>, internal), and the time since its last successful poll.",
            [
                target(
                    f"max by ({TARGET_KEY}, reason) ("
                    f"{selector('milvus_jobs_exporter_target_error_info', *target_series)} * 0)"
                    f" or on ({TARGET_KEY}) max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_target_up', *target_series)})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"time() - max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_last_success_timestamp_seconds', *target_series)})",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
            ],
            columns={
                **TARGET_COLUMNS,
                "Value #A": "Status",
                "reason": "Reason",
                "Value #B": "Since last success",
            },
            unit="s",
            overrides=[
                override(
                    "Status",
                    unit="none",
                    mappings=UP_DOWN,
                    custom__cellOptions={"type": "color-background"},
                ),
            ],
            sort_by=("Status", False),
        ),
        14,
        8,
    )
    grid.add(
        bargauge(
            "Time since last successful poll",
            "Per target, time since its last successful poll: green under 90 s (3 default "
            "poll intervals, after which a failed target's job series disappear), yellow "
            "under 5 minutes, red above.",
            [
                target(
                    f"time() - max by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_last_success_timestamp_seconds', *target_series)})",
                    TARGET_LEGEND,
                    instant=True,
                )
            ],
            unit="s",
            steps=thresholds("green", (90, "yellow"), (300, "red")),
        ),
        10,
        8,
    )
    grid.add(
        state_timeline(
            "Target status over time",
            "UP or DOWN of each target at each scrape.",
            [
                target(
                    f"max by ({TARGET_KEY}) "
                    f"({selector('milvus_jobs_exporter_target_up', *target_series)})",
                    TARGET_LEGEND,
                )
            ],
            mappings=UP_DOWN,
        ),
        24,
        6,
    )
    grid.add(
        timeseries(
            "Poll errors by reason",
            "Failed polls per interval, by bounded reason and target; a flat (none) line at 0 "
            "when there is no failure.",
            [
                target(
                    zero_when_empty(
                        f"sum by ({TARGET_KEY}, reason) (increase("
                        f"{selector('milvus_jobs_exporter_poll_errors_total', *target_series)}"
                        "[$__rate_interval]))",
                        "reason",
                    ),
                    "{{reason}} " + TARGET_LEGEND,
                )
            ],
            unit="short",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Untracked and unknown-state jobs",
            "Jobs left without per-job series by max_tracked_jobs, and listed jobs in a state "
            "the exporter does not know, per target. Both should stay at 0.",
            [
                target(
                    f"sum({selector('milvus_jobs_exporter_untracked_jobs', *scrape)})",
                    "untracked (max_tracked_jobs)",
                    ref_id="A",
                ),
                target(
                    f"sum by ({TARGET_KEY}) ("
                    f"{selector('milvus_jobs_exporter_unknown_state_jobs', *target_series)})",
                    "unknown state: " + TARGET_LEGEND,
                    ref_id="B",
                ),
            ],
            unit="short",
        ),
        12,
        8,
    )

    grid.row("Milvus job API")
    grid.add(
        timeseries(
            "API requests by outcome",
            "HTTP requests to the Milvus job API per second, by cluster, API path and outcome "
            "(success or a bounded failure reason).",
            [
                target(
                    "sum by (milvus_cluster, api, outcome) (rate("
                    f"{selector(requests, *target_series)}[$__rate_interval]))",
                    "{{milvus_cluster}} {{api}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        8,
        8,
    )
    latency = selector("milvus_jobs_exporter_api_request_duration_seconds_bucket", *target_series)
    grid.add(
        timeseries(
            "API request latency",
            "p50, p95 and p99 of the time taken by requests to the Milvus job API, per API "
            "path, from the milvus_jobs_exporter_api_request_duration_seconds histogram.",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (le, api) "
                    f"(rate({latency}[$__rate_interval])))",
                    f"p{round(quantile * 100)} {{{{api}}}}",
                    ref_id=ref_id,
                )
                for ref_id, quantile in (("A", 0.5), ("B", 0.95), ("C", 0.99))
            ],
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Rate-limited requests",
            "Requests per second refused by the Milvus API with a rate-limit answer (HTTP 429, "
            "codes 8/1807), by cluster; a flat (none) line at 0 when there is none. The "
            "exporter pauses the token "
            "and path for Retry-After when it happens.",
            [
                target(
                    zero_when_empty(
                        f"sum by (milvus_cluster) (rate({rate_limited}[$__rate_interval]))",
                        "milvus_cluster",
                    ),
                    "{{milvus_cluster}}",
                )
            ],
            unit="reqps",
        ),
        8,
        8,
    )

    grid.row("Exporter process")
    grid.add(
        timeseries(
            "Poll cycle duration",
            "Duration of the last full poll cycle, per exporter instance. A cycle longer than "
            "poll_interval means targets are polled less often than configured.",
            [
                target(
                    "max by (job, instance) ("
                    f"{selector('milvus_jobs_exporter_poll_cycle_duration_seconds', *scrape)})",
                    "{{instance}}",
                )
            ],
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Memory",
            "Resident memory of the exporter process.",
            [
                target(
                    selector("process_resident_memory_bytes", *scrape),
                    "{{instance}}",
                )
            ],
            unit="bytes",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "CPU",
            "CPU used by the exporter process (100 % is one core).",
            [
                target(
                    f"rate({selector('process_cpu_seconds_total', *scrape)}[$__rate_interval])",
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        8,
        8,
    )
    grid.add(
        table(
            "Exporter instances",
            "Each exporter instance: version, whether Prometheus scrapes it (up), when the "
            "process started and how many poll cycles it completed.",
            [
                target(
                    "max by (job, instance, version) ("
                    f"{selector('milvus_jobs_exporter_build_info', *scrape)})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by (job, instance) ({selector('up', *scrape)})",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (job, instance) ("
                    f"{selector('process_start_time_seconds', *scrape)}) * 1000"
                    " and on (job, instance) "
                    f"{selector('milvus_jobs_exporter_build_info', *scrape)}",
                    ref_id="C",
                    instant=True,
                    table=True,
                ),
                target(
                    "max by (job, instance) ("
                    f"{selector('milvus_jobs_exporter_poll_cycles_total', *scrape)})",
                    ref_id="D",
                    instant=True,
                    table=True,
                ),
            ],
            columns={
                "job": "Job",
                "instance": "Instance",
                "version": "Version",
                "Value #B": "Scrape",
                "Value #C": "Started",
                "Value #D": "Poll cycles",
            },
            unit="short",
            overrides=[
                override(
                    "Scrape",
                    unit="none",
                    mappings=UP_DOWN,
                    custom__cellOptions={"type": "color-background"},
                ),
                override("Started", unit="dateTimeAsIso"),
            ],
        ),
        24,
        5,
    )

    variables = [
        query_variable(
            "job",
            "Scrape job",
            "label_values(milvus_jobs_exporter_build_info, job)",
            all_value=None,
        ),
        query_variable(
            "instance",
            "Instance",
            f"label_values({selector('milvus_jobs_exporter_build_info', SCRAPE_JOB)}, instance)",
            all_value=None,
        ),
        query_variable(
            "milvus_cluster",
            "Cluster",
            f"label_values({selector('milvus_jobs_exporter_target_up', *scrape)}, milvus_cluster)",
            all_value=".*",
        ),
    ]
    return dashboard(
        EXPORTER_UID,
        "Milvus jobs exporter",
        "Health of milvus-jobs-exporter itself: targets up or down with reasons, requests to "
        "the Milvus job API by outcome and latency, rate limiting, poll cycles, process cost.",
        grid,
        variables,
        dashboard_link("Milvus jobs overview", OVERVIEW_UID),
    )
