"""The alerts about jobs, for every job kind the exporter declares (``monitoring/kinds.py``): its
newest job of a collection failed, a failure that changed, a job stuck (for kinds with one);
and refresh's own: a collection not refreshed for too long.

Each resolves only on evidence (a later success, the collection or its database confirmed gone,
the target removed from the config): while no exporter reports the collection's target, the alert
is held as it was (``HELD``).
"""

from __future__ import annotations

from exporter.kinds import AnyKind

from .. import expressions, kinds
from ..expressions import COLLECTION_KEY, JOB_KEY
from .common import COLLECTION_VARIABLES, Context, Rule


def _failure_lookup(info: str, window: str, step: str) -> str:
    """PromQL (a printf format over cluster, database, collection) for the job id and reason of
    a collection's newest failure reported within ``window``, newest first."""
    labels = "milvus_cluster='%[1]s',database='%[2]s',collection='%[3]s'"
    return (
        f"sort_desc(max by (job_id, reason) (timestamp({info}{{{labels}}}) or "
        f"max_over_time(timestamp({info}{{{labels}}})[{window}:{step}])))"
    )


def _job_description(noun: str, info: str, lookback: str, horizon: str, extra: str = "") -> str:
    """The description of a failed-job alert, naming the newest failure's job and reason (from
    ``info``, the kind's failure info series): as reported within ``lookback`` or, only when
    nothing is (the alert is held while its target is out of sight), as last reported within
    ``horizon`` (a template ``with ... else`` runs that longer query only when the first one is
    empty)."""
    found = "{{ with . | first }}job {{ .Labels.job_id }}, reason: {{ .Labels.reason }}{{ end }}"
    return (
        f"{noun} {{{{ $labels.collection }}}} in database {{{{ $labels.database }}}} on cluster "
        f'{{{{ $labels.milvus_cluster }}}} failed ({{{{ with printf "{_failure_lookup(info, lookback, "1m")}" '
        "$labels.milvus_cluster $labels.database $labels.collection | query }}"
        f"{found}{{{{ else }}}}"
        f'{{{{ with printf "{_failure_lookup(info, horizon, "5m")}" '
        "$labels.milvus_cluster $labels.database $labels.collection | query }}"
        f"{found}, as last reported{{{{ else }}}}job and reason unknown{{{{ end }}}}{{{{ end }}}}).{extra}"
    )


HELD = "While no exporter reports the collection's target (an exporter deleted, crashed or killed, a dead shard, failed scrapes), the alert stays as it was for as long as MilvusJobsExporterTargetLost is active for the target (up to the sight horizon): losing sight of a failure is not its fix. "


def job_rules(context: Context) -> list[Rule]:
    """The job alerts, in the order of the rule file: every kind's failed alert, every kind's
    failure-changed alert, every stuck alert, then refresh's staleness."""
    every = kinds.kinds()
    return [
        *(_failed(context, kind) for kind in every),
        *(_failure_changed(context, kind) for kind in every),
        *(_stuck(context, kind) for kind in every if kind.alerting.stuck),
        _stale(context),
    ]


def _held_job(context: Context, alert: str, labels: str, kind: str) -> str:
    """``alert`` held while the (cluster, database) of ``kind`` is out of sight."""
    database = "milvus_cluster, database"
    return expressions.held(
        alert,
        labels,
        database,
        expressions.target_seen(database, kind, context.lookback),
        expressions.lost(database, kind),
        context.lookback,
    )


