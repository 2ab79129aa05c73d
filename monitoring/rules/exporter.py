"""The alerts about the exporters themselves: a target that cannot be polled, rate limiting, an
exporter down, stalled, absent or refusing its config, a missing shard, a target no exporter
reports, database discovery failing, targets removed on purpose.
"""

from __future__ import annotations

from .. import expressions
from ..expressions import TARGET_KEY
from .common import INSTANCE_VARIABLES, Context, Rule


def exporter_rules(context: Context) -> list[Rule]:
    """The exporter alerts, in the order of the rule file."""
    settings = context.settings
    alerts = settings.alerts
    lookback = context.lookback
    horizon = context.horizon
    links = context.links
    exporter = context.exporter
    instance = INSTANCE_VARIABLES
    rate_limited = 'milvus_jobs_exporter_api_requests_total{outcome="rate_limited"}'
    window = alerts.rate_limited_window

    return [
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
