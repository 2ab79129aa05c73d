"""The "Milvus jobs exporter" dashboard: is the exporter polling, how the Milvus job API
answers, what the exporter costs.

Two kinds of panel, told apart by whether their series carry ``instance``:

- **what the exporters see** (targets up or down, untracked and unknown-state jobs): merged by
  the labels that identify the target (``min by (milvus_cluster, database, kind)``), so an HA
  pair of exporters shows what one shows;
- **what each exporter does** (requests it sends, their latency, its cycles, memory, CPU): one
  line per exporter instance, because two exporters really do twice the work.

Series any scrape target exports (``up``, ``process_*``) are joined with
``milvus_jobs_exporter_build_info``, so a Job variable at All (``.+``) still shows exporters
only. Lists of targets are bounded (``topk``) and show the unhealthy ones first.
"""

from __future__ import annotations

from ...expressions import selector
from ...settings import Settings
from ..layout import (
    EXPORTER_UID,
    OVERVIEW_UID,
    SCRAPE,
    Grid,
    dashboard,
    dashboard_link,
    query_variable,
    scrape_variables,
)
from ..panels import Json
from .instances import api_row, describes_row, process_row
from .targets import discovery_row, sight_row, targets_row


def exporter_dashboard(settings: Settings) -> Json:
    """Milvus jobs exporter: is the exporter polling, how the API answers, what it costs."""
    grid = Grid()
    targets_row(grid, settings)
    api_row(grid)
    process_row(grid, settings)
    discovery_row(grid, settings)
    sight_row(grid, settings)
    describes_row(grid)  # last: the ids of the panels above stay those of old links
    target_up = selector("milvus_jobs_exporter_target_up", *SCRAPE)
    variables = [
        *scrape_variables(settings.scrape_job_selector),
        query_variable(
            "milvus_cluster",
            "Cluster",
            f"label_values({target_up}, milvus_cluster)",
            all_value=".*",
        ),
    ]
    return dashboard(
        EXPORTER_UID,
        "Milvus jobs exporter",
        "Health of milvus-jobs-exporter itself: targets up or down with reasons, requests to "
        "the Milvus job API by outcome and latency, rate limiting, poll cycles, process cost, "
        "config reloads and shards.",
        grid,
        variables,
        dashboard_link("Milvus jobs overview", OVERVIEW_UID),
    )