def _failed(context: Context, kind: AnyKind) -> Rule:
    """The newest finished job of a collection failed."""
    alerting = kind.alerting
    name = kinds.alert(kind, "Failed")
    return Rule(
        name,
        alerting.failed_comment.format(lookback=context.lookback, held=HELD),
        expressions.decided_or_held(
            kinds.failing(kind, (), context.lookback),
            _held_job(context, name, COLLECTION_KEY, kind.name),
        ),
        context.settings.alerts.failed_for[kind.name].text,
        "critical",
        (
            (
                "summary",
                f"{alerting.subject} {{{{ $labels.collection }}}} failed on "
                "{{ $labels.milvus_cluster }}",
            ),
            (
                "description",
                _job_description(
                    alerting.newest,
                    kind.series.failure_info.name,
                    context.lookback,
                    context.horizon,
                    alerting.failed_extra,
                ),
            ),
            *context.links(name, context.overview, f"Failed {kind.plural}", COLLECTION_VARIABLES),
        ),
    )


def _failure_changed(context: Context, kind: AnyKind) -> Rule:
    """A collection that already pages failed again, or with another reason."""
    alerts = context.settings.alerts
    failed = kinds.alert(kind, "Failed")
    name = kinds.alert(kind, "FailureChanged")
    title = kind.alerting.subject
    return Rule(
        name,
        f"The newest failure of a collection whose {failed} alert is already firing "
        "changed (another job failed, or the reason changed): the one alert per "
        "collection updates its description, which Alertmanager does not notify, so a "
        "new failure would reach the pager only at repeat_interval. This short alert, one "
        "per (collection, job, reason), is new to Alertmanager and is sent within "
        f"group_wait. It lasts {alerts.failure_changed_window.text} after the change and "
        "then resolves by itself (the shipped Alertmanager config sends no resolved "
        "notice for it); the failure alert itself stays until the evidence.",
        expressions.failure_changed(
            kind.series.failure_info.name, failed, alerts.failure_changed_window.text
        ),
        "0s",
        "critical",
        (
            (
                "summary",
                f"{title} {{{{ $labels.collection }}}} failed again on "
                "{{ $labels.milvus_cluster }}",
            ),
            (
                "description",
                f"{title} {{{{ $labels.collection }}}} in database {{{{ $labels.database }}}} "
                "on cluster {{ $labels.milvus_cluster }} has a new newest failure while "
                f"{failed} is open: job {{{{ $labels.job_id }}}}, reason: "
                "{{ $labels.reason }}.",
            ),
            *context.links(name, context.overview, f"Failed {kind.plural}", COLLECTION_VARIABLES),
        ),
    )


def _pending_reason(kind: AnyKind, lookback: str) -> str:
    """For a kind whose pending jobs may carry the error they keep retrying: that error, looked
    up for the stuck alert's description (nothing when there is none)."""
    metric = kinds.pending_reason(kind)
    if metric is None:
        return ""
    labels = "milvus_cluster='%s',database='%s',collection='%s',job_id='%s'"
    query = f"max by (reason) (last_over_time({metric.name}{{{labels}}}[{lookback}]))"
    return (
        f'{{{{ with printf "{query}" $labels.milvus_cluster $labels.database '
        "$labels.collection $labels.job_id | query }} (the server keeps retrying: "
        '{{ . | first | label "reason" }}){{ end }}'
    )


