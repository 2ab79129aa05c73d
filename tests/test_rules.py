"""The alert rules: generated from the thresholds file, current, and tested for every alert.

prometheus/alerts.yml is written by ``python -m monitoring generate`` (the rules are data in
``monitoring/rules/``) from prometheus/thresholds.yml, the file the dashboards are generated from
too; these tests fail while alerts.yml is stale, check that a
threshold changed in the file changes the rules, and that every alert has its runbook section,
its dashboard link and promtool tests firing, not firing and with duplicated series, and
that every metric and label a rule reads is in the metric catalogue.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from exporter.config.durations import parse_duration
from monitoring.__main__ import main as monitoring_main
from monitoring.outputs import RULE_FILE, generated_files
from monitoring.settings import Duration, load_settings

from .test_docs import anchor, anchors

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "prometheus"
PROMTOOL_TESTS = ("alerts_test.yml", "alerts_horizon_test.yml")
"""promtool's unit tests of the rules: the second holds the cases that span the sight horizon."""
ALERTS = PROMETHEUS / "alerts.yml"
THRESHOLDS = PROMETHEUS / "thresholds.yml"


def generate(*arguments: str) -> int:
    """``python -m monitoring generate ARGUMENTS``, in this process."""
    return monitoring_main(["generate", *arguments])


def _rules(path: Path = ALERTS) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def _with(tmp_path: Path, old: str, new: str) -> Path:
    text = THRESHOLDS.read_text(encoding="utf-8")
    assert old in text
    changed = tmp_path / "thresholds.yml"
    changed.write_text(text.replace(old, new), encoding="utf-8")
    return changed


def test_committed_rules_equal_the_generator_output() -> None:
    expected = generated_files(load_settings())[RULE_FILE]
    assert ALERTS.read_text(encoding="utf-8") == expected, (
        "alerts.yml is stale: run python -m monitoring generate"
    )


def test_check_mode_exits_1_and_writes_nothing_when_the_rules_are_stale(tmp_path: Path) -> None:
    output = tmp_path / RULE_FILE
    assert generate("--check", "--output-dir", str(tmp_path)) == 1
    assert not any(tmp_path.iterdir()), "--check wrote something"
    assert generate("--output-dir", str(tmp_path)) == 0
    assert generate("--check", "--output-dir", str(tmp_path)) == 0
    output.write_text(output.read_text().replace("for: 1m", "for: 2m"))
    assert generate("--check", "--output-dir", str(tmp_path)) == 1
    assert "for: 2m" in output.read_text()


def test_a_threshold_changed_in_the_file_changes_the_rules(tmp_path: Path) -> None:
    thresholds = _with(tmp_path, "stale_after: 24h", "stale_after: 12h")
    assert generate("--thresholds", str(thresholds), "--output-dir", str(tmp_path)) == 0
    stale = _rules(tmp_path / RULE_FILE)["MilvusExternalCollectionStale"]["expr"]
    assert "> 43200\n" in stale and "86400" not in stale


def test_the_scrape_job_selector_comes_from_the_thresholds_file(tmp_path: Path) -> None:
    output = tmp_path / RULE_FILE
    thresholds = _with(tmp_path, "'job=\"milvus-jobs\"'", "'job=\"exporters\"'")
    assert generate("--thresholds", str(thresholds), "--output-dir", str(tmp_path)) == 0
    rules = _rules(output)
    assert rules["MilvusJobsExporterDown"]["expr"].startswith('up{job="exporters"}')
    assert 'job="milvus-jobs"' not in output.read_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param("lookback: 10m", "lookback: 10", "alerts.lookback: 10 is not a duration", id="number"),
        pytest.param("stale_for: 10m", "stale_fore: 10m", "alerts.stale_fore: unknown key", id="unknown-key"),
        pytest.param("grafana_url: http", "grafana_url: ftp", "grafana_url: 'ftp", id="url"),
        pytest.param("'job=\"milvus-jobs\"'", "'job=milvus-jobs'", "scrape_job_selector:", id="selector"),
    ],
)  # fmt: skip
def test_a_wrong_thresholds_file_is_refused_with_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    thresholds = _with(tmp_path, old, new)
    output = tmp_path / "out"
    assert generate("--thresholds", str(thresholds), "--output-dir", str(output)) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("text", ["ten", "10 m", "1x", "m5"])
