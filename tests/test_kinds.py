"""Every job kind is declared once (``exporter/kinds/``) and the machinery names none: a target
polls its own kind's list, the registry holds what the config, the commands and the model read,
and no central module spells a kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from exporter.config.loader import ClusterConfig, ConfigError, parse_config
from exporter.exposition.catalogue import CATALOGUE
from exporter.kinds import KINDS, UnknownKind, kind_named
from exporter.kinds.declaration import HISTORY, NEWEST_FINISHED
from exporter.polling.targets import Target

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ClusterConfig(name="prod", endpoint="http://127.0.0.1:1", token="secret-token")


@pytest.mark.parametrize(
    ("kind", "api"),
    [
        pytest.param("refresh", "external_collection/list", id="refresh"),
        pytest.param("import", "import/list", id="import"),
        pytest.param("restore", "snapshot/list", id="restore"),
    ],
)
def test_a_target_polls_its_own_kinds_list_never_another(kind: str, api: str) -> None:
    """``Target.api`` answered the import list for anything that was not a refresh: a third
    kind would have polled the wrong endpoint without a word (this failed for restore)."""
    assert Target(CLUSTER, "default", kind).api == api


def test_a_target_of_a_kind_nobody_declared_polls_nothing() -> None:
    with pytest.raises(UnknownKind):
        _ = Target(CLUSTER, "default", "export").api


CENTRAL_EXCEPTIONS = {"exporter/commands/arguments.py": 1}
"""Where a kind's name may be spelled outside ``exporter/kinds/``: the ``refresh`` command's
verb (one constant), which names a command, not a kind."""


def _kind_names_spelled(path: Path) -> list[int]:
    """The lines where ``path`` spells a kind's name as a string of its own."""
    names = set(KINDS.names)
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]


def test_no_central_module_names_a_kind() -> None:
    """The poller, keep rules, model, series, memory, state file, commands and config iterate
    over the declarations: a kind is named only in its own module (and the catalogue, the
    simulator's kinds)."""
    spelled = {}
    for path in sorted((ROOT / "exporter").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("exporter/kinds/", "exporter/simulator/")):
            continue
        if relative == "exporter/exposition/catalogue.py":
            continue
        lines = _kind_names_spelled(path)
        if len(lines) != CENTRAL_EXCEPTIONS.get(relative, 0):
            spelled[relative] = lines
    assert spelled == {}, "name the kind in exporter/kinds/ and read it from the declaration"


def test_the_check_catches_a_kind_spelled_in_central_code(tmp_path: Path) -> None:
    module = tmp_path / "poller.py"
    module.write_text('def api(kind):\n    return "a" if kind == "restore" else "b"\n')
    assert _kind_names_spelled(module) == [2]


def test_the_registry_names_each_kind_once_with_its_defaults() -> None:
    assert KINDS.names == ("refresh", "import", "restore")
    assert KINDS.defaults == ("refresh", "import")
    assert kind_named("restore").endpoints.describe == "snapshot/describe"
    assert {kind.memory for kind in KINDS} == {HISTORY, NEWEST_FINISHED}


def test_every_kind_exports_only_catalogue_metrics_named_after_it() -> None:
    for kind in KINDS:
        for metric in kind.series.metrics:
            assert metric in CATALOGUE, metric.name
            assert metric.name.startswith(kind.metric_prefix + "_"), metric.name


def test_a_kind_added_for_a_test_is_known_while_it_is_added_and_gone_after() -> None:
    from dataclasses import replace

    fake = replace(kind_named("restore"), name="fake", metric_prefix="milvus_fake")
    config = "clusters:\n  - {name: prod, endpoint: 'http://127.0.0.1:1', jobs: [fake]}\n"
    with KINDS.added(fake):
        assert kind_named("fake") is fake
        assert parse_config(config, "config.yaml", {}).clusters[0].jobs == ("fake",)
    with pytest.raises(UnknownKind):
        kind_named("fake")
    with pytest.raises(ConfigError, match="unknown job kind 'fake'"):
        parse_config(config, "config.yaml", {})


def test_a_kind_cannot_be_declared_twice() -> None:
    with pytest.raises(ValueError, match="declared already"), KINDS.added(kind_named("refresh")):
        pass


def test_restores_are_polled_only_where_a_cluster_names_them() -> None:
    text = (
        "clusters:\n"
        "  - {name: a, endpoint: 'http://127.0.0.1:1'}\n"
        "  - {name: b, endpoint: 'http://127.0.0.1:2', jobs: [refresh, import, restore]}\n"
    )
    first, second = parse_config(text, "config.yaml", {}).clusters
    assert first.jobs == ("refresh", "import")
    assert second.jobs == ("refresh", "import", "restore")
