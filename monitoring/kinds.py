"""The job kinds as the dashboards and alert rules see them, read from the exporter's declarations
(``exporter.kinds``): each kind's alert names, the expression that says a collection's newest
job failed (by the kind's memory: newest success and failure, or newest finished job), its stuck
jobs, its unfinished states and their colours. A new kind gets its section of the overview and
its alerts from here without a change to the generators; what only one kind has (refresh's
staleness, import's rows) is keyed by kind name where it is drawn.
"""

from __future__ import annotations

from exporter.exposition.catalogue import Metric
from exporter.kinds import KINDS, AnyKind
from exporter.kinds.declaration import ReasonSeries

from . import expressions
from .settings import Settings

PENDING_REASON_SUFFIX = "_job_pending_reason_info"
COLOURS = {"pending": "yellow", "running": "blue", "completed": "green", "failed": "text"}
"""Failed jobs stay listed for hours after a later success: not coloured red in the counts."""


def kinds() -> tuple[AnyKind, ...]:
    return tuple(KINDS)


def alert(kind: AnyKind, what: str) -> str:
    """``MilvusRefreshJobFailed``: the kind's alert ``what`` (Failed, FailureChanged, Stuck)."""
    return f"Milvus{kind.name.capitalize()}Job{what}"


def failing(kind: AnyKind, matchers: tuple[str, ...], lookback: str) -> str:
    """Collections whose newest finished job of ``kind`` failed."""
    series = kind.series
    if series.history is not None:
        history = series.history
        return expressions.history_failing(
            history.last_failure.name, history.last_success.name, matchers, lookback
        )
    return expressions.newest_failing(
        series.failure_info.name, series.counts.name, matchers, lookback
    )


def stuck(kind: AnyKind, matchers: tuple[str, ...], settings: Settings) -> str:
    """Jobs of ``kind`` running without progress, or pending, for too long."""
    alerts = settings.alerts
    return expressions.stuck_jobs(
        kind.metric_prefix,
        kind.states.running,
        kind.states.pending,
        matchers,
        alerts.lookback.text,
        alerts.stuck_without_progress,
        alerts.stuck_pending,
    )


def unfinished(kind: AnyKind) -> str:
    """The state matcher of jobs not finished: the pending and running states when every one is
    documented (each has a series), else any state but the finished ones."""
    states = kind.states
    started = (*states.pending, *states.running)
    if states.also_known or not set(started) <= set(states.documented):
        return f'state!~"{states.succeeded}|{states.failed}"'
    return f'state=~"{"|".join(started)}"'


def state_colours(kind: AnyKind) -> dict[str, str]:
    """Each documented state's colour, by its group."""
    return {state: COLOURS[kind.states.group(state)] for state in kind.states.documented}


def pending_reason(kind: AnyKind) -> Metric | None:
    """The series carrying the error a pending job keeps retrying, if the kind declares one."""
    for part in kind.series.per_job:
        if isinstance(part, ReasonSeries) and part.metric.name.endswith(PENDING_REASON_SUFFIX):
            return part.metric
    return None
