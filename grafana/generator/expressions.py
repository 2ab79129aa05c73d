"""PromQL that an alert rule and a dashboard panel share, so a panel shows what its alert
decides: which collections fail, how stale a collection is, which refreshes are stuck.

Each function takes ``matchers`` (the dashboard's variable matchers; none in a rule) and returns
an expression laid out on several lines, as the rule file shows it. Every aggregation is ``max
by`` / ``min by`` the labels that identify the thing, so duplicated series (an HA pair of
exporters, two scrape jobs) count once, and every input is read through
``last_over_time(...[lookback])``, so a missed scrape or a restart changes nothing for
``lookback``.
"""

from __future__ import annotations

from .panels import selector
from .settings import Duration

COLLECTION_KEY = "milvus_cluster, database, collection"
JOB_KEY = "milvus_cluster, database, collection, job_id"
TARGET_KEY = "milvus_cluster, database, kind"


def indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line if line else line for line in text.splitlines())


def last(metric: str, matchers: tuple[str, ...], lookback: str, key: str) -> str:
    """The newest value of each ``key`` within ``lookback``, duplicates merged (``max``)."""
    return f"max by ({key}) (\n  last_over_time({selector(metric, *matchers)}[{lookback}])\n)"


def refresh_failing(matchers: tuple[str, ...], lookback: str) -> str:
    """Collections whose newest finished refresh failed: the last failure is newer than the last
    success, or there is no success at all. Value: the failure's end time."""
    failure = last(
        "milvus_refresh_last_failure_timestamp_seconds", matchers, lookback, COLLECTION_KEY
    )
    success = last(
        "milvus_refresh_last_success_timestamp_seconds", matchers, lookback, COLLECTION_KEY
    )
    return f"{failure}\n>\n(\n{indent(success)}\n  or\n{indent('0 * ' + failure)}\n)"


def import_failing(matchers: tuple[str, ...], lookback: str) -> str:
    """Collections whose newest finished import failed. While the exporter sends data about the
    collection, that data decides; while it sends none (a missed scrape, a restart), the last
    ``lookback`` holds the failure."""
    info = selector("milvus_import_job_failure_info", *matchers)
    return (
        f"max by ({COLLECTION_KEY}) ({info})\n"
        "or\n"
        "(\n"
        f"{indent(last('milvus_import_job_failure_info', matchers, lookback, COLLECTION_KEY))}\n"
        "  unless\n"
        f"  max by ({COLLECTION_KEY}) ({selector('milvus_import_jobs', *matchers)})\n"
        ")"
    )


def time_since_refresh(matchers: tuple[str, ...], lookback: str) -> str:
    """Seconds since each collection's newest successful refresh."""
    success = last(
        "milvus_refresh_last_success_timestamp_seconds", matchers, lookback, COLLECTION_KEY
    )
    return f"time()\n- {success}"


def stuck_refreshes(
    matchers: tuple[str, ...], lookback: str, without_progress: Duration, pending: Duration
) -> str:
    """Refresh jobs (labels: the job and its state) running with no progress for
    ``without_progress`` (and at least that old), or pending for longer than ``pending``.

    Progress is compared across every exporter instance (max of maxima minus min of minima), so
    a restarted exporter with a new instance label does not look frozen.
    """

    def state(name: str) -> str:
        series = selector("milvus_refresh_job_state", *matchers, f'state="{name}"')
        return f"max by ({JOB_KEY}, state) (\n  last_over_time({series}[{lookback}])\n) == 1"

    def older_than(seconds: int) -> str:
        duration = last("milvus_refresh_job_duration_seconds", matchers, lookback, JOB_KEY)
        return f"{duration} > {seconds}"

    progress = selector("milvus_refresh_job_progress_ratio", *matchers)
    frozen = (
        f"max by ({JOB_KEY}) (\n"
        f"  max_over_time({progress}[{without_progress.text}])\n"
        ")\n"
        f"- min by ({JOB_KEY}) (\n"
        f"  min_over_time({progress}[{without_progress.text}])\n"
        ")\n"
        "== 0"
    )
    on = f"and on ({JOB_KEY})"
    return (
        f"(\n{indent(state('RefreshInProgress'))}\n)\n"
        f"{on}\n(\n{indent(frozen)}\n)\n"
        f"{on}\n(\n{indent(older_than(without_progress.seconds))}\n)\n"
        "or\n"
        f"(\n{indent(state('RefreshPending'))}\n)\n"
        f"{on}\n(\n{indent(older_than(pending.seconds))}\n)"
    )


def targets_down(matchers: tuple[str, ...]) -> str:
    """Targets some exporter cannot poll (``min``: with an HA pair, either of them)."""
    return f"min by ({TARGET_KEY}) ({selector('milvus_jobs_exporter_target_up', *matchers)}) == 0"


def cycle_age(matchers: tuple[str, ...]) -> str:
    """Seconds since each exporter's last poll cycle, by the age it measures itself on a
    monotonic clock (a host clock that is behind or jumps cannot move it); an exporter too old
    to export the age is judged by its wall-clock timestamp against Prometheus's ``time()``."""
    age = selector("milvus_jobs_exporter_last_poll_cycle_age_seconds", *matchers)
    stamp = selector("milvus_jobs_exporter_last_poll_cycle_timestamp_seconds", *matchers)
    return f"{age}\nor\ntime() - {stamp}\n  unless on (job, instance) {age}"
