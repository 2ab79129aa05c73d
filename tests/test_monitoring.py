"""The monitoring-as-code package: one command writes or checks every generated file, the mixin
evaluates with Debian's jsonnet to the same rules and dashboards, and nothing glues itself
together by editing ``sys.path``.

The rules, the dashboards, the Kubernetes manifests and the metrics reference have tests of their
own (test_rules.py, test_dashboards.py, test_deploy.py, test_catalogue.py); these are about what
they share: the command, the headers, the mixin, the imports.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import COMMAND
from monitoring.dashboards import build_dashboards
from monitoring.mixin import PLACEHOLDERS, mixin_config, with_mixin_config
from monitoring.outputs import (
    CONFIG_DOC,
    DASHBOARDS,
    DASHBOARDS_CONFIGMAP,
    METRICS_DOC,
    MIXIN_TEMPLATES,
    PROMETHEUS_RULE,
    RULE_FILE,
    generated_files,
)
from monitoring.rules import rule_groups, rules
from monitoring.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
MIXIN = ROOT / "mixin"
IN_CI = bool(os.environ.get("CI"))
RETIRED_COMMANDS = (
    "prometheus/generate.py",
    "grafana/generate.py",
    "generate_prometheusrule",
    "python -m exporter.exposition.catalogue",
    "prometheus/alert_rules.py",
    "grafana/generator",
)
"""The four commands (and two sources) the one command replaced: named nowhere any more."""


def monitoring(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m monitoring ARGUMENTS`` as a user runs it, from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "monitoring", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _python_files() -> list[Path]:
    skipped = {".venv", ".git", "node_modules"}
    return sorted(
        path for path in ROOT.rglob("*.py") if not skipped & set(path.relative_to(ROOT).parts[:1])
    )


# --- One command ---------------------------------------------------------------------------------


def test_the_one_command_finds_every_committed_file_current() -> None:
    result = monitoring("generate", "--check")
    assert result.returncode == 0, result.stderr


def test_the_one_command_writes_every_generated_file() -> None:
    dashboards = {
        DASHBOARDS / "milvus-jobs-overview.json",
        DASHBOARDS / "milvus-jobs-exporter.json",
    }
    assert set(generated_files(load_settings())) == {
        RULE_FILE,
        *dashboards,
        PROMETHEUS_RULE,
        DASHBOARDS_CONFIGMAP,
        MIXIN_TEMPLATES,
        METRICS_DOC,
        CONFIG_DOC,
    }


def test_check_names_every_stale_file_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    written = monitoring("generate", "--output-dir", str(tmp_path))
    assert written.returncode == 0, written.stderr
    files = sorted(generated_files(load_settings()))
    for relative in files:
        path = tmp_path / relative
        path.write_text(path.read_text(encoding="utf-8") + "edited\n", encoding="utf-8")
    (tmp_path / METRICS_DOC).unlink()
    before = {relative: (tmp_path / relative).exists() for relative in files}
    stale = monitoring("generate", "--check", "--output-dir", str(tmp_path))
    assert stale.returncode == 1
    named = [line.split(": stale")[0] for line in stale.stderr.splitlines()]
    assert sorted(named) == [str(tmp_path / relative) for relative in files]
    assert f"run {COMMAND} --output-dir" in stale.stderr
    assert {relative: (tmp_path / relative).exists() for relative in files} == before
    assert "edited" in (tmp_path / RULE_FILE).read_text(encoding="utf-8")
    assert monitoring("generate", "--output-dir", str(tmp_path)).returncode == 0
    assert monitoring("generate", "--check", "--output-dir", str(tmp_path)).returncode == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(("generate", "--thresholds", "no-such.yml"), "no-such.yml", id="missing"),
        pytest.param(("generate", "--colour"), "unrecognized arguments", id="flag"),
        pytest.param((), "COMMAND", id="no-command"),
    ],
)
def test_a_wrong_invocation_exits_2_with_a_line_and_no_traceback(
    arguments: tuple[str, ...], message: str
) -> None:
    result = monitoring(*arguments)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not result.stdout


def test_every_generated_file_with_room_for_a_header_names_the_one_command() -> None:
    """JSON has no comments; every other generated file says how it is made, in its first line
    (the configuration reference, generated in part, says it where its generated part starts)."""
    for relative, text in generated_files(load_settings()).items():
        if relative == CONFIG_DOC:
            assert f"by `{COMMAND}`; do not edit -->" in text
        elif relative.suffix != ".json":
            assert COMMAND in text.splitlines()[0] + text.splitlines()[2], relative


def test_no_file_names_a_retired_generator_command() -> None:
    texts = [
        path
        for pattern in ("*.md", "*.py", "*.yml", "*.yaml", "*.libsonnet", "*.toml")
        for path in ROOT.rglob(pattern)
        if not {".venv", ".git"} & set(path.relative_to(ROOT).parts[:1]) and path != Path(__file__)
    ]
    assert len(texts) > 50
    for path in texts:
        text = path.read_text(encoding="utf-8")
        for retired in RETIRED_COMMANDS:
            assert retired not in text, f"{path.relative_to(ROOT)} names {retired}"


# --- Imports -------------------------------------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def test_no_module_edits_sys_path() -> None:
    """Packages import each other by name; none reaches another by editing the search path."""
    files = _python_files()
    assert any(path.parts[-2] == "monitoring" for path in files)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} uses sys.path")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        pytest.param("benchmarks", "tests", id="benchmarks-import-no-tests"),
        pytest.param("exporter", "monitoring", id="the-exporter-imports-no-monitoring"),
        pytest.param("monitoring", "tests", id="monitoring-imports-no-tests"),
    ],
)
def test_a_package_does_not_import_another_it_must_not_need(package: str, forbidden: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        for module in _imported_modules(path):
            assert module.split(".")[0] != forbidden, f"{path.relative_to(ROOT)} imports {module}"


def test_monitoring_reads_of_the_exporter_only_its_declarations() -> None:
    """The generators describe the exporter from what it declares (its metric catalogue, its
    config keys, its job kinds) and read durations with its grammar; anything more would tie
    them to its internals."""
    allowed = {
        "exporter.exposition.catalogue",
        "exporter.config.durations",
        "exporter.config.reference",
        "exporter.kinds",
        "exporter.kinds.declaration",
    }
    used: set[str] = set()
    for path in sorted((ROOT / "monitoring").rglob("*.py")):
        used |= {module for module in _imported_modules(path) if module.startswith("exporter")}
    assert used == allowed


# --- The mixin -----------------------------------------------------------------------------------


def _filled(value: Any, config: dict[str, str]) -> Any:
    """What mixin.libsonnet does, in Python: each placeholder replaced by its config value."""
    if isinstance(value, str):
        for key, placeholder in PLACEHOLDERS.items():
            value = value.replace(placeholder, config[key])
        return value
    if isinstance(value, list):
        return [_filled(item, config) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, config) for key, item in value.items()}
    return value


def _templates() -> Any:
    """mixin/templates.libsonnet (JSON after its comment header)."""
    text = (ROOT / MIXIN_TEMPLATES).read_text(encoding="utf-8")
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("//")))


def _expected(settings: Settings) -> dict[str, Any]:
    return {
        "prometheusAlerts": {"groups": rule_groups(rules(settings))},
        "grafanaDashboards": build_dashboards(settings),
    }


def test_the_placeholders_of_the_mixin_stand_only_where_its_config_goes() -> None:
    settings = load_settings()
    templates = _templates()
    assert templates["config"] == mixin_config(settings)
    filled = _filled(
        {key: templates[key] for key in ("prometheusAlerts", "grafanaDashboards")},
        templates["config"],
    )
    assert filled == _expected(settings)


def jsonnet(expression: str) -> Any:
    """``expression`` evaluated by Debian's jsonnet, with mixin/ on the import path."""
    binary = shutil.which("jsonnet")
    if binary is None:
        message = "jsonnet not found; it comes with Debian's jsonnet package"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [binary, "-J", str(MIXIN), "-e", expression],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _mixin(config: str = "{}") -> str:
    return (
        f"local mixin = (import 'mixin.libsonnet') + {{ _config+:: {config} }}; "
        "{ prometheusAlerts: mixin.prometheusAlerts, grafanaDashboards: mixin.grafanaDashboards }"
    )


