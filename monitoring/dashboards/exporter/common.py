"""What both kinds of panel of the exporter dashboard share: the matchers of a target series,
the bounds of lists, and the joins that keep a series of any scrape target to exporters only.
"""

from __future__ import annotations

from ...expressions import TARGET_KEY, selector
from ..layout import CLUSTER, SCRAPE
from ..panels import value_mapping

TARGET = (*SCRAPE, CLUSTER)
"""The matchers of a target series (it has milvus_cluster, database and kind)."""
BUILD_INFO = selector("milvus_jobs_exporter_build_info", *SCRAPE)
EXPORTER = "job, instance"
TARGET_LEGEND = "{{milvus_cluster}} / {{database}} / {{kind}}"
TARGET_COLUMNS = {"milvus_cluster": "Cluster", "database": "Database", "kind": "Kind"}
TABLE_ROWS = 50
BARS = 20
LANES = 20
LINES = 20
MERGED = "Series of several exporters (an HA pair) count once."
PER_EXPORTER = "One line per exporter instance: two exporters do twice the work."
OK_REFUSED = value_mapping({"1": ("OK", "green"), "0": ("REFUSED", "red")})


def exporters_only(expr: str) -> str:
    """``expr`` on a series every target exports, kept for exporter instances only."""
    return f"{expr} and on ({EXPORTER}) {BUILD_INFO}"


def since_last_success() -> str:
    """Per target, seconds since its last successful poll by the exporter that polled it least
    recently (with an HA pair, the one that may be failing: TargetDown's min)."""
    last = selector("milvus_jobs_exporter_last_success_timestamp_seconds", *TARGET)
    return f"max by ({TARGET_KEY}) (time() - {last})"


def rate_limited_per_exporter(function: str, window: str) -> str:
    """Rate-limited requests per exporter instance (0 for an exporter that had none)."""
    requests = selector(
        "milvus_jobs_exporter_api_requests_total", *TARGET, 'outcome="rate_limited"'
    )
    return (
        f"sum by (instance) (max by (instance, milvus_cluster, api) ({function}({requests}[{window}])))\n"
        f"or on (instance) 0 * max by (instance) ({BUILD_INFO})"
    )