def test_a_duration_the_exporter_refuses_is_refused_with_the_exporters_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)
    thresholds = _with(tmp_path, "lookback: 10m", f"lookback: {text}")
    assert generate("--thresholds", str(thresholds), "--output-dir", str(tmp_path / "out")) == 2
    assert f"alerts.lookback: {refused.value}" in capsys.readouterr().err


def test_the_thresholds_file_takes_milliseconds_and_compound_durations(tmp_path: Path) -> None:
    """The exporter's grammar, Prometheus's: the thresholds reader once refused ``ms``."""
    thresholds = _with(tmp_path, "lookback: 10m", "lookback: 90000ms")
    changed = thresholds.read_text().replace("stuck_pending: 1h", "stuck_pending: 1h30m")
    thresholds.write_text(changed)
    assert generate("--thresholds", str(thresholds), "--output-dir", str(tmp_path)) == 0
    rules = _rules(tmp_path / RULE_FILE)
    assert "[90000ms]" in rules["MilvusRefreshJobFailed"]["expr"]
    stuck = rules["MilvusRefreshJobStuck"]
    assert "> 5400\n" in stuck["expr"]
    assert "pending for over 1 hour 30 minutes" in stuck["annotations"]["description"]


@pytest.mark.parametrize(
    ("text", "seconds", "words"),
    [
        pytest.param("90m", 5400, "90 minutes", id="minutes"),
        pytest.param("1h30m", 5400, "1 hour 30 minutes", id="compound"),
        pytest.param("500ms", 0.5, "500 milliseconds", id="milliseconds"),
        pytest.param("1d", 86400, "1 day", id="day"),
    ],
)
def test_a_duration_keeps_its_text_and_has_seconds_and_words(
    text: str, seconds: float, words: str
) -> None:
    duration = Duration.parse(text)
    assert (duration.text, duration.seconds, duration.words) == (text, seconds, words)
    assert duration.seconds == parse_duration(text)