def test_the_mixin_gives_the_shipped_rules_and_dashboards() -> None:
    evaluated = jsonnet(_mixin())
    assert evaluated["prometheusAlerts"] == yaml.safe_load(
        (ROOT / RULE_FILE).read_text(encoding="utf-8")
    )
    shipped = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / DASHBOARDS).glob("*.json"))
    }
    assert evaluated["grafanaDashboards"] == shipped


def test_the_mixin_config_changes_the_rules_and_dashboards_as_the_thresholds_file_does() -> None:
    """``_config`` gives what a thresholds file with the same selector and links gives."""
    config = {
        "selector": 'job="my-job"',
        "grafanaURL": "https://grafana.example.com",
        "runbookURL": "https://wiki.example.com/milvus-jobs",
    }
    evaluated = jsonnet(_mixin(json.dumps({**config, "grafanaURL": config["grafanaURL"] + "/"})))
    assert evaluated == _expected(with_mixin_config(load_settings(), config))
    alerts = {rule["alert"]: rule for rule in evaluated["prometheusAlerts"]["groups"][0]["rules"]}
    assert alerts["MilvusJobsExporterDown"]["expr"] == 'up{job="my-job"} == 0\n'
    link = alerts["MilvusRefreshJobFailed"]["annotations"]["dashboard_url"]
    assert link.startswith("https://grafana.example.com/d/milvus-jobs-overview?")
    variables = evaluated["grafanaDashboards"]["milvus-jobs-exporter.json"]["templating"]["list"]
    job = next(variable for variable in variables if variable["name"] == "job")
    assert job["definition"] == 'label_values(milvus_jobs_exporter_build_info{job="my-job"}, job)'
    assert 'job="milvus-jobs"' not in json.dumps(evaluated)
