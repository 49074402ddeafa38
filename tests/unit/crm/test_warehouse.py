"""The warehouse file under concurrent use: a second writer gets a clear, retryable error
and nothing is damaged; fingerprints compare content, not row order or run ids."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from crm.errors import RetryableError, WarehouseLockedError
from crm.settings import get_settings
from crm.warehouse import connect, session, table_fingerprint

HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("INSERT INTO t VALUES (2)")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_a_writer_lock_held_by_another_process_is_a_clear_retryable_error(crm_home):
    settings = get_settings()
    with session(settings=settings) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.warehouse_path), "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(WarehouseLockedError) as failure:
            connect(settings=settings, lock_timeout_s=1.0)
        assert time.monotonic() - started >= 1.0  # it waited for the lock first
        assert isinstance(failure.value, RetryableError)
        message = str(failure.value)
        assert "locked by another process" in message and "retry" in message
        # readers are refused too while a writer holds the file: BI reads the snapshot
        with pytest.raises(WarehouseLockedError):
            connect(read_only=True, settings=settings, lock_timeout_s=0.0)
    finally:
        holder.wait(timeout=30)
    # once the other writer is gone, the same call succeeds and nothing was damaged
    with session(settings=settings) as con:
        assert con.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]


def test_fingerprints_ignore_row_order_and_run_columns_but_not_content():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.a AS SELECT range AS id, range / 3 AS v, 'r1' AS run_id FROM range(100)"
    )
    con.execute(
        "CREATE TABLE marts.b AS SELECT id, v, 'r2' AS run_id FROM marts.a ORDER BY id DESC"
    )
    assert table_fingerprint(con, "marts.a") == table_fingerprint(con, "marts.b")
    con.execute("UPDATE marts.b SET v = v + 0.001 WHERE id = 7")
    assert table_fingerprint(con, "marts.a") != table_fingerprint(con, "marts.b")
    assert table_fingerprint(con, "marts.a", "id < 10").startswith("10:")
