"""Shared fixtures: every test gets its own CRM_HOME, so tests never share a warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

#: the xdist scheduler that keeps a shared home's tests in one worker (tests/shared_home.py)
pytest_plugins = ["tests.shared_home"]


@pytest.fixture
def crm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CRM_HOME for this test, set in the environment."""
    home = tmp_path / "crm_home"
    (home / "landing").mkdir(parents=True)
    monkeypatch.setenv("CRM_HOME", str(home))
    monkeypatch.delenv("CRM_MAPPING_FILE", raising=False)
    return home


def warehouse_query(home: Path, sql: str) -> list[tuple]:
    """Read the warehouse of `home` read-only, the way an analyst would."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


#: The PostgreSQL database tests may create schemas in (trust auth on this machine).
PG_TEST_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_query(
    statement: str, params=(), url: str = PG_TEST_URL, autocommit: bool = False
) -> list[tuple]:
    """Run one statement on PostgreSQL in its own committed transaction (or none, for
    CREATE DATABASE); its rows."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall() if cur.description else []
        if not autocommit:
            conn.commit()
        return rows
    finally:
        conn.close()


def run_crm(
    *args: str, home: Path, check: bool = True, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real `crm` command line in a subprocess against `home` (`env`: more
    variables)."""
    env = dict(os.environ, CRM_HOME=str(home), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "crm.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"crm {' '.join(args)} exited {proc.returncode}\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc
