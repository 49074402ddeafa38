"""Two CRMs, each generated and run through the real pipeline once per test session (also
when the session is split over xdist workers); tests that change state work on a copy."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from tests.conftest import run_crm

END = date(2026, 6, 1)
AS_OF = END - timedelta(days=1)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], dict]) -> dict:
    """`build(home)` run once for the whole session: xdist workers share the result through
    the session's base folder, and a worker may tear a session fixture down and set it up
    again between batches of tests, which would otherwise rebuild it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / f"shared_{name}"
    done = folder / "result.json"
    with FileLock(str(root / f"shared_{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            (folder / "home").mkdir(parents=True)
            result = build(folder / "home")
            done.write_text(json.dumps(result, default=str))
    result = json.loads(done.read_text())
    result["home"] = folder / "home"
    return result


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """A home with a dirty 3,000-customer CRM after one successful `crm run`."""
    return built_once(tmp_path_factory, "pipeline", _build_pipeline)


def _build_pipeline(home: Path) -> dict:
    run_crm(
        "generate",
        "--customers",
        "3000",
        "--seed",
        "21",
        "--end",
        END.isoformat(),
        "--dirty-rate",
        "0.01",
        "--quiet",
        home=home,
    )
    proc = run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=home)
    manifest = json.loads((home / "landing" / "_generation.json").read_text())
    return {"stdout": proc.stdout, "manifest": manifest}


def copy_home(pipeline, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(pipeline["home"], target)
    return target


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """A clean 20,000-customer CRM after `crm run` with training, scoring and activation, as
    of the generator's end date (so the model windows are the planted adoption windows)."""
    result = built_once(tmp_path_factory, "demo", _build_demo)
    result["as_of"] = date.fromisoformat(result["as_of"])
    return result


def _build_demo(home: Path) -> dict:
    run_crm(
        "generate",
        "--customers",
        "20000",
        "--seed",
        "42",
        "--end",
        END.isoformat(),
        "--quiet",
        home=home,
    )
    proc = run_crm("run", "--as-of", END.isoformat(), home=home)
    return {"stdout": proc.stdout, "as_of": END.isoformat()}
