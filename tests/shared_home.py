"""A pytest-xdist scheduler that keeps the tests of one shared session home in one worker.

The modules whose tests read one expensive home (tests/integration/conftest.py builds it
once) declare it: `pytestmark = [..., pytest.mark.shared_home("demo")]`. Each group goes
to one worker whole, so its home is built once, and two groups build theirs side by side
on the two cores; every other test is scheduled on its own.

Why not xdist's own `xdist_group` marker with `--dist loadgroup`: under pytest 9.2 it
groups nothing (the node ids it rewrites are not the ones the scheduler sees;
pytest-xdist issue #1386). This plugin overrides `LoadScopeScheduling._split_scope`, a
private method: if a pytest-xdist upgrade removes it, the session stops here with that
message instead of silently building every home once per worker.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

MARKER = "shared_home"


@cache
def declared_group(module: Path) -> str | None:
    """The group a test module names in `pytest.mark.shared_home("...")`, read from its
    source (the scheduler runs in the controller, which collects nothing)."""
    if not module.is_file():
        return None
    for node in ast.walk(ast.parse(module.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == MARKER
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return str(node.args[0].value)
    return None


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): the module's tests share one session home (one worker)"
    )


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    if not hasattr(LoadScopeScheduling, "_split_scope"):
        raise RuntimeError(
            "pytest-xdist no longer has LoadScopeScheduling._split_scope, which "
            "tests/shared_home.py overrides to keep each shared home's tests in one worker "
            "(see pytest-xdist #1386): adapt the plugin, or try --dist loadgroup again"
        )
    root = Path(str(config.rootpath))

    class SharedHomeScheduling(LoadScopeScheduling):
        """Whole groups for the modules that declare one, single tests for the rest; the
        biggest groups start first (xdist orders scopes by size)."""

        def _split_scope(self, nodeid: str) -> str:
            group = declared_group(root / nodeid.split("::", 1)[0])
            return f"shared_home:{group}" if group else nodeid

    return SharedHomeScheduling(config, log)