def _stuck(context: Context, kind: AnyKind) -> Rule:
    """A running job that made no progress, or one pending, for too long."""
    alerts = context.settings.alerts
    noun = kind.noun
    name = kinds.alert(kind, "Stuck")
    up = f'milvus_jobs_exporter_target_up{{kind="{kind.name}"}}'
    up_last = f"max by (milvus_cluster, database) (last_over_time({up}[{context.lookback}]))"
    polled = f"({up_last} == 1)"
    not_polled = f"({up_last} == 0)"
    stuck = kinds.stuck(kind, (), context.settings)
    pending = kind.states.pending[0]
    return Rule(
        name,
        f"A running {noun} whose progress has not moved for "
        f"{alerts.stuck_without_progress.text} (and that is at least that old), or a {noun} "
        f"still pending after {alerts.stuck_pending.text}, on a target that is being polled. "
        "Progress is compared across every exporter instance (max of maxima minus min of "
        "minima), so a restarted exporter with a new instance label does not look frozen. "
        "While the target cannot be polled, a firing alert stays firing (ALERTS): an outage "
        f"neither starts nor ends it. {HELD}Upstream jobs are known to hang for good.",
        expressions.decided_or_held(
            f"(\n  (\n{expressions.indent(stuck, 4)}\n  )\n  and on (milvus_cluster, database)\n"
            f"  {polled}\n)\nor\n(\n"
            f"  max by ({JOB_KEY}, state) (\n"
            f'    ALERTS{{alertname="{name}", alertstate="firing"}}\n'
            "  )\n  and on (milvus_cluster, database)\n"
            f"  {not_polled}\n)",
            _held_job(context, name, f"{JOB_KEY}, state", kind.name),
        ),
        alerts.stuck_for.text,
        "warning",
        (
            (
                "summary",
                f"{kind.alerting.subject} {{{{ $labels.collection }}}} on "
                "{{ $labels.milvus_cluster }} looks stuck",
            ),
            (
                "description",
                f"{noun.capitalize()} job {{{{ $labels.job_id }}}} of "
                f"{kind.alerting.collection} {{{{ $labels.collection }}}} in database "
                "{{ $labels.database }} on cluster {{ $labels.milvus_cluster }} "
                f'{{{{ if eq $labels.state "{pending}" }}}}has been pending for over '
                f"{alerts.stuck_pending.words}{_pending_reason(kind, context.lookback)}"
                f"{{{{ else }}}}has made no progress for {alerts.stuck_without_progress.words}"
                "{{ end }}.",
            ),
            *context.links(name, context.overview, f"Stuck {noun} jobs", COLLECTION_VARIABLES),
        ),
    )


def _stale(context: Context) -> Rule:
    """Refresh's own: no successful refresh of a collection for too long."""
    alerts = context.settings.alerts
    lookback, horizon = context.lookback, context.horizon

    def since(metric: str, window: str) -> str:
        return (
            f"{{{{ with printf \"time() - max(last_over_time({metric}{{milvus_cluster='%s',"
            f"database='%s',collection='%s'}}[{window}]))\" $labels.milvus_cluster "
            "$labels.database $labels.collection | query }}{{ . | first | value | "
            "humanizeDuration }}"
        )

    success = "milvus_refresh_last_success_timestamp_seconds"
    since_success = (
        f"{since(success, lookback)}{{{{ else }}}}{since(success, horizon)}"
        "{{ else }}an unknown time{{ end }}{{ end }}"
    )
    return Rule(
        "MilvusExternalCollectionStale",
        "No successful refresh of a collection for longer than the threshold. The last "
        "success is remembered beyond the server's ~24 h job list and across restarts "
        "(state_file), so this can fire for exactly the collections the server no longer "
        "lists; it stops when a refresh completes, or when the collection is confirmed gone "
        f"or removed from the config. {HELD}The time in the annotations is looked up, over "
        f"{lookback} or, while held, over the sight horizon, so it stays exact.",
        expressions.decided_or_held(
            f"{expressions.time_since_refresh((), lookback)}\n> {alerts.stale_after.seconds}",
            _held_job(context, "MilvusExternalCollectionStale", COLLECTION_KEY, "refresh"),
        ),
        alerts.stale_for.text,
        "warning",
        (
            (
                "summary",
                "{{ $labels.collection }} on {{ $labels.milvus_cluster }} not refreshed for "
                f"{since_success}",
            ),
            (
                "description",
                "External collection {{ $labels.collection }} in database {{ "
                "$labels.database }} on cluster {{ $labels.milvus_cluster }} has had no "
                f"successful refresh for {since_success}.",
            ),
            *context.links(
                "MilvusExternalCollectionStale",
                context.overview,
                "Time since last successful refresh",
                COLLECTION_VARIABLES,
            ),
        ),
    )
