"""The rows of the exporter dashboard about what each exporter does: requests to the Milvus job
API, poll cycles, memory and CPU, one line per exporter instance.
"""

from __future__ import annotations

from ...expressions import selector
from ...settings import Settings
from ..layout import SCRAPE, Grid
from ..panels import UP_DOWN, Json, override, table, target, timeseries
from .common import (
    BUILD_INFO,
    EXPORTER,
    LINES,
    OK_REFUSED,
    PER_EXPORTER,
    TARGET,
    exporters_only,
    rate_limited_per_exporter,
)


def api_row(grid: Grid) -> None:
    requests = selector("milvus_jobs_exporter_api_requests_total", *TARGET)
    grid.row("Milvus job API")
    grid.add(
        timeseries(
            "API requests by outcome",
            "HTTP requests to the Milvus job API per second, by exporter, API path and outcome "
            f"(success or a bounded failure reason). {PER_EXPORTER}",
            [
                target(
                    f"sum by (instance, api, outcome) (rate({requests}[$__rate_interval]))",
                    "{{instance}} {{api}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        8,
        8,
    )
    latency = selector("milvus_jobs_exporter_api_request_duration_seconds_bucket", *TARGET)
    grid.add(
        timeseries(
            "API request latency",
            "p50, p95 and p99 of the time taken by requests to the Milvus job API, per exporter "
            "and API path (milvus_jobs_exporter_api_request_duration_seconds). "
            f"{PER_EXPORTER}",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (instance, le, api) "
                    f"(rate({latency}[$__rate_interval])))",
                    f"p{round(quantile * 100)} {{{{api}}}} {{{{instance}}}}",
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
            "Requests per second each exporter had refused by the Milvus API with a rate-limit "
            "answer (HTTP 429, codes 8/1807); 0 while there is none. The exporter pauses the "
            "token and path for Retry-After when it happens. MilvusJobsExporterRateLimited "
            f"fires when it lasts. {PER_EXPORTER}",
            [target(rate_limited_per_exporter("rate", "$__rate_interval"), "{{instance}}")],
            unit="reqps",
        ),
        8,
        8,
    )


def process_row(grid: Grid, settings: Settings) -> None:
    grid.row("Exporter process")
    grid.add(
        timeseries(
            "Poll cycle duration",
            "Duration of the last full poll cycle of each exporter, and its poll_interval: a "
            "cycle longer than poll_interval means targets are polled less often than "
            f"configured. {PER_EXPORTER}",
            [
                target(
                    f"max by ({EXPORTER}) "
                    f"({selector('milvus_jobs_exporter_poll_cycle_duration_seconds', *SCRAPE)})",
                    "cycle: {{instance}}",
                    "A",
                ),
                target(
                    f"max by ({EXPORTER}) "
                    f"({selector('milvus_jobs_exporter_poll_interval_seconds', *SCRAPE)})",
                    "poll_interval: {{instance}}",
                    "B",
                ),
            ],
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Memory",
            f"Resident memory of each exporter process. {PER_EXPORTER}",
            [
                target(
                    exporters_only(selector("process_resident_memory_bytes", *SCRAPE)),
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
            f"CPU used by each exporter process (100 % is one core). {PER_EXPORTER}",
            [
                target(
                    exporters_only(
                        f"rate({selector('process_cpu_seconds_total', *SCRAPE)}[$__rate_interval])"
                    ),
                    "{{instance}}",
                )
            ],
            unit="percentunit",
        ),
        8,
        8,
    )

    def per_exporter(metric: str, ref_id: str, *, function: str = "", scale: str = "") -> Json:
        series = selector(metric, *SCRAPE)
        if function:
            series = f"{function}({series}[$__range])"
        return target(
            f"max by ({EXPORTER}) ({series}){scale} and on ({EXPORTER}) {BUILD_INFO}",
            ref_id=ref_id,
            instant=True,
            table=True,
        )

    scraped = selector("up", settings.scrape_job_selector, *SCRAPE)
    grid.add(
        table(
            "Exporter instances",
            "Each exporter instance: version, shard (index of count), whether Prometheus "
            "scrapes it (every target of the scrape job selector of prometheus/thresholds.yml, "
            "as MilvusJobsExporterDown watches them: a down exporter shows only this), when the "
            "process started, the poll cycles it completed within the time "
            "range, whether its last config reload was accepted, and the jobs it leaves "
            f"untracked. {PER_EXPORTER}",
            [
                target(
                    f"max by ({EXPORTER}, version) ({BUILD_INFO})",
                    ref_id="A",
                    instant=True,
                    table=True,
                ),
                target(
                    f"max by ({EXPORTER}, index, count) "
                    f"({selector('milvus_jobs_exporter_shard_info', *SCRAPE)})",
                    ref_id="B",
                    instant=True,
                    table=True,
                ),
                target(f"max by ({EXPORTER}) ({scraped})", ref_id="C", instant=True, table=True),
                per_exporter("process_start_time_seconds", "D", scale=" * 1000"),
                per_exporter("milvus_jobs_exporter_poll_cycles_total", "E", function="increase"),
                per_exporter("milvus_jobs_exporter_config_last_reload_successful", "F"),
                per_exporter("milvus_jobs_exporter_untracked_jobs", "G"),
            ],
            columns={
                "job": "Job",
                "instance": "Instance",
                "version": "Version",
                "index": "Shard",
                "count": "Of",
                "Value #C": "Scrape",
                "Value #D": "Started",
                "Value #E": "Poll cycles in range",
                "Value #F": "Config reload",
                "Value #G": "Untracked jobs",
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
                override(
                    "Config reload",
                    unit="none",
                    mappings=OK_REFUSED,
                    custom__cellOptions={"type": "color-background"},
                ),
            ],
        ),
        24,
        6,
    )


BACKLOG_KEY = "instance, milvus_cluster, kind"


def _largest_over_range(series: str) -> str:
    """``series`` per exporter, cluster and kind, for the ``LINES`` largest over the range."""
    return (
        f"max by ({BACKLOG_KEY}) ({series})\nand on ({BACKLOG_KEY}) topk({LINES}, "
        f"max by ({BACKLOG_KEY}) (max_over_time({series}[$__range] @ end())))"
    )


def describes_row(grid: Grid) -> None:
    """The follow-ups (``import/describe``) the rate limit left for later cycles."""
    grid.row("Describe backlog")
    backlog = selector("milvus_jobs_exporter_describe_backlog", *TARGET)
    grid.add(
        timeseries(
            "Describe backlog",
            "Jobs due an import/describe (every running import, each finished one once) that "
            "the exporter's last poll cycle left for later cycles: what the rate limit left "
            "after the lists did not cover them. They go first, oldest first, next cycle; "
            "their imported rows, sizes and times are that much older (the panel beside). 0 "
            "while every due job is described each cycle; a steady backlog is a fleet larger "
            "than one token's limit allows at this poll_interval (docs/operations.md, describe "
            f"lag). The {LINES} largest. {PER_EXPORTER}",
            [
                target(
                    _largest_over_range(backlog),
                    "{{instance}} {{milvus_cluster}} {{kind}}",
                )
            ],
            unit="short",
        ),
        12,
        8,
    )
    oldest = selector("milvus_jobs_exporter_describe_backlog_oldest_age_seconds", *TARGET)
    grid.add(
        timeseries(
            "Oldest undescribed data",
            "How long the longest waiting job of the describe backlog has waited since its last "
            "describe (or since first listed): how old the oldest imported-rows data on "
            f"/metrics is. 0 with no backlog. The {LINES} oldest. {PER_EXPORTER}",
            [
                target(
                    _largest_over_range(oldest),
                    "{{instance}} {{milvus_cluster}} {{kind}}",
                )
            ],
            unit="s",
        ),
        12,
        8,
    )
