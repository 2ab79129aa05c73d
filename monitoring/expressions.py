"""PromQL that an alert rule and a dashboard panel share, so a panel shows what its alert
decides: which collections fail, how stale a collection is, which jobs are stuck. The job
expressions take the series a kind declares, so every kind is asked the same way.

Each function takes ``matchers`` (the dashboard's variable matchers; none in a rule) and returns
an expression laid out on several lines, as the rule file shows it. Every aggregation is ``max
by`` / ``min by`` the labels that identify the thing, so duplicated series (an HA pair of
exporters, two scrape jobs) count once, and every input is read through
``last_over_time(...[lookback])``, so a missed scrape or a restart changes nothing for
``lookback``.
"""

from __future__ import annotations

from .settings import Duration

COLLECTION_KEY = "milvus_cluster, database, collection"
JOB_KEY = "milvus_cluster, database, collection, job_id"
TARGET_KEY = "milvus_cluster, database, kind"


def selector(metric: str, *matchers: str) -> str:
    """``selector("up", 'job=~"$job"')`` -> ``up{job=~"$job"}``; ``selector("up")`` -> ``up``."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line if line else line for line in text.splitlines())


def last(metric: str, matchers: tuple[str, ...], lookback: str, key: str) -> str:
    """The newest value of each ``key`` within ``lookback``, duplicates merged (``max``)."""
    return f"max by ({key}) (\n  last_over_time({selector(metric, *matchers)}[{lookback}])\n)"


def history_failing(failure: str, success: str, matchers: tuple[str, ...], lookback: str) -> str:
    """Collections whose newest finished job failed, for a kind that remembers each
    collection's newest success and failure (refresh: ``failure`` and ``success`` are its last
    failure and success timestamps): the last failure is newer than the last success, or there
    is no success at all. Value: the failure's end time."""
    failed = last(failure, matchers, lookback, COLLECTION_KEY)
    succeeded = last(success, matchers, lookback, COLLECTION_KEY)
    return f"{failed}\n>\n(\n{indent(succeeded)}\n  or\n{indent('0 * ' + failed)}\n)"


def newest_failing(info: str, counts: str, matchers: tuple[str, ...], lookback: str) -> str:
    """Collections whose newest finished job failed, for a kind that remembers each
    collection's newest finished job (import, restore: ``info`` its failure info, ``counts`` its
    jobs per collection). While the exporter sends data about the collection, that data decides;
    while it sends none (a missed scrape, a restart), the last ``lookback`` holds the failure."""
    return (
        f"max by ({COLLECTION_KEY}) ({selector(info, *matchers)})\n"
        "or\n"
        "(\n"
        f"{indent(last(info, matchers, lookback, COLLECTION_KEY))}\n"
        "  unless\n"
        f"  max by ({COLLECTION_KEY}) ({selector(counts, *matchers)})\n"
        ")"
    )


def time_since_refresh(matchers: tuple[str, ...], lookback: str) -> str:
    """Seconds since each collection's newest successful refresh."""
    success = last(
        "milvus_refresh_last_success_timestamp_seconds", matchers, lookback, COLLECTION_KEY
    )
    return f"time()\n- {success}"


def state_matcher(states: tuple[str, ...]) -> str:
    """``state="A"`` for one state, ``state=~"A|B"`` for several."""
    return f'state="{states[0]}"' if len(states) == 1 else f'state=~"{"|".join(states)}"'


def stuck_jobs(
    prefix: str,
    running: tuple[str, ...],
    pending: tuple[str, ...],
    matchers: tuple[str, ...],
    lookback: str,
    without_progress: Duration,
    pending_for: Duration,
) -> str:
    """Jobs of the kind whose series start with ``prefix`` (labels: the job and its state) in
    a ``running`` state with no progress for ``without_progress`` (and at least that old), or
    in a ``pending`` one for longer than ``pending_for``. A progress that falls (a refresh in
    its index-wait phase) is a change: not stuck.

    Progress is compared across every exporter instance (max of maxima minus min of minima), so
    a restarted exporter with a new instance label does not look frozen.
    """

    def state(states: tuple[str, ...]) -> str:
        series = selector(f"{prefix}_job_state", *matchers, state_matcher(states))
        return f"max by ({JOB_KEY}, state) (\n  last_over_time({series}[{lookback}])\n) == 1"

    def older_than(seconds: float) -> str:
        duration = last(f"{prefix}_job_duration_seconds", matchers, lookback, JOB_KEY)
        return f"{duration} > {seconds}"

    progress = selector(f"{prefix}_job_progress_ratio", *matchers)
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
        f"(\n{indent(state(running))}\n)\n"
        f"{on}\n(\n{indent(frozen)}\n)\n"
        f"{on}\n(\n{indent(older_than(without_progress.seconds))}\n)\n"
        "or\n"
        f"(\n{indent(state(pending))}\n)\n"
        f"{on}\n(\n{indent(older_than(pending_for.seconds))}\n)"
    )


def targets_down(matchers: tuple[str, ...]) -> str:
    """Targets some exporter cannot poll (``min``: with an HA pair, either of them)."""
    return f"min by ({TARGET_KEY}) ({selector('milvus_jobs_exporter_target_up', *matchers)}) == 0"


def target_seen(target: str, kind: str, lookback: str) -> str:
    """The targets (``target``: the labels naming them, e.g. ``milvus_cluster, database``) some
    exporter reported within ``lookback``, of job kind ``kind`` (empty: any kind)."""
    matchers = (f'kind="{kind}"',) if kind else ()
    return last("milvus_jobs_exporter_target_up", matchers, lookback, target)


