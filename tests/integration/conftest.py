"""Two CRMs, each generated and run through the real pipeline once per test session (also
when the session is split over xdist workers); tests that change state work on a copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from tests.conftest import run_crm

END = date(2026, 6, 1)
AS_OF = END - timedelta(days=1)
#: The date the shared `rerun` home backfills after AS_OF (long enough before it that
#: campaigns, open deals and refunds differ).
EARLIER = AS_OF - timedelta(days=200)


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
    """A clean 20,000-customer CRM after `crm demo` (generate, then `crm run` with training,
    scoring and activation), as of the generator's end date (so the model windows are the
    planted adoption windows)."""
    result = built_once(tmp_path_factory, "demo", _build_demo)
    result["as_of"] = date.fromisoformat(result["as_of"])
    return result


def _build_demo(home: Path) -> dict:
    """`crm demo`, the command `make run` runs, so the README's first command is tested."""
    proc = run_crm(
        "demo", "--customers", "20000", "--seed", "42", "--end", END.isoformat(), home=home
    )
    return {"stdout": proc.stdout, "as_of": END.isoformat()}


READER = r"""
import json, os, sys, time, duckdb
path, stop, out, mode = sys.argv[1:5]
seen, errors, checks = set(), [], 0


def check(con):
    run_id, counts = con.execute("SELECT run_id, table_rows FROM marts._snapshot").fetchone()
    for table, rows in json.loads(counts).items():
        name = table if "." in table else f"marts.{table}"  # activation.* come qualified
        got = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        if got != rows:
            errors.append(f"{run_id} {table}: {got} != {rows}")
    return run_id


# "hold": one connection open through the whole run, like a dashboard; it must keep reading
# the snapshot it opened, whole. "poll": reconnect again and again, like new BI queries.
# (Separate processes: DuckDB shares one database instance per path within a process.)
held = duckdb.connect(path, read_only=True) if mode == "hold" else None
while not os.path.exists(stop):
    try:
        if held is not None:
            seen.add(check(held))
        else:
            con = duckdb.connect(path, read_only=True)
            seen.add(check(con))
            con.close()
        checks += 1
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(0.05)
json.dump({"seen": sorted(seen), "errors": errors, "checks": checks}, open(out, "w"))
"""


ANALYST = r"""
import json, os, sys, time
from crm.errors import WarehouseLockedError
from crm.warehouse import connect, marts_fingerprint
stop, out, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
errors, checks, waited = [], 0, 0
# an analyst's read-only sessions on the warehouse itself: each waits while a writer holds
# the file, then must see every mart whole (a rerun of the date rebuilds the same content)
while not os.path.exists(stop):
    try:
        con = connect(read_only=True, lock_timeout_s=120)
        try:
            got = marts_fingerprint(con)
        finally:
            con.close()
        if got != expected:
            errors.append(sorted(k for k in expected if got.get(k) != expected[k]))
        checks += 1
    except WarehouseLockedError:
        waited += 1  # a writer held the file for two minutes: no answer, but no harm
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(3.0)  # an analyst's pace: each read holds the file a moment
json.dump({"errors": errors, "checks": checks, "waited": waited}, open(out, "w"))
"""


@pytest.fixture(scope="session")
def rerun(pipeline, tmp_path_factory):
    """A copy of the pipeline home after two more runs: AS_OF again (nothing new to load)
    while a BI tool polls and holds the snapshot and an analyst reads the warehouse, then
    `crm backfill` of EARLIER (an older date after a newer one). Every run's summary, in
    order, and what the readers saw."""
    return built_once(tmp_path_factory, "rerun", lambda home: _build_rerun(pipeline, home))


def _build_rerun(pipeline, home: Path) -> dict:
    import duckdb

    from crm.warehouse import marts_fingerprint

    shutil.rmtree(home)
    shutil.copytree(pipeline["home"], home)
    raw_before = {}
    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"), read_only=True)
    try:
        expected = marts_fingerprint(con)
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall():
            raw_before[table] = con.execute(f"SELECT count(*) FROM raw.{table}").fetchall()[0][0]
    finally:
        con.close()
    snapshot = home / "warehouse" / "bi" / "crm_marts.duckdb"
    work = home.parent / "readers"
    work.mkdir(exist_ok=True)
    stop = work / "stop"
    readers = {
        mode: subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                str(snapshot),
                str(stop),
                str(work / f"{mode}.json"),
                mode,
            ]
        )
        for mode in ("poll", "hold")
    }
    readers["analyst"] = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ANALYST,
            str(stop),
            str(work / "analyst.json"),
            json.dumps(expected),
        ],
        env={**os.environ, "CRM_HOME": str(home)},
    )
    try:
        time.sleep(2)
        again = run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=home)
        time.sleep(1)
    finally:
        stop.touch()
        for process in readers.values():
            process.wait(timeout=150)
    backfill = run_crm(
        "backfill",
        "--from",
        EARLIER.isoformat(),
        "--to",
        EARLIER.isoformat(),
        "--no-ml",
        home=home,
    )
    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"), read_only=True)
    try:
        runs = [
            json.loads(summary)
            for (summary,) in con.execute(
                "SELECT summary FROM audit.pipeline_runs WHERE status = 'success' "
                "ORDER BY finished_at"
            ).fetchall()
        ]
    finally:
        con.close()
    return {
        "again_stdout": again.stdout,
        "backfill_stdout": backfill.stdout,
        "raw_before": raw_before,
        "runs": runs,
        "readers": {k: json.loads((work / f"{k}.json").read_text()) for k in readers},
    }
