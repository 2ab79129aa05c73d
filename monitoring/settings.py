"""The thresholds file (``prometheus/thresholds.yml``): what the generated rules and dashboards
share, read once into a frozen ``Settings``, so a panel turns red where its alert fires.

Durations are read with the exporter's own grammar (``exporter.config.durations``), which is
Prometheus's, so a duration the file accepts is one Prometheus accepts in a rule. Every problem of
the file is reported at once, with its key::

    prometheus/thresholds.yml: alerts.stale_after: '1 day' is not a duration; use ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.config.durations import parse_duration
from exporter.kinds import KINDS

THRESHOLDS_FILE = Path(__file__).resolve().parents[1] / "prometheus" / "thresholds.yml"

_UNIT_WORDS = {
    "ms": "millisecond",
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "y": "year",
}
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_MATCHERS = re.compile(
    r'\s*[A-Za-z_]\w*\s*(?:=~|!~|!=|=)\s*"[^"]*"(?:\s*,\s*[A-Za-z_]\w*\s*(?:=~|!~|!=|=)\s*"[^"]*")*\s*'
)


class SettingsError(ValueError):
    """The thresholds file is unreadable or wrong; the message lists every problem."""


@dataclass(frozen=True)
class Duration:
    """A duration as written (``text``: for PromQL ranges and ``for:``), in seconds (for
    comparisons and Grafana thresholds) and in words (for annotations).

    ``parse`` accepts what ``exporter.config.durations.parse_duration`` accepts, nothing else.
    """

    text: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``Duration.parse("1h30m")``; ``ValueError`` (naming the accepted forms) if it is not
        a duration."""
        seconds = parse_duration(text)
        return cls(text, int(seconds) if float(seconds).is_integer() else seconds)

    @property
    def words(self) -> str:
        """For annotations: ``"90m"`` -> ``"90 minutes"``, ``"1h30m"`` -> ``"1 hour 30 minutes"``."""
        parts = _PART.findall(self.text)
        if "".join(number + unit for number, unit in parts) != self.text:
            return f"{self.seconds:g} seconds"  # a form the parts do not spell out
        return " ".join(
            f"{number} {_UNIT_WORDS[unit]}{'' if number == '1' else 's'}" for number, unit in parts
        )


FAILED_FOR = "{kind}_failed_for"
"""Each job kind's ``for:`` of its failed-job alert: ``refresh_failed_for``, ..."""


@dataclass(frozen=True)
class Alerts:
    lookback: Duration
    stuck_without_progress: Duration
    stuck_pending: Duration
    stuck_for: Duration
    stale_after: Duration
    stale_for: Duration
    target_down_for: Duration
    rate_limited_window: Duration
    rate_limited_for: Duration
    exporter_down_for: Duration
    stalled_poll_intervals: int
    stalled_grace: Duration
    stalled_for: Duration
    absent_for: Duration
    reload_refused_for: Duration
    shard_missing_for: Duration
    discovery_failing_for: Duration
    target_lost_for: Duration
    sight_horizon: Duration
    failure_changed_window: Duration
    failed_for: Mapping[str, Duration] = field(default_factory=dict)
    """Per job kind, the ``for:`` of its failed-job alert (the keys ``<kind>_failed_for``, one
    for each kind the exporter declares)."""


@dataclass(frozen=True)
class Dashboards:
    freshness_objective: Duration


@dataclass(frozen=True)
class Settings:
    """``scrape_job_selector`` is PromQL label matchers without braces (``job="milvus-jobs"``)."""

    scrape_job_selector: str
    runbook_url: str
    grafana_url: str
    alerts: Alerts
    dashboards: Dashboards


def _fields(record: type) -> dict[str, str]:
    return {
        name: str(kind)
        for name, kind in record.__annotations__.items()
        if not str(kind).startswith("Mapping")
    }


def load_settings(path: Path = THRESHOLDS_FILE) -> Settings:
    """Read the thresholds file; ``SettingsError`` lists every problem with its key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"{path}: {error}") from error
    problems: list[str] = []
    reader = _Reader(problems)
    top = reader.mapping(document, "", {"scrape_job_selector", "runbook_url", "grafana_url",
                                        "alerts", "dashboards"})  # fmt: skip
    selector = reader.text(top, "scrape_job_selector")
    if selector and not _MATCHERS.fullmatch(selector):
        problems.append(
            f'scrape_job_selector: {selector!r} is not PromQL label matchers (job="milvus-jobs")'
        )
    links = {name: reader.text(top, name).rstrip("/") for name in ("runbook_url", "grafana_url")}
    for name, url in links.items():
        if url and not url.startswith(("http://", "https://")):
            problems.append(f"{name}: {url!r} is not an http:// or https:// URL")
    per_kind = {FAILED_FOR.format(kind=kind.name): kind.name for kind in KINDS}
    alerts = reader.record(top, "alerts", Alerts, per_kind)
    dashboards = reader.record(top, "dashboards", Dashboards)
    if problems:
        raise SettingsError("\n".join(f"{path}: {problem}" for problem in problems))
    return Settings(selector, links["runbook_url"], links["grafana_url"], alerts, dashboards)


class _Reader:
    """Typed reads that record a problem and go on, so one run names every mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def mapping(self, node: Any, where: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(node, dict):
            self.problems.append(f"{where or 'the file'}: expected a mapping")
            return {}
        prefix = f"{where}." if where else ""
        for key in sorted(set(node) - keys, key=str):
            self.problems.append(f"{prefix}{key}: unknown key (known: {', '.join(sorted(keys))})")
        for key in sorted(keys - set(node)):
            self.problems.append(f"{prefix}{key}: missing")
        return node

    def text(self, node: dict[str, Any], key: str) -> str:
        value = node.get(key)
        if key in node and not isinstance(value, str):
            self.problems.append(f"{key}: expected a string")
        return value if isinstance(value, str) else ""

    def record(
        self,
        node: dict[str, Any],
        key: str,
        record: type,
        per_kind: Mapping[str, str] | None = None,
    ) -> Any:
        """A section read into ``record``; ``per_kind`` maps more keys of the section (one per
        job kind) to the kind whose duration each gives (``record.failed_for``)."""
        fields = _fields(record)
        per_kind = per_kind or {}
        section = self.mapping(node.get(key, {}), key, set(fields) | set(per_kind))
        values: dict[str, Any] = {}
        if per_kind:
            values["failed_for"] = {
                kind: self.duration(section, key, name) for name, kind in per_kind.items()
            }
        for name, kind in fields.items():
            value = section.get(name)
            if kind == "int":
                if name in section and (not isinstance(value, int) or value < 1):
                    self.problems.append(f"{key}.{name}: {value!r} is not a positive integer")
                values[name] = value if isinstance(value, int) else 1
            else:
                values[name] = self.duration(section, key, name)
        return record(**values)

    def duration(self, section: dict[str, Any], key: str, name: str) -> Duration:
        if name not in section:
            return Duration.parse("0s")
        value = section[name]
        try:
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not a duration; write it with a unit, e.g. 5m")
            return Duration.parse(value)
        except ValueError as error:
            self.problems.append(f"{key}.{name}: {error}")
            return Duration.parse("0s")
