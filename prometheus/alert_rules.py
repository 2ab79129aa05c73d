"""The alert rules, as data: what each alert asks Prometheus, and why it is written that way.

``prometheus/generate.py`` renders them to alerts.yml. Thresholds, the scrape job selector and
the links come from prometheus/thresholds.yml (through ``Settings``), which the Grafana generator
reads too, so a panel turns red where its alert fires; the panels the alerts link to are looked up
in the generated dashboards, so a link cannot point at a panel that is not there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY / "grafana") not in sys.path:
    sys.path.insert(0, str(REPOSITORY / "grafana"))  # the generator package the dashboards use

from generator import EXPORTER_FILE, OVERVIEW_FILE, build_dashboards, expressions  # noqa: E402
from generator.expressions import COLLECTION_KEY, JOB_KEY, TARGET_KEY  # noqa: E402
from generator.layout import panel_id  # noqa: E402
from generator.panels import Json  # noqa: E402
from generator.settings import Settings  # noqa: E402


@dataclass(frozen=True)
class Rule:
    """One alert rule. ``comment`` says why the rule is written the way it is (it becomes the
    comment above the rule); ``annotations`` are in the order they are written."""

    alert: str
    comment: str
    expr: str
    for_: str
    severity: str
    annotations: tuple[tuple[str, str], ...]


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


def rules(settings: Settings) -> list[Rule]:
    """Every alert rule, in the order of the rule file."""
    alerts = settings.alerts
    lookback = alerts.lookback.text
    horizon = alerts.sight_horizon.text
    database = "milvus_cluster, database"

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
    rate_limited = 'milvus_jobs_exporter_api_requests_total{outcome="rate_limited"}'
    window = alerts.rate_limited_window

    boards = build_dashboards(settings)
    overview, exporter = boards[OVERVIEW_FILE], boards[EXPORTER_FILE]
    collection = {name: name for name in ("milvus_cluster", "database", "collection")}
    instance = {"job": "job", "instance": "instance"}

    def links(
        alert: str, board: Json, panel: str, variables: dict[str, str]
    ) -> tuple[tuple[str, str], tuple[str, str]]:
        """runbook_url (the alert's section of docs/alerts.md) and dashboard_url (``panel`` in
        view, each Grafana variable set from the alert label of the same name)."""
        query = "".join(
            f"var-{variable}={{{{ $labels.{label} | urlquery }}}}&"
            for variable, label in variables.items()
        )
        return (
            ("runbook_url", f"{settings.runbook_url}#{alert.lower()}"),
            (
                "dashboard_url",
                f"{settings.grafana_url}/d/{board['uid']}?{query}viewPanel={panel_id(board, panel)}",
            ),
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
        Rule(
            "MilvusJobsExporterTargetDown",
            "An exporter cannot poll a (cluster, database, job kind): with an HA pair, either of "
            "them (min by). The reason is the one most counted in poll_errors_total over the "
            "last 10 minutes, each exporter's errors counted once (max by instance). Job alerts "
            f"of the target keep their state meanwhile. A missed scrape or a restart ends nothing "
            f"for {lookback} (last_over_time); a target no exporter reports any more stays down "
            "for as long as MilvusJobsExporterTargetLost is active for it.",
            expressions.decided_or_held(
                f"min by ({TARGET_KEY}) (\n"
                f"  last_over_time(milvus_jobs_exporter_target_up[{lookback}])\n) == 0",
                expressions.held(
                    "MilvusJobsExporterTargetDown",
                    TARGET_KEY,
                    TARGET_KEY,
                    expressions.target_seen(TARGET_KEY, "", lookback),
                    expressions.lost(TARGET_KEY, ""),
                    lookback,
                ),
            ),
            alerts.target_down_for.text,
            "warning",
            (
                (
                    "summary",
                    "Cannot poll {{ $labels.kind }} jobs of {{ $labels.milvus_cluster }}/{{ $labels.database }}",
                ),
                (
                    "description",
                    "The exporter has failed to poll {{ $labels.kind }} jobs of database {{ "
                    "$labels.database }} on cluster {{ $labels.milvus_cluster }} for "
                    f"{alerts.target_down_for.words}; "
                    'reason: {{ with printf "topk(1, sum by (reason) (max by (reason, instance) '
                    "(increase(milvus_jobs_exporter_poll_errors_total{milvus_cluster='%s',"
                    "database='%s',kind='%s'}[10m]))))\" $labels.milvus_cluster $labels.database "
                    "$labels.kind | "
                    "query }}{{ range . }}{{ .Labels.reason }}{{ end }}{{ else }}unknown{{ end }}. "
                    "Job alerts of this target keep their last known state: new failures there "
                    "are not seen.",
                ),
                *links(
                    "MilvusJobsExporterTargetDown",
                    exporter,
                    "Targets down, longest first",
                    {"milvus_cluster": "milvus_cluster"},
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterRateLimited",
            "The upstream keeps refusing requests for exceeding its per-user limit: rejections "
            f"in every {window.text} window for {alerts.rate_limited_for.text} (a single burst "
            "does not page). Another client shares the credential, or requests_per_second is "
            "set above what the server allows. Each exporter's rejections are its own requests, "
            "so they add up; the same exporter scraped by two jobs counts once (max by "
            "instance).",
            "sum by (milvus_cluster, api) (\n"
            "  max by (milvus_cluster, api, instance) (\n"
            f"    increase({rate_limited}[{window.text}])\n"
            "  )\n"
            ") > 0",
            alerts.rate_limited_for.text,
            "warning",
            (
                (
                    "summary",
                    "{{ $labels.milvus_cluster }} rate-limits the exporter on {{ $labels.api }}",
                ),
                (
                    "description",
                    'Cluster {{ $labels.milvus_cluster }} refused {{ $value | printf "%.0f" }} '
                    f"requests to {{{{ $labels.api }}}} in the last {window.words} (all exporters "
                    "together) as over its rate limit (HTTP 429 or code 8/1807), and has kept doing "
                    f"so for {alerts.rate_limited_for.words}. Another client probably shares the "
                    "credential.",
                ),
                *links(
                    "MilvusJobsExporterRateLimited",
                    exporter,
                    "Rate-limited requests",
                    {"milvus_cluster": "milvus_cluster"},
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterDown",
            "Prometheus cannot scrape an exporter of the scrape job(s) of the thresholds file "
            f"({settings.scrape_job_selector}).",
            f"up{{{settings.scrape_job_selector}}} == 0",
            alerts.exporter_down_for.text,
            "critical",
            (
                ("summary", "milvus-jobs-exporter {{ $labels.instance }} is down"),
                (
                    "description",
                    "Prometheus has failed to scrape milvus-jobs-exporter at {{ $labels.instance "
                    f"}}}} for {alerts.exporter_down_for.words}: failed refreshes and imports are "
                    "not being watched.",
                ),
                *links("MilvusJobsExporterDown", exporter, "Exporter instances", instance),
            ),
        ),
        Rule(
            "MilvusJobsExporterStalled",
            "The exporter answers scrapes but its poll loop has stopped publishing, so every "
            "job series is frozen at its last value and nothing new can page. /readyz answers "
            "503 at about the same point (2 poll intervals plus the request timeout without a "
            "cycle). The age is measured inside the exporter on a monotonic clock at scrape "
            "time: comparing the cycle's wall-clock timestamp with Prometheus's time() fired on "
            "every exporter whose host clock was behind. An exporter too old to export the age "
            "(a rolling upgrade) is still judged by its timestamp.",
            f"(\n{expressions.indent(expressions.cycle_age(()))}\n)\n"
            f"  > {alerts.stalled_poll_intervals} * milvus_jobs_exporter_poll_interval_seconds"
            f" + {alerts.stalled_grace.seconds}",
            alerts.stalled_for.text,
            "critical",
            (
                ("summary", "milvus-jobs-exporter {{ $labels.instance }} has stopped polling"),
                (
                    "description",
                    "milvus-jobs-exporter at {{ $labels.instance }} has published no poll cycle "
                    "for {{ $value | humanizeDuration }}: its job metrics are frozen, and failed "
                    "refreshes and imports are not being seen.",
                ),
                *links("MilvusJobsExporterStalled", exporter, "Exporter instances", instance),
            ),
        ),
        Rule(
            "MilvusJobsExporterConfigReloadRefused",
            "The exporter refused its last config reload (SIGHUP or POST /-/reload): it keeps "
            "polling with the previous config, and the file on disk would stop a restart. One "
            "alert per exporter instance: each must be given a config it accepts.",
            "milvus_jobs_exporter_config_last_reload_successful == 0",
            alerts.reload_refused_for.text,
            "warning",
            (
                ("summary", "milvus-jobs-exporter {{ $labels.instance }} refused its new config"),
                (
                    "description",
                    "The last config reload of milvus-jobs-exporter at {{ $labels.instance }} was "
                    "refused: it still polls with the config it had, and a restart would fail on "
                    "the file as it is now. Its log (config.reload_failed) and POST /-/reload name "
                    "every problem with its line.",
                ),
                *links(
                    "MilvusJobsExporterConfigReloadRefused",
                    exporter,
                    "Exporter instances",
                    instance,
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterShardMissing",
            "Exporters split the targets into shards (--shard INDEX/COUNT), and no exporter of a "
            "scrape job reports one of the indices of a shard count: its targets are polled by "
            "no one, so their failures page nobody. Each shard count is checked on its own "
            "(milvus_jobs_exporter_shards, joined to the count label of shard_info): during a "
            "rolling re-shard (0/2 still running beside 1/3 and 2/3) both counts miss a shard, and "
            "an unsharded exporter (0/1) cannot stand in for a missing shard 0 of N. An HA pair "
            "of a shard counts once. A pod that restarts, or a re-shard that completes, within "
            f"{alerts.shard_missing_for.text} does not fire it.",
            expressions.shards_missing(),
            alerts.shard_missing_for.text,
            "critical",
            (
                (
                    "summary",
                    "A shard of {{ $labels.count }} of the exporters of {{ $labels.job }} reports "
                    "nothing",
                ),
                (
                    "description",
                    "Exporters of scrape job {{ $labels.job }} split the targets into {{ "
                    "$labels.count }} shards (--shard INDEX/{{ $labels.count }}), but only "
                    "shard(s) {{ range printf "
                    "\"count by (index) (milvus_jobs_exporter_shard_info{job='%s',count='%s'})\" "
                    '$labels.job $labels.count | query | sortByLabel "index" }}{{ .Labels.index }} '
                    "{{ end }}of them report: the targets of the others are polled by no exporter, "
                    "and their failures page nobody.",
                ),
                *links(
                    "MilvusJobsExporterShardMissing", exporter, "Exporter instances", {"job": "job"}
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterTargetLost",
            "A target (cluster, database, job kind) that an exporter reported within the sight "
            f"horizon ({horizon}) is reported by no exporter now: an exporter deleted from service "
            "discovery while others remain, crashed, OOM-killed or scaled away, a dead shard, a "
            "half-done re-shard. Its failures page nobody, so this pages, and while it is active "
            "the job alerts of the target stay as they were. Not for a target an exporter removed "
            "on purpose after it last polled it (target_removed_timestamp_seconds: a reload or a "
            "restart without it, or its database gone upstream). The identity is the target, "
            "not the instance, so a pod restart or rollout (new instance labels) does not fire "
            f"it within {alerts.target_lost_for.text}. Keeps job, so the shipped Alertmanager "
            "config inhibits it while MilvusJobsExporterShardMissing or MilvusJobsExporterDown "
            "of the same scrape job fires: one cause, one page.",
            expressions.lost_targets((), horizon),
            alerts.target_lost_for.text,
            "critical",
            (
                (
                    "summary",
                    "No exporter watches {{ $labels.kind }} jobs of {{ $labels.milvus_cluster }}/{{ "
                    "$labels.database }} any more",
                ),
                (
                    "description",
                    "No exporter of scrape job {{ $labels.job }} reports {{ $labels.kind }} jobs of "
                    "database {{ $labels.database }} on cluster {{ $labels.milvus_cluster }} any "
                    f"more (for {alerts.target_lost_for.words}); "
                    '{{ with printf "topk(1, max by (instance) (last_over_time('
                    "milvus_jobs_exporter_last_success_timestamp_seconds{milvus_cluster='%s',"
                    f"database='%s',kind='%s'}}[{horizon}])))\" $labels.milvus_cluster "
                    "$labels.database $labels.kind | query }}{{ range . }}{{ .Labels.instance }} "
                    "polled it last, {{ .Value | humanizeTimestamp }}{{ end }}{{ else }}no "
                    "successful poll of it is known{{ end }}. Its failures page nobody; its open "
                    "job alerts stay open until an exporter reports it again, it is removed from "
                    f"the config, or {alerts.sight_horizon.words} pass.",
                ),
                *links(
                    "MilvusJobsExporterTargetLost",
                    exporter,
                    "Targets no exporter reports",
                    {"milvus_cluster": "milvus_cluster", "job": "job"},
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterDatabaseDiscoveryFailing",
            "An exporter cannot list the databases of a cluster whose config names database "
            "patterns: it keeps polling the databases of its last successful discovery, so a "
            "new database is not polled (and its failures page nobody); a cluster never "
            "discovered is not polled at all, and no TargetDown can fire for it. With an HA "
            "pair, either exporter (min by). The reason is the one most counted in "
            "discovery_errors_total over the same time, each exporter's errors counted once. "
            f"A missed scrape or a restart ends nothing for {lookback}; a cluster no exporter "
            "reports any more stays failing while MilvusJobsExporterTargetLost is active for one "
            "of its targets.",
            expressions.decided_or_held(
                "min by (milvus_cluster) (\n"
                f"  last_over_time(milvus_jobs_exporter_discovery_up[{lookback}])\n) == 0",
                expressions.held(
                    "MilvusJobsExporterDatabaseDiscoveryFailing",
                    "milvus_cluster",
                    "milvus_cluster",
                    expressions.last(
                        "milvus_jobs_exporter_discovery_up", (), lookback, "milvus_cluster"
                    ),
                    expressions.lost("milvus_cluster", ""),
                    lookback,
                ),
            ),
            alerts.discovery_failing_for.text,
            "warning",
            (
                (
                    "summary",
                    "Cannot list the databases of {{ $labels.milvus_cluster }}",
                ),
                (
                    "description",
                    "The exporter has failed to list the databases of cluster {{ "
                    "$labels.milvus_cluster }} for "
                    f"{alerts.discovery_failing_for.words}; "
                    'reason: {{ with printf "topk(1, sum by (reason) (max by (reason, instance) '
                    "(increase(milvus_jobs_exporter_discovery_errors_total{milvus_cluster='%s'}"
                    f'[{alerts.discovery_failing_for.text}]))))" $labels.milvus_cluster | '
                    "query }}{{ range . }}{{ .Labels.reason }}{{ end }}{{ else }}unknown{{ end }}. "
                    "It keeps polling the databases it found last: databases created since are "
                    "not watched.",
                ),
                *links(
                    "MilvusJobsExporterDatabaseDiscoveryFailing",
                    exporter,
                    "Database discovery",
                    {"milvus_cluster": "milvus_cluster"},
                ),
            ),
        ),
        Rule(
            "MilvusJobsExporterAbsent",
            "No exporter of the scrape job(s) of the thresholds file is scraped: no exporter runs, "
            "or the scrape job is missing or misnamed (then MilvusJobsExporterDown, which watches "
            "the same jobs, could never fire). group(): the alert carries no label of the "
            "selector.",
            f"absent(group(milvus_jobs_exporter_build_info{{{settings.scrape_job_selector}}}))",
            alerts.absent_for.text,
            "critical",
            (
                ("summary", "No milvus-jobs-exporter is being scraped"),
                (
                    "description",
                    "Prometheus has no milvus_jobs_exporter_build_info series for "
                    f"{alerts.absent_for.words}: no exporter is running or none is scraped, so "
                    "failed refreshes and imports are not being watched.",
                ),
                *links("MilvusJobsExporterAbsent", exporter, "Exporter instances", {}),
            ),
        ),
        Rule(
            "MilvusJobsExporterTargetsRemoved",
            "An exporter stopped watching a target on purpose: its config no longer names it "
            "(cause config: a reload, or a restart with state_file, without it; a rename is a "
            "removal and an addition) or its database is gone from the cluster (cause dropped). "
            "The job alerts of the target resolve, because the operator asked for it or the "
            "server confirmed it; this says so for the hour the exporter reports the removal. "
            "Severity info: nothing to fix, a record of why alerts resolved.",
            "max by (milvus_cluster, database, kind, cause) (\n"
            "  milvus_jobs_exporter_target_removed_timestamp_seconds\n)",
            "0s",
            "info",
            (
                (
                    "summary",
                    "{{ $labels.kind }} jobs of {{ $labels.milvus_cluster }}/{{ $labels.database }} "
                    "are no longer watched",
                ),
                (
                    "description",
                    "An exporter stopped watching {{ $labels.kind }} jobs of database {{ "
                    "$labels.database }} on cluster {{ $labels.milvus_cluster }} at {{ $value | "
                    'humanizeTimestamp }}: {{ if eq $labels.cause "config" }}its config no longer '
                    "names them{{ else }}the database is gone from the cluster{{ end }}. Their job "
                    "alerts resolved because of it, not because a job succeeded.",
                ),
                *links(
                    "MilvusJobsExporterTargetsRemoved",
                    exporter,
                    "Targets removed on purpose",
                    {"milvus_cluster": "milvus_cluster"},
                ),
            ),
        ),
    ]