def test_every_alert_has_a_runbook_section() -> None:
    runbook = anchors(ROOT / "docs" / "alerts.md")
    for name in _rules():
        assert anchor(name) in runbook, name


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", *PROMTOOL_TESTS]):
        result = subprocess.run(
            [promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_rule_joins_across_exporters_with_group_left_or_group_right() -> None:
    """A join errors ("many-to-many") as soon as two exporters disagree. The only join allowed
    is within one exporter's own series (``on (job, instance)``), which two exporters cannot
    make ambiguous."""
    for name, rule in _rules().items():
        for join in re.finditer(r"on \(([^)]*)\)\s*group_(?:left|right)", rule["expr"]):
            assert join.group(1) == "job, instance", name
        joins = rule["expr"].count("group_left") + rule["expr"].count("group_right")
        assert joins == len(re.findall(r"on \(job, instance\)\s*group_", rule["expr"])), name


# --- Links from an alert to its runbook section and its dashboard panel ------------------------

SETTINGS = load_settings()
DASHBOARDS = {
    model["uid"]: model
    for model in (
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    )
}
JOB_ALERTS = {
    "MilvusRefreshJobFailed",
    "MilvusImportJobFailed",
    "MilvusRestoreJobFailed",
    "MilvusRefreshJobFailureChanged",
    "MilvusImportJobFailureChanged",
    "MilvusRestoreJobFailureChanged",
    "MilvusRefreshJobStuck",
    "MilvusRestoreJobStuck",
    "MilvusExternalCollectionStale",
}


def test_every_alert_links_to_its_runbook_section() -> None:
    runbook = anchors(ROOT / "docs" / "alerts.md")
    for name, rule in _rules().items():
        url = rule["annotations"]["runbook_url"]
        page, _, fragment = url.partition("#")
        assert page == SETTINGS.runbook_url and page.endswith("/docs/alerts.md"), name
        assert fragment == anchor(name) and fragment in runbook, name


def test_every_alert_links_to_a_panel_of_a_dashboard_with_its_labels_selected() -> None:
    for name, rule in _rules().items():
        url = urlsplit(rule["annotations"]["dashboard_url"])
        assert f"{url.scheme}://{url.netloc}" == SETTINGS.grafana_url, name
        board = DASHBOARDS[url.path.removeprefix("/d/")]
        query = parse_qs(url.query)
        [view] = query.pop("viewPanel")
        assert int(view) in {panel["id"] for panel in board["panels"] if panel["type"] != "row"}
        defined = {variable["name"] for variable in board["templating"]["list"]}
        for variable, [value] in query.items():
            name_of = variable.removeprefix("var-")
            assert name_of in defined, (name, variable)
            assert value == f"{{{{ $labels.{name_of} | urlquery }}}}", (name, variable)
        if name in JOB_ALERTS:
            assert set(query) == {"var-milvus_cluster", "var-database", "var-collection"}, name


def _promtool_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in PROMTOOL_TESTS:
        document = yaml.safe_load((PROMETHEUS / name).read_text(encoding="utf-8"))
        cases += document["tests"]
    return cases


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _promtool_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == set(_rules()), set(_rules()) - firing
    assert quiet == set(_rules()), set(_rules()) - quiet


def test_every_alert_is_tested_with_duplicated_series() -> None:
    """Duplicated: the same series from two exporters (or scrape jobs), differing only in
    ``instance`` or ``job``."""
    covered: set[str] = set()
    for case in _promtool_tests():
        seen: dict[str, int] = {}
        for item in case["input_series"]:
            identity = re.sub(r'(instance|job)="[^"]*",?', "", item["series"])
            seen[identity] = seen.get(identity, 0) + 1
        if any(count > 1 for count in seen.values()):
            covered |= {check["alertname"] for check in case.get("alert_rule_test", [])}
    assert covered == set(_rules()), set(_rules()) - covered


# --- Queries against the catalogue --------------------------------------------------------------

PROMETHEUS_OWN = {
    "ALERTS": {"alertname", "alertstate", "milvus_cluster", "database", "kind"},
    "up": set(),
}
"""Series that Prometheus itself makes, which rules may read besides the exporter's (ALERTS
carries the labels of its alert: a rule reads its own, or TargetLost's by target)."""


def test_every_metric_and_label_a_rule_reads_is_in_the_catalogue() -> None:
    from .test_dashboards import known_metrics, vector_selectors

    known = {**known_metrics(), **PROMETHEUS_OWN}
    scrape_labels = {"job", "instance"}
    checked = 0
    for name, rule in _rules().items():
        selectors = vector_selectors(rule["expr"])
        assert selectors, f"{name}: no metric in its expression"
        for found in selectors:
            assert found.metric in known, f"{name}: {found.metric} is not an exported metric"
            labels = known[found.metric] | scrape_labels
            for label, _operator, _value in found.matchers:
                assert label in labels, f"{name}: {found.metric} has no label {label}"
            checked += 1
    assert checked >= len(_rules()) * 2


def test_the_rule_query_check_fails_on_a_metric_the_catalogue_lacks() -> None:
    from .test_dashboards import known_metrics, vector_selectors

    misspelt = vector_selectors('max by (milvus_cluster) (milvus_refresh_job_sate{state="Failed"})')
    assert [found.metric for found in misspelt] == ["milvus_refresh_job_sate"]
    assert "milvus_refresh_job_sate" not in known_metrics()
