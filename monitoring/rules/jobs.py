"""The alerts about jobs: a refresh or an import that failed, a failure that changed, a refresh
stuck, a collection not refreshed for too long.

Each resolves only on evidence (a later success, the collection or its database confirmed gone,
the target removed from the config): while no exporter reports the collection's target, the alert
is held as it was (``HELD``).
"""

from __future__ import annotations

from .. import expressions
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


def _job_description(noun: str, kind: str, lookback: str, horizon: str, extra: str = "") -> str:
    """The description of a failed-job alert, naming the newest failure's job and reason: as
    reported within ``lookback`` or, only when nothing is (the alert is held while its target is
    out of sight), as last reported within ``horizon`` (a template ``with ... else`` runs that
    longer query only when the first one is empty)."""
    info = (
        f"milvus_{kind}_last_failure_info"
        if kind == "refresh"
        else f"milvus_{kind}_job_failure_info"
    )
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
    """The job alerts, in the order of the rule file."""
    alerts = context.settings.alerts
    lookback = context.lookback
    horizon = context.horizon
    database = "milvus_cluster, database"
    links = context.links
    overview = context.overview
    collection = COLLECTION_VARIABLES

    def held_job(alert: str, labels: str, kind: str) -> str:
        """``alert`` held while the (cluster, database) of ``kind`` is out of sight."""
        return expressions.held(
            alert,
            labels,
            database,
            expressions.target_seen(database, kind, lookback),
            expressions.lost(database, kind),
            lookback,
        )

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
    up_refresh = 'milvus_jobs_exporter_target_up{kind="refresh"}'
    up_last = f"max by (milvus_cluster, database) (last_over_time({up_refresh}[{lookback}]))"
    polled = f"({up_last} == 1)"
    not_polled = f"({up_last} == 0)"
    stuck = expressions.stuck_refreshes(
        (), lookback, alerts.stuck_without_progress, alerts.stuck_pending
    )

    return [
        Rule(
            "MilvusRefreshJobFailed",
            "The newest finished refresh of a collection failed: its failure is newer than its "
            "last success (or it never succeeded). Both times are remembered by the exporter "
            "beyond the server's ~24 h job list and across restarts (state_file). Resolves on "
            "evidence only: a later refresh completes, the collection or its database is confirmed "
            "gone upstream (the exporter stops reporting it), or the target is removed from the "
            f"config. {HELD}",
            expressions.decided_or_held(
                expressions.refresh_failing((), lookback),
                held_job("MilvusRefreshJobFailed", COLLECTION_KEY, "refresh"),
            ),
            alerts.refresh_failed_for.text,
            "critical",
            (
                (
                    "summary",
                    "Refresh of {{ $labels.collection }} failed on {{ $labels.milvus_cluster }}",
                ),
                (
                    "description",
                    _job_description(
                        "The newest refresh of external collection",
                        "refresh",
                        lookback,
                        horizon,
                        " The collection serves data from before the failed refresh until a "
                        "refresh completes.",
                    ),
                ),
                *links("MilvusRefreshJobFailed", overview, "Failed refreshes", collection),
            ),
        ),
        Rule(
            "MilvusImportJobFailed",
            "The newest finished import of a collection (by create time, else by when the "
            "exporter first saw it) failed. Resolves when a later import into the collection "
            "completes; the exporter keeps exporting the failed job after the server forgets it "
            "(about 3 h after it finished) until it forgets the collection (collection_retention). "
            f"While the exporter sends nothing about the collection (a missed scrape, a restart), "
            f"the last {lookback} hold it; while it sends data, that data decides at once. "
            f"{HELD}",
            expressions.decided_or_held(
                expressions.import_failing((), lookback),
                held_job("MilvusImportJobFailed", COLLECTION_KEY, "import"),
            ),
            alerts.import_failed_for.text,
            "critical",
            (
                (
                    "summary",
                    "Import into {{ $labels.collection }} failed on {{ $labels.milvus_cluster }}",
                ),
                (
                    "description",
                    _job_description(
                        "The newest bulk import into collection", "import", lookback, horizon
                    ),
                ),
                *links("MilvusImportJobFailed", overview, "Failed imports", collection),
            ),
        ),
        *(
            Rule(
                f"Milvus{noun.capitalize()}JobFailureChanged",
                f"The newest failure of a collection whose {failed} alert is already firing "
                "changed (another job failed, or the reason changed): the one alert per "
                "collection updates its description, which Alertmanager does not notify, so a "
                "new failure would reach the pager only at repeat_interval. This short alert, one "
                "per (collection, job, reason), is new to Alertmanager and is sent within "
                f"group_wait. It lasts {alerts.failure_changed_window.text} after the change and "
                "then resolves by itself (the shipped Alertmanager config sends no resolved "
                "notice for it); the failure alert itself stays until the evidence.",
                expressions.failure_changed(info, failed, alerts.failure_changed_window.text),
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
                    *links(
                        f"Milvus{noun.capitalize()}JobFailureChanged", overview, panel, collection
                    ),
                ),
            )
            for noun, failed, info, title, panel in (
                (
                    "refresh",
                    "MilvusRefreshJobFailed",
                    "milvus_refresh_last_failure_info",
                    "Refresh of",
                    "Failed refreshes",
                ),
                (
                    "import",
                    "MilvusImportJobFailed",
                    "milvus_import_job_failure_info",
                    "Import into",
                    "Failed imports",
                ),
            )
        ),
        Rule(
            "MilvusRefreshJobStuck",
            f"A running refresh whose progress has not moved for "
            f"{alerts.stuck_without_progress.text} (and that is at least that old), or a refresh "
            f"still pending after {alerts.stuck_pending.text}, on a target that is being polled. "
            "Progress is compared across every exporter instance (max of maxima minus min of "
            "minima), so a restarted exporter with a new instance label does not look frozen. "
            "While the target cannot be polled, a firing alert stays firing (ALERTS): an outage "
            f"neither starts nor ends it. {HELD}Upstream jobs are known to hang for good.",
            expressions.decided_or_held(
                f"(\n  (\n{expressions.indent(stuck, 4)}\n  )\n  and on (milvus_cluster, database)\n"
                f"  {polled}\n)\nor\n(\n"
                f"  max by ({JOB_KEY}, state) (\n"
                '    ALERTS{alertname="MilvusRefreshJobStuck", alertstate="firing"}\n'
                "  )\n  and on (milvus_cluster, database)\n"
                f"  {not_polled}\n)",
                held_job("MilvusRefreshJobStuck", f"{JOB_KEY}, state", "refresh"),
            ),
            alerts.stuck_for.text,
            "warning",
            (
                (
                    "summary",
                    "Refresh of {{ $labels.collection }} on {{ $labels.milvus_cluster }} looks stuck",
                ),
                (
                    "description",
                    "Refresh job {{ $labels.job_id }} of external collection {{ "
                    "$labels.collection }} in database {{ $labels.database }} on cluster {{ "
                    '$labels.milvus_cluster }} {{ if eq $labels.state "RefreshPending" }}has been '
                    f"pending for over {alerts.stuck_pending.words}{{{{ else }}}}has made no "
                    f"progress for {alerts.stuck_without_progress.words}{{{{ end }}}}.",
                ),
                *links("MilvusRefreshJobStuck", overview, "Stuck refresh jobs", collection),
            ),
        ),
        Rule(
            "MilvusExternalCollectionStale",
            "No successful refresh of a collection for longer than the threshold. The last "
            "success is remembered beyond the server's ~24 h job list and across restarts "
            "(state_file), so this can fire for exactly the collections the server no longer "
            "lists; it stops when a refresh completes, or when the collection is confirmed gone "
            f"or removed from the config. {HELD}The time in the annotations is looked up, over "
            f"{lookback} or, while held, over the sight horizon, so it stays exact.",
            expressions.decided_or_held(
                f"{expressions.time_since_refresh((), lookback)}\n> {alerts.stale_after.seconds}",
                held_job("MilvusExternalCollectionStale", COLLECTION_KEY, "refresh"),
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
                *links(
                    "MilvusExternalCollectionStale",
                    overview,
                    "Time since last successful refresh",
                    collection,
                ),
            ),
        ),
    ]
