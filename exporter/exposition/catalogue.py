"""Every metric the exporter exports, declared once: name, type, help, labels, unit, meaning.

The model and the daemon fill these declared families; ``docs/metrics.md`` is generated from
this file (``python -m monitoring generate``; a test fails while it is stale);
the dashboard and alert tests check their queries against it. To add a metric: declare it here,
in its group, then fill it where its data is (a job kind's declaration in ``exporter/kinds/``
for a job's series, ``health.py`` for the exporter's own health, ``daemon.py`` for config and
process state).

The order of each group is the order of the families on /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from .families import MetricFamily

POLLED = "Polled from the Milvus job API at the last poll, not live."

JOB = ("milvus_cluster", "database", "collection", "job_id")
COLLECTION = ("milvus_cluster", "database", "collection")
TARGET = ("milvus_cluster", "database", "kind")


@dataclass(frozen=True)
class Metric:
    """One metric family. ``name`` of a counter excludes ``_total``; ``doc`` is the meaning
    shown in docs/metrics.md (``help`` is what /metrics says)."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...]
    doc: str
    unit: str = ""

    def family(self) -> MetricFamily:
        return MetricFamily(self.name, self.type, self.help)

    @property
    def series_names(self) -> tuple[str, ...]:
        """The sample names a query can use: ``_total`` for counters, the histogram parts."""
        if self.type == "counter":
            return (self.name + "_total",)
        if self.type == "histogram":
            return tuple(self.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


# --- Refresh jobs of external collections (model.py) ------------------------------------------
REFRESH_JOB_PROGRESS = Metric(
    "milvus_refresh_job_progress_ratio", "gauge",
    f"Progress of a refresh job, 0 to 1. {POLLED}",
    JOB, "progress 0..1", "ratio",
)  # fmt: skip
REFRESH_JOB_STATE = Metric(
    "milvus_refresh_job_state", "gauge",
    f"Refresh job state: 1 for the current state, else 0. {POLLED}",
    (*JOB, "state"),
    "1 for the current state, 0 for each other documented state (`RefreshPending`, "
    "`RefreshInProgress`, `RefreshCompleted`, `RefreshFailed`); an unknown state appears with 1 "
    "while current",
)  # fmt: skip
REFRESH_JOB_START = Metric(
    "milvus_refresh_job_start_timestamp_seconds", "gauge",
    f"When a refresh job started (Unix time). {POLLED}",
    JOB, "start time (Unix seconds)", "seconds",
)  # fmt: skip
REFRESH_JOB_END = Metric(
    "milvus_refresh_job_end_timestamp_seconds", "gauge",
    f"When a refresh job ended (Unix time). {POLLED}",
    JOB, "end time, only once set", "seconds",
)  # fmt: skip
REFRESH_JOB_DURATION = Metric(
    "milvus_refresh_job_duration_seconds", "gauge",
    "End minus start of a finished refresh job, or poll time minus start while running. "
    f"{POLLED}",
    JOB, "end - start when finished; poll time - start while running", "seconds",
)  # fmt: skip
REFRESH_JOB_FAILURE = Metric(
    "milvus_refresh_job_failure_info", "gauge",
    f"Failure reason of a failed refresh job. {POLLED}",
    (*JOB, "reason"), "1 for a failed job; reason trimmed to 200 characters",
)  # fmt: skip
REFRESH_JOB_PENDING_REASON = Metric(
    "milvus_refresh_job_pending_reason_info", "gauge",
    "The error a pending refresh job keeps retrying (its reason while RefreshPending). "
    f"{POLLED}",
    (*JOB, "reason"),
    "1 for a `RefreshPending` job whose server reports a reason: the transient error it keeps "
    "retrying (input errors fail the job at once instead); reason trimmed to 200 characters; "
    "`MilvusRefreshJobStuck` quotes it",
)  # fmt: skip
REFRESH_JOBS = Metric(
    "milvus_refresh_jobs", "gauge",
    f"Number of listed refresh jobs per collection and state. {POLLED}",
    (*COLLECTION, "state"), "listed jobs per state (every documented state, 0 included)",
)  # fmt: skip
REFRESH_LAST_SUCCESS = Metric(
    "milvus_refresh_last_success_timestamp_seconds", "gauge",
    f"End time of the newest completed refresh of a collection (Unix time). {POLLED}",
    COLLECTION,
    "end time of the newest completed refresh (remembered after the server drops the job from "
    "its ~24 h list, and across restarts with `state_file`, until the collection has not been "
    "listed for `collection_retention`)",
    "seconds",
)  # fmt: skip
REFRESH_LAST_FAILURE = Metric(
    "milvus_refresh_last_failure_timestamp_seconds", "gauge",
    f"End time of the newest failed refresh of a collection (Unix time). {POLLED}",
    COLLECTION, "end time of the newest failed refresh (remembered like the last success)",
    "seconds",
)  # fmt: skip
REFRESH_LAST_FAILURE_INFO = Metric(
    "milvus_refresh_last_failure_info", "gauge",
    "Job id and reason of the newest failed refresh of a collection; remembered as long as "
    "its last failure time is.",
    (*COLLECTION, "job_id", "reason"),
    "1 for the newest failed refresh of a collection: its job id and reason, remembered as long "
    "as its time",
)  # fmt: skip
REFRESH_DURATION = Metric(
    "milvus_refresh_duration_seconds", "histogram",
    "Duration of refresh jobs the exporter saw finish, by final state.",
    ("milvus_cluster", "database", "state"),
    "durations of refreshes the exporter saw finish (those that finished while it was stopped "
    "too, with `state_file`)",
    "seconds",
)  # fmt: skip

# --- Bulk import jobs (model.py) ----------------------------------------------------------------
IMPORT_JOB_PROGRESS = Metric(
    "milvus_import_job_progress_ratio", "gauge",
    f"Progress of an import job, 0 to 1. {POLLED}",
    JOB, "progress 0..1", "ratio",
)  # fmt: skip
IMPORT_JOB_STATE = Metric(
    "milvus_import_job_state", "gauge",
    f"Import job state: 1 for the current state, else 0. {POLLED}",
    (*JOB, "state"),
    "1/0 for `Pending`, `Importing`, `Completed`, `Failed`; other server states (`InProgress`, "
    "`Uncommitted`, `Committing`, `None`, unknown) appear only while current, with 1",
)  # fmt: skip
IMPORT_JOB_FAILURE = Metric(
    "milvus_import_job_failure_info", "gauge",
    f"Failure reason of a failed import job. {POLLED}",
    (*JOB, "reason"),
    "1 for a failed import; like every per-job series of a collection's newest finished import, "
    "remembered after the server drops the job from its ~3 h list (and across restarts with "
    "`state_file`) until a later import of the collection finishes or the collection has not "
    "been listed for `collection_retention`",
)  # fmt: skip
IMPORT_JOBS = Metric(
    "milvus_import_jobs", "gauge",
    f"Number of listed import jobs per collection and state. {POLLED}",
    (*COLLECTION, "state"),
    "listed imports per state (the documented four always, others when present)",
)  # fmt: skip
IMPORT_JOB_IMPORTED_ROWS = Metric(
    "milvus_import_job_imported_rows", "gauge",
    f"Rows an import job has imported. {POLLED}",
    JOB, "rows imported so far (`import/describe`); 0 for a failed import on a real server",
)  # fmt: skip
IMPORT_JOB_TOTAL_ROWS = Metric(
    "milvus_import_job_total_rows", "gauge",
    f"Rows an import job will import. {POLLED}",
    JOB, "rows the job will import",
)  # fmt: skip
IMPORT_JOB_FILE_SIZE = Metric(
    "milvus_import_job_file_size_bytes", "gauge",
    f"Size of an import job's files. {POLLED}",
    JOB, "total size of the job's files", "bytes",
)  # fmt: skip
IMPORT_JOB_CREATE = Metric(
    "milvus_import_job_create_timestamp_seconds", "gauge",
    f"When an import job was created (Unix time). {POLLED}",
    JOB, "when the job was created", "seconds",
)  # fmt: skip
IMPORT_JOB_COMPLETE = Metric(
    "milvus_import_job_complete_timestamp_seconds", "gauge",
    f"When an import job completed or failed (Unix time), once set. {POLLED}",
    JOB,
    "when it completed, once the server sets it (real servers set none for a failed import, "
    "and none is invented)",
    "seconds",
)  # fmt: skip
IMPORT_JOB_DURATION = Metric(
    "milvus_import_job_duration_seconds", "gauge",
    "Complete minus create time of a finished import job, or poll time minus create time "
    f"while running. {POLLED}",
    JOB, "complete - create when finished; poll time - create while running", "seconds",
)  # fmt: skip
IMPORT_DURATION = Metric(
    "milvus_import_duration_seconds", "histogram",
    "Duration of import jobs the exporter saw finish, by final state (import/describe).",
    ("milvus_cluster", "database", "state"),
    "durations of imports the exporter saw finish, complete - create; a failed import that the "
    "server gives no complete time (every real server) is not observed",
    "seconds",
)  # fmt: skip
UNKNOWN_STATE_JOBS = Metric(
    "milvus_jobs_exporter_unknown_state_jobs", "gauge",
    f"Listed jobs whose state is not one the exporter knows; kept with the state as sent. {POLLED}",
    TARGET, "listed jobs in a state the exporter does not know",
)  # fmt: skip

# --- Snapshot restore jobs (kinds/restore.py) --------------------------------------------------
RESTORE_JOB_PROGRESS = Metric(
    "milvus_restore_job_progress_ratio", "gauge",
    f"Progress of a snapshot restore job, 0 to 1 (segments copied of all). {POLLED}",
    JOB, "progress 0..1 (segments copied of all)", "ratio",
)  # fmt: skip
RESTORE_JOB_STATE = Metric(
    "milvus_restore_job_state", "gauge",
    f"Snapshot restore job state: 1 for the current state, else 0. {POLLED}",
    (*JOB, "state"),
    "1 for the current state, 0 for each other documented state (`RestoreSnapshotPending`, "
    "`RestoreSnapshotExecuting`, `RestoreSnapshotCompleted`, `RestoreSnapshotFailed`); an "
    "unknown state (`RestoreSnapshotNone` included) appears with 1 while current",
)  # fmt: skip
RESTORE_JOB_START = Metric(
    "milvus_restore_job_start_timestamp_seconds", "gauge",
    f"When a snapshot restore job started (Unix time). {POLLED}",
    JOB, "start time (Unix seconds; `startTime` is epoch milliseconds upstream)", "seconds",
)  # fmt: skip
RESTORE_JOB_DURATION = Metric(
    "milvus_restore_job_duration_seconds", "gauge",
    "The server's time cost of a finished snapshot restore job, or poll time minus start while "
    f"it runs. {POLLED}",
    JOB,
    "`timeCost` (milliseconds upstream) of a finished restore; poll time - start while it runs",
    "seconds",
)  # fmt: skip
RESTORE_JOB_FAILURE = Metric(
    "milvus_restore_job_failure_info", "gauge",
    "Failure reason of a failed snapshot restore job: the newest finished restore of a "
    f"collection, remembered after the server forgets it. {POLLED}",
    (*JOB, "reason"),
    "1 for the newest finished restore of a collection if it failed (kept after the server "
    "forgets the job, and across restarts with `state_file`, until a later restore of the "
    "collection finishes); reason trimmed to 200 characters",
)  # fmt: skip
RESTORE_JOBS = Metric(
    "milvus_restore_jobs", "gauge",
    f"Number of listed snapshot restore jobs per collection and state. {POLLED}",
    (*COLLECTION, "state"), "listed jobs per state (every documented state, 0 included)",
)  # fmt: skip
RESTORE_DURATION = Metric(
    "milvus_restore_duration_seconds", "histogram",
    "Duration (the server's time cost) of snapshot restore jobs the exporter saw finish, by "
    "final state.",
    ("milvus_cluster", "database", "state"),
    "time costs of the restores the exporter saw finish (those that finished while it was "
    "stopped too, with `state_file`)",
    "seconds",
)  # fmt: skip

# --- The exporter's own health (health.py) ---------------------------------------------------
TARGET_UP = Metric(
    "milvus_jobs_exporter_target_up", "gauge",
    "1 if the last poll of the target succeeded, else 0.",
    TARGET, "1 if the last poll succeeded",
)  # fmt: skip
TARGET_ERROR = Metric(
    "milvus_jobs_exporter_target_error_info", "gauge",
    "Why a target that is down failed its last poll (present only while down).",
    (*TARGET, "reason"), "1 while a target is down, with the reason of its last failure",
)  # fmt: skip
TARGET_LAST_SUCCESS = Metric(
    "milvus_jobs_exporter_last_success_timestamp_seconds", "gauge",
    "When the target was last polled successfully (Unix time).",
    TARGET, "last successful poll (Unix seconds)", "seconds",
)  # fmt: skip
POLL_ERRORS = Metric(
    "milvus_jobs_exporter_poll_errors", "counter",
    "Failed polls of a target, by bounded reason.",
    (*TARGET, "reason"), "failed polls by reason",
)  # fmt: skip
SKIPPED_RECORDS = Metric(
    "milvus_jobs_exporter_skipped_records", "counter",
    "Listed job records that could not be read and were left out, by bounded reason (the "
    "target stays up with the rest).",
    (*TARGET, "reason"), "listed records that could not be read and were left out",
)  # fmt: skip
TRACKED_COLLECTIONS = Metric(
    "milvus_jobs_exporter_tracked_collections", "gauge",
    "Collections whose newest refresh success and failure the exporter remembers.",
    (), "collections whose newest success and failure are remembered",
)  # fmt: skip
FORGOTTEN_COLLECTIONS = Metric(
    "milvus_jobs_exporter_forgotten_collections", "counter",
    "Collections forgotten: not listed for collection_retention (retention), beyond "
    "max_tracked_collections (limit), or confirmed gone upstream (dropped).",
    ("reason",),
    "collections forgotten: `retention` (not listed for `collection_retention`, where no "
    "`collections/list` answers), `limit` (`max_tracked_collections`) or `dropped` (confirmed "
    "gone by `collections/list`, or its database dropped by discovery); each job kind's memory "
    "(the refresh history, the newest finished imports, the newest finished restores) counts "
    "its own",
)  # fmt: skip
API_REQUESTS = Metric(
    "milvus_jobs_exporter_api_requests", "counter",
    "HTTP requests to the Milvus job API, by outcome.",
    ("milvus_cluster", "api", "outcome"),
    "HTTP requests by outcome (`success` or a failure reason); `api` is the path after "
    "`/v2/vectordb/jobs/`: `external_collection/list`, `import/list`, ..., or after "
    "`/v2/vectordb/`: `databases/list`, `collections/list`",
)  # fmt: skip
API_REQUEST_DURATION = Metric(
    "milvus_jobs_exporter_api_request_duration_seconds", "histogram",
    "Time taken by HTTP requests to the Milvus job API.",
    ("milvus_cluster", "api"), "request latency", "seconds",
)  # fmt: skip
UPSTREAM_CLOCK_SKEW = Metric(
    "milvus_jobs_exporter_upstream_clock_skew_seconds", "gauge",
    "The cluster's clock (the Date header of its last answer) minus this host's clock when the "
    "answer came; positive when this host is behind. Date has a resolution of one second.",
    ("milvus_cluster",),
    "the cluster's clock minus this host's, from the `Date` of its last answer (positive: this "
    "host is behind); job times are judged by the later of the two clocks, so a host that is "
    "behind skips no record",
    "seconds",
)  # fmt: skip
POLL_CYCLE_DURATION = Metric(
    "milvus_jobs_exporter_poll_cycle_duration_seconds", "gauge",
    "How long the last full poll cycle took.",
    (), "duration of the last full cycle", "seconds",
)  # fmt: skip
POLL_CYCLES = Metric(
    "milvus_jobs_exporter_poll_cycles", "counter",
    "Poll cycles completed.",
    (), "cycles completed",
)  # fmt: skip
LAST_POLL_CYCLE = Metric(
    "milvus_jobs_exporter_last_poll_cycle_timestamp_seconds", "gauge",
    "When the last poll cycle finished (Unix time, by this host's clock).",
    (),
    "when the last cycle finished, by this host's wall clock (absent until the first); the "
    "stall alert reads `..._last_poll_cycle_age_seconds`, which a skewed clock cannot fool",
    "seconds",
)  # fmt: skip
LATE_TARGETS = Metric(
    "milvus_jobs_exporter_late_targets", "gauge",
    "Targets that had not answered when the last poll cycle ended (still running, or still "
    "waiting for the rate limit); two cycles late in a row is reason deadline.",
    (),
    "targets that had not answered when the last cycle ended (still running, or waiting for "
    "the rate limit)",
)  # fmt: skip
DESCRIBE_BACKLOG = Metric(
    "milvus_jobs_exporter_describe_backlog", "gauge",
    "Listed jobs whose details (import/describe) are due but that the last poll cycle left "
    "undescribed: the rate limit left too few requests after the lists. Described oldest first "
    "in later cycles.",
    ("milvus_cluster", "kind"),
    "jobs due a follow-up (`import/describe`: every unfinished import, each finished one once) "
    "that the last cycle left waiting because its budget (what the rate limit leaves after the "
    "lists) ran out; they go first, oldest first, in later cycles; 0 while every due job is "
    "described each cycle; one series per cluster and kind with a follow-up switched on",
)  # fmt: skip
DESCRIBE_BACKLOG_OLDEST_AGE = Metric(
    "milvus_jobs_exporter_describe_backlog_oldest_age_seconds", "gauge",
    "How long the longest waiting job of the describe backlog has waited since its last "
    "describe (or since first listed); 0 with no backlog. The age of the oldest "
    "imported-rows data.",
    ("milvus_cluster", "kind"),
    "seconds since the longest waiting job of the backlog was last described (or first listed, "
    "if never): how old the oldest `milvus_import_job_imported_rows` (and other described "
    "series) can be; 0 with no backlog",
    "seconds",
)  # fmt: skip
UNTRACKED_JOBS = Metric(
    "milvus_jobs_exporter_untracked_jobs", "gauge",
    "Jobs left without per-job series because max_tracked_jobs was reached (still counted).",
    (), "jobs left without per-job series by `max_tracked_jobs`",
)  # fmt: skip
UNTRACKED_COLLECTIONS = Metric(
    "milvus_jobs_exporter_untracked_collections", "gauge",
    "Listed collections left without their per-collection count series (milvus_refresh_jobs, "
    "milvus_import_jobs) because max_tracked_collections was reached.",
    (),
    "listed collections left without `milvus_refresh_jobs` / `milvus_import_jobs` series by "
    "`max_tracked_collections` (per kind; those with a running, pending or failed job are shown "
    "first)",
)  # fmt: skip
UNKEPT_JOBS = Metric(
    "milvus_jobs_exporter_unkept_jobs", "gauge",
    "Jobs listed at the target's last successful poll that were not kept, by the limit that left "
    "them out (max_listed_jobs, max_listed_collections).",
    (*TARGET, "limit"),
    "listed jobs the last good poll did not keep: `limit=\"max_listed_jobs\"` (older finished "
    "jobs first) or `limit=\"max_listed_collections\"` (every job of a collection past the cap)",
)  # fmt: skip
BUILD_INFO = Metric(
    "milvus_jobs_exporter_build_info", "gauge",
    "Version of the exporter; always 1.",
    ("version",), "always 1",
)  # fmt: skip

# --- Database discovery (health.py) -----------------------------------------------------------
DISCOVERED_DATABASES = Metric(
    "milvus_jobs_exporter_discovered_databases", "gauge",
    "Databases of a cluster that its database patterns matched at the last successful discovery.",
    ("milvus_cluster",),
    "databases a cluster's patterns (`databases: [\"*\"]`, `\"prod_*\"`) matched at its last "
    "successful discovery, exclusions removed",
)  # fmt: skip
DISCOVERY_UP = Metric(
    "milvus_jobs_exporter_discovery_up", "gauge",
    "1 if the last database discovery of the cluster succeeded, else 0 (the last list is kept).",
    ("milvus_cluster",), "1 if the last discovery succeeded; 0 keeps polling the last list",
)  # fmt: skip
DISCOVERY_ERRORS = Metric(
    "milvus_jobs_exporter_discovery_errors", "counter",
    "Failed database discoveries, by bounded reason.",
    ("milvus_cluster", "reason"), "failed discoveries by reason (the reasons of a failed poll)",
)  # fmt: skip
LAST_DISCOVERY_SUCCESS = Metric(
    "milvus_jobs_exporter_last_discovery_success_timestamp_seconds", "gauge",
    "When the cluster's databases were last listed successfully (Unix time).",
    ("milvus_cluster",), "last successful discovery (Unix seconds)", "seconds",
)  # fmt: skip

DISCOVERY_SKIPPED = Metric(
    "milvus_jobs_exporter_discovery_skipped_databases", "gauge",
    "Databases a cluster's patterns matched at its last successful discovery that are not "
    "polled: past max_discovered_databases (limit), or with a name longer than Milvus allows "
    "(name_too_long).",
    ("milvus_cluster", "reason"),
    "matched databases not polled at the last successful discovery: `limit` (past "
    "`max_discovered_databases`, in name order) or `name_too_long` (over 255 characters)",
)  # fmt: skip
# --- Evidence that a target or a collection is gone (removals.py, evidence.py) ----------------
TARGET_REMOVED = Metric(
    "milvus_jobs_exporter_target_removed_timestamp_seconds", "gauge",
    "When a target was removed on purpose (Unix time), exported for an hour: cause config (the "
    "config no longer names it) or dropped (database discovery no longer lists its database).",
    (*TARGET, "cause"),
    "when the target was removed (Unix seconds), for one hour after: `cause=\"config\"` the "
    "config (reloaded, or at a restart with `state_file`) no longer names it, `cause=\"dropped\"` "
    "its cluster's database discovery no longer lists its database; never for a target that "
    "failed, went late or moved to another shard; gone at once if the target comes back",
    "seconds",
)  # fmt: skip
COLLECTIONS_LIST_UP = Metric(
    "milvus_jobs_exporter_collections_list_up", "gauge",
    "1 if the last collections/list of the database answered (its collections, or database not "
    "found), 0 if it failed (no evidence: nothing is forgotten).",
    ("milvus_cluster", "database"),
    "1 if the last `collections/list` of a watched database answered, 0 if it failed (then "
    "nothing is taken for gone); absent until the first (one per `discovery_interval`)",
)  # fmt: skip
LAST_COLLECTIONS_LIST_SUCCESS = Metric(
    "milvus_jobs_exporter_last_collections_list_success_timestamp_seconds", "gauge",
    "When the last collections/list of the database that answered was sent (Unix time).",
    ("milvus_cluster", "database"),
    "when the last answered `collections/list` of the database was sent (Unix seconds): the "
    "evidence that a collection missing from it is gone",
    "seconds",
)  # fmt: skip

# --- Config, shard and state (daemon.py) -----------------------------------------------------
RELOAD_SUCCESSFUL = Metric(
    "milvus_jobs_exporter_config_last_reload_successful", "gauge",
    "1 if the last config reload succeeded (or none was attempted), 0 if it was refused.",
    (), "1 if the last reload succeeded (or none was tried), 0 if refused",
)  # fmt: skip
RELOAD_SUCCESS_TIME = Metric(
    "milvus_jobs_exporter_config_last_reload_success_timestamp_seconds", "gauge",
    "When the config was last loaded successfully (Unix time).",
    (), "when the config was last loaded successfully", "seconds",
)  # fmt: skip
SHARD_INFO = Metric(
    "milvus_jobs_exporter_shard_info", "gauge",
    "This replica's shard: it polls the targets whose stable hash modulo count is index.",
    ("index", "count"), "this replica's shard (always 1)",
)  # fmt: skip
SHARD_COUNT = Metric(
    "milvus_jobs_exporter_shards", "gauge",
    "How many shards the targets are split into (COUNT of --shard INDEX/COUNT; 1 unsharded).",
    (),
    "the shard count as a value, so a rule can tell a shard that no replica reports "
    "(`MilvusJobsExporterShardMissing`)",
)  # fmt: skip
POLL_INTERVAL = Metric(
    "milvus_jobs_exporter_poll_interval_seconds", "gauge",
    "The configured poll_interval: how often every target is polled (start to start).",
    (),
    "the configured `poll_interval` (the stall alert compares the cycle timestamp with it)",
    "seconds",
)  # fmt: skip
STATE_WRITE_ERRORS = Metric(
    "milvus_jobs_exporter_state_write_errors", "counter",
    "Failed writes of the state file (state_file); the previous file is kept.",
    (), "failed writes of `state_file` (the previous file is kept)",
)  # fmt: skip

# --- Read at every scrape (daemon.py) ----------------------------------------------------------
LOG_LINES_DROPPED = Metric(
    "milvus_jobs_exporter_log_lines_dropped", "counter",
    "Log lines dropped because stderr was full, closed or broken (logging never blocks polling).",
    (), "log lines dropped because stderr was full, closed or broken (read at every scrape)",
)  # fmt: skip

LAST_POLL_CYCLE_AGE = Metric(
    "milvus_jobs_exporter_last_poll_cycle_age_seconds", "gauge",
    "Seconds since the last poll cycle was published, measured inside the exporter on a "
    "monotonic clock at scrape time (a skewed or jumping wall clock does not move it).",
    (),
    "seconds since the last cycle was published, on the exporter's monotonic clock at scrape "
    "time: it keeps growing while the poll loop is stuck, whatever the host's wall clock says "
    "(absent until the first cycle; `MilvusJobsExporterStalled` watches it)",
    "seconds",
)  # fmt: skip

REFRESH_METRICS = (
    REFRESH_JOB_PROGRESS, REFRESH_JOB_STATE, REFRESH_JOB_START, REFRESH_JOB_END,
    REFRESH_JOB_DURATION, REFRESH_JOB_FAILURE, REFRESH_JOB_PENDING_REASON, REFRESH_JOBS,
    REFRESH_LAST_SUCCESS,
    REFRESH_LAST_FAILURE, REFRESH_LAST_FAILURE_INFO, REFRESH_DURATION,
)  # fmt: skip
IMPORT_METRICS = (
    IMPORT_JOB_PROGRESS, IMPORT_JOB_STATE, IMPORT_JOB_FAILURE, IMPORT_JOBS,
    IMPORT_JOB_IMPORTED_ROWS, IMPORT_JOB_TOTAL_ROWS, IMPORT_JOB_FILE_SIZE, IMPORT_JOB_CREATE,
    IMPORT_JOB_COMPLETE, IMPORT_JOB_DURATION, IMPORT_DURATION, UNKNOWN_STATE_JOBS,
)  # fmt: skip
RESTORE_METRICS = (
    RESTORE_JOB_PROGRESS, RESTORE_JOB_STATE, RESTORE_JOB_START, RESTORE_JOB_DURATION,
    RESTORE_JOB_FAILURE, RESTORE_JOBS, RESTORE_DURATION,
)  # fmt: skip
HEALTH_METRICS = (
    TARGET_UP, TARGET_ERROR, TARGET_LAST_SUCCESS, POLL_ERRORS, SKIPPED_RECORDS,
    TRACKED_COLLECTIONS, FORGOTTEN_COLLECTIONS, API_REQUESTS, API_REQUEST_DURATION,
    UPSTREAM_CLOCK_SKEW, POLL_CYCLE_DURATION, POLL_CYCLES, LAST_POLL_CYCLE, LATE_TARGETS,
    DESCRIBE_BACKLOG, DESCRIBE_BACKLOG_OLDEST_AGE, UNTRACKED_JOBS, UNTRACKED_COLLECTIONS, UNKEPT_JOBS, BUILD_INFO,
)  # fmt: skip
DISCOVERY_METRICS = (
    DISCOVERED_DATABASES, DISCOVERY_UP, DISCOVERY_ERRORS, LAST_DISCOVERY_SUCCESS, DISCOVERY_SKIPPED,
)  # fmt: skip
EVIDENCE_METRICS = (TARGET_REMOVED, COLLECTIONS_LIST_UP, LAST_COLLECTIONS_LIST_SUCCESS)
CONFIG_METRICS = (
    RELOAD_SUCCESSFUL, RELOAD_SUCCESS_TIME, SHARD_INFO, SHARD_COUNT, POLL_INTERVAL,
    STATE_WRITE_ERRORS,
)  # fmt: skip
LIVE_METRICS = (LOG_LINES_DROPPED, LAST_POLL_CYCLE_AGE)

GROUPS: tuple[tuple[str, tuple[Metric, ...]], ...] = (
    ("Refresh jobs of external collections", REFRESH_METRICS),
    ("Bulk import jobs", IMPORT_METRICS),
    ("Snapshot restore jobs", RESTORE_METRICS),
    ("The exporter's own health", HEALTH_METRICS),
    ("Database discovery", DISCOVERY_METRICS),
    ("Evidence that a target or collection is gone", EVIDENCE_METRICS),
    ("Config, shard and state", CONFIG_METRICS),
    ("Read at every scrape", LIVE_METRICS),
)
CATALOGUE: tuple[Metric, ...] = tuple(metric for _title, group in GROUPS for metric in group)
PROCESS_PREFIXES = ("process_", "python_")
"""The exporter's own process, from prometheus_client's collectors (not declared here)."""
