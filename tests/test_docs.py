"""The docs stay true: links resolve, and every module, config key and alert is documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from exporter.config import reference
from exporter.config.loader import CLUSTER_KEYS, TOP_LEVEL_KEYS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {
        anchor(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{page.name}: no heading for #{fragment}"


def test_the_readme_layout_is_the_package_map() -> None:
    """README's Layout names every top module and every package; what a package holds is said
    by its ``__init__`` docstring, and every module says what it is in its own."""
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for module in sorted((ROOT / "exporter").glob("*.py")):
        if module.name != "__init__.py":
            assert re.search(rf"^ +{re.escape(module.name)} +\S", layout, re.MULTILINE), module
    for package in sorted((ROOT / "exporter").glob("*/__init__.py")):
        assert f"  {package.parent.name}/ " in layout, package.parent.name
    for module in sorted((ROOT / "exporter").rglob("*.py")):
        assert ast.get_docstring(ast.parse(module.read_text())), f"{module} says nothing of itself"


def test_every_config_key_is_in_the_configuration_reference() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for key in TOP_LEVEL_KEYS:
        assert f"| `{key}` |" in reference, key
    for key in CLUSTER_KEYS:
        assert f"| `clusters[].{key}` |" in reference, key


def test_the_keys_table_of_the_configuration_reference_is_generated_from_the_declarations() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert reference.page(text) == text, (
        "docs/configuration.md: the keys table is stale; run python -m monitoring generate"
    )


def test_a_stale_keys_table_is_rewritten_and_the_prose_kept() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text()
    stale = current.replace("| `max_retries` | `2` |", "| `max_retries` | `3` |")
    assert stale != current
    assert reference.page(stale) == current


def test_every_config_key_appears_in_the_example_config() -> None:
    example = (ROOT / "config.example.yaml").read_text()
    for key in (*TOP_LEVEL_KEYS, *CLUSTER_KEYS):
        assert re.search(rf"^[#\- ]*{key}:", example, re.MULTILINE), (
            f"config.example.yaml: no {key}"
        )


def test_every_alert_has_a_runbook_section() -> None:
    rules = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    runbook = anchors(ROOT / "docs" / "alerts.md")
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert anchor(rule["alert"]) in runbook, f"no runbook section for {rule['alert']}"
