"""One dirty demo CRM, generated and run through the real pipeline once per test session;
tests that change state work on a copy of its home."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import run_crm

END = date(2026, 6, 1)
AS_OF = END - timedelta(days=1)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """A home with a dirty 3,000-customer CRM after one successful `crm run`."""
    home = tmp_path_factory.mktemp("pipeline") / "home"
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
    return {"home": home, "stdout": proc.stdout, "manifest": manifest}


def copy_home(pipeline, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(pipeline["home"], target)
    return target


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """A clean 20,000-customer CRM after `crm run` with training and scoring, as of the
    generator's end date (so the model windows are the planted adoption windows)."""
    home = tmp_path_factory.mktemp("demo") / "home"
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
    return {"home": home, "stdout": proc.stdout, "as_of": END}