def lost(target: str, kind: str) -> str:
    """The targets (by the ``target`` labels) of job kind ``kind`` (empty: any) for which
    MilvusJobsExporterTargetLost is active (pending or firing)."""
    kind_matcher = f', kind="{kind}"' if kind else ""
    return f'max by ({target}) (ALERTS{{alertname="MilvusJobsExporterTargetLost"{kind_matcher}}})'


def held(alert: str, labels: str, target: str, seen: str, lost: str, lookback: str) -> str:
    """The ``alert`` alerts (identified by ``labels``) to keep firing because their target went
    out of sight: firing within the last ``lookback``, their target (the ``target`` labels) not
    ``seen`` (reported by an exporter within ``lookback``), and ``lost`` (TargetLost active).

    This is what makes an alert resolve only on evidence. Data that stops arriving (an exporter
    deleted, crashed or killed, a dead shard, failed scrapes) ends no alert: while the alert's
    own inputs still lie within ``lookback`` the rule decides as usual, and from the moment they
    do not, this clause carries the alert for as long as its target is lost (up to the sight
    horizon of TargetLost). Evidence is never overruled: a success or a confirmed drop comes
    while the target is in sight (some exporter reports it), and a removal by config ends
    TargetLost. Reading ALERTS over ``lookback`` only (not the horizon) means an alert that
    resolved while its target was in sight cannot come back when sight is lost later.
    """
    firing = f'ALERTS{{alertname="{alert}", alertstate="firing"}}'
    return (
        f"max by ({labels}) (\n  last_over_time({firing}[{lookback}])\n)\n"
        f"unless on ({target})\n{seen}\n"
        f"and on ({target})\n{lost}"
    )


def decided_or_held(decision: str, held_clause: str) -> str:
    """``decision`` (the rule as it reads the exporter's data), or the alert ``held`` while its
    target is out of sight."""
    return f"(\n{indent(decision)}\n)\nor\n(\n{indent(held_clause)}\n)"


def lost_targets(matchers: tuple[str, ...], horizon: str) -> str:
    """Targets an exporter reported within ``horizon`` that no exporter reports now, and that no
    exporter removed on purpose since it last polled them (a reload or restart without them:
    ``target_removed_timestamp_seconds`` newer than their last successful poll). Keeps ``job``,
    so a missing shard or a down exporter of the same scrape job can inhibit it."""
    removed = last(
        "milvus_jobs_exporter_target_removed_timestamp_seconds", matchers, horizon, TARGET_KEY
    )
    polled = last(
        "milvus_jobs_exporter_last_success_timestamp_seconds", matchers, horizon, TARGET_KEY
    )
    up = selector("milvus_jobs_exporter_target_up", *matchers)
    return (
        f"max by (job, {TARGET_KEY}) (\n"
        f"  last_over_time({up}[{horizon}])\n"
        ")\n"
        f"unless on ({TARGET_KEY})\n"
        f"max by ({TARGET_KEY}) ({up})\n"
        f"unless on ({TARGET_KEY})\n"
        f"(\n{indent(removed)}\n  >=\n  (\n{indent(polled, 4)}\n    or\n"
        f"{indent('0 * ' + removed, 4)}\n  )\n)"
    )


def shards_missing() -> str:
    """Per scrape job and shard count, the count when fewer distinct shard indices report:
    exporters started with different counts (a rolling re-shard, an unsharded exporter beside
    sharded ones) are compared within their own count, so one cannot hide another's gap."""
    return (
        "max by (job, count) (\n"
        "  milvus_jobs_exporter_shards\n"
        "  * on (job, instance) group_left (count)\n"
        "  max by (job, instance, count) (milvus_jobs_exporter_shard_info)\n"
        ")\n"
        ">\n"
        "count by (job, count) (\n"
        "  max by (job, count, index) (milvus_jobs_exporter_shard_info)\n"
        ")"
    )


def failure_changed(info: str, alert: str, window: str) -> str:
    """The newest failure (``info``: job id and reason) of each collection whose ``alert`` fires,
    where another failure of the same collection was reported within ``window``: the failure
    changed (a new job failed, or the reason changed) while the alert was already open.

    The newest failure is the one reported now (a series that leaves a scrape is marked stale at
    once); a scrape gap only pauses this short alert, and a restart that reports the same
    failure under a new instance label changes nothing, because instance is aggregated away."""
    failure = f"max by ({COLLECTION_KEY}, job_id, reason) ({info})"
    recent = f"max by ({COLLECTION_KEY}, job_id, reason) (\n  last_over_time({info}[{window}])\n)"
    firing = f'ALERTS{{alertname="{alert}", alertstate="firing"}}'
    return (
        f"{failure}\n"
        f"and on ({COLLECTION_KEY})\n"
        f"(\n{indent(recent)}\n  unless on ({COLLECTION_KEY}, job_id, reason)\n  {failure}\n)\n"
        f"and on ({COLLECTION_KEY})\n"
        f"max by ({COLLECTION_KEY}) ({firing})"
    )


def cycle_age(matchers: tuple[str, ...]) -> str:
    """Seconds since each exporter's last poll cycle, by the age it measures itself on a
    monotonic clock (a host clock that is behind or jumps cannot move it); an exporter too old
    to export the age is judged by its wall-clock timestamp against Prometheus's ``time()``."""
    age = selector("milvus_jobs_exporter_last_poll_cycle_age_seconds", *matchers)
    stamp = selector("milvus_jobs_exporter_last_poll_cycle_timestamp_seconds", *matchers)
    return f"{age}\nor\ntime() - {stamp}\n  unless on (job, instance) {age}"
