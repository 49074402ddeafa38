"""The import rules of the layout (`../shared/STYLE.md`, README "Layout"), checked on the
source: imports run one way, from the command line and the DAGs down through the stages
in data-flow order to the core, and no module imports itself back through another.

Imports inside functions count: they are how a cycle hides. (import-linter checks the
same; this is the whole of it that the project needs, in fifty lines, with no tool to
install.)
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from crm.settings import REPO_ROOT

#: Lower ranks are imported by higher ones, never the other way round. `datagen` writes
#: what ingestion reads (it uses the contract); the CLI and the DAGs are the top.
RANKS = {
    "crm": 0,
    "ingest": 1,
    "datagen": 1.5,
    "expectations": 2,
    "ml": 3,
    "activation": 4,
    "crm.cli": 5,
    "dags": 5,
}


def _layer(module: str) -> str:
    return (
        "crm.cli" if module == "crm.cli" or module.startswith("crm.cli.") else module.split(".")[0]
    )


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("crm", "ingest", "datagen", "expectations", "ml", "activation", "dags"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports() -> dict[str, set[str]]:
    """module -> the project's modules it imports, anywhere in its body."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_imports_run_down_the_layers():
    upward = sorted(
        f"{a} imports {b}"
        for a, targets in _imports().items()
        for b in targets
        if RANKS[_layer(b)] > RANKS[_layer(a)]
    )
    assert not upward, "\n".join(upward)


def test_nothing_but_the_command_line_imports_it():
    users = sorted(
        f"{a} imports {b}"
        for a, targets in _imports().items()
        for b in targets
        if _layer(b) == "crm.cli" and _layer(a) != "crm.cli"
    )
    assert not users, "\n".join(users)


def test_no_module_imports_itself_back():
    graph = _imports()
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join(path[path.index(module) :] + [module]))
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "\n".join(sorted(set(cycles)))
