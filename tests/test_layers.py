"""The package's layers import one way: each sub-package imports only what its ``__init__``
docstring says it may, nothing below the top imports the daemon, the CLI or the simulator, and no
module imports itself back through others (type-only imports included).

Read from the source with ``ast``, so the test sees every import, including the ones under
``if TYPE_CHECKING:`` and inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"

ALLOWED: dict[str, set[str]] = {
    "guards": set(),
    "exposition": set(),
    "upstream": {"guards"},
    "kinds": {"upstream", "exposition", "guards"},
    "config": {"kinds", "guards"},
    "web": {"config", "guards", "exposition"},
    "polling": {"kinds", "upstream", "config", "guards"},
    "memory": {"kinds", "polling", "upstream", "exposition", "config", "guards"},
    "metrics": {"kinds", "memory", "polling", "upstream", "exposition", "config", "guards"},
    "simulator": set(),
}
"""What each layer may import besides itself and the package root (``__version__``)."""
TOP = {"cli", "daemon", "log", "signals", "__main__", "commands"}
"""The top: the daemon, the CLI and the operator commands wire the layers together."""


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path) -> set[str]:
    """Every ``exporter`` module that ``module`` imports, as dotted names."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("exporter")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if not source.startswith("exporter"):
                continue
            if node.module or not node.level:
                found.add(source)  # ``from . import x`` runs the package face, but needs only x
            found |= {f"{source}.{alias.name}" for alias in node.names}  # a module imported by name
    known = {name for name, _ in _modules()}
    return {name for name in found if name in known and name != module}


GRAPH = {module: _imports(module, path) for module, path in _modules()}


def _layer(module: str) -> str:
    """The module's layer: a sub-package of ``ALLOWED``, ``top``, or ``root`` (the face)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    return parts[1] if parts[1] in ALLOWED else "top"


def _violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, imported in sorted(graph.items()):
        layer = _layer(module)
        for target in sorted(imported):
            other = _layer(target)
            if other in ("root", layer) and layer != "top":
                continue
            if layer in ALLOWED and other == "top":
                problems.append(f"{module} ({layer}) imports the top module {target}")
            elif layer in ALLOWED and other not in ALLOWED[layer]:
                problems.append(f"{module} ({layer}) may not import {target} ({other})")
            elif layer == "top" and other == "simulator" and module != "exporter.cli":
                problems.append(f"{module} reaches the simulator, which only the CLI may start")
    return problems


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_module_lives_in_a_layer_or_at_the_top() -> None:
    for module in GRAPH:
        if _layer(module) == "top":
            assert module.split(".")[1] in TOP, f"{module}: put it in a layer, or name it in TOP"


def test_every_layer_imports_only_what_its_docstring_allows() -> None:
    assert _violations(GRAPH) == []


def test_every_layer_says_what_it_is_and_what_it_may_import() -> None:
    for layer in ALLOWED:
        docstring = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
        assert docstring, layer
        for allowed in ALLOWED[layer]:
            assert f"``{allowed}``" in docstring, (layer, allowed)


def test_no_module_imports_itself_back_through_others() -> None:
    assert _circles(GRAPH) == []


@pytest.mark.parametrize(
    ("module", "imported", "problem"),
    [
        pytest.param(
            "exporter.polling.poller", "exporter.metrics.model", "may not import", id="upward"
        ),
        pytest.param("exporter.upstream.client", "exporter.daemon", "top module", id="top"),
        pytest.param("exporter.daemon", "exporter.simulator.core", "only the CLI", id="simulator"),
    ],
)
def test_the_checks_catch_an_import_running_back_up(
    module: str, imported: str, problem: str
) -> None:
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph[module].add(imported)
    assert any(problem in line for line in _violations(graph))


def test_the_circle_check_catches_a_circle() -> None:
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph["exporter.upstream.records"].add("exporter.upstream.client")
    circle = {"exporter.upstream.client", "exporter.upstream.records"}
    assert any(circle <= set(group) for group in _circles(graph))
