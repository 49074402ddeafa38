"""Connections to the DuckDB warehouse file.

DuckDB allows one read-write process or many read-only ones on a file, never both. Every
writer goes through `connect()`, which turns the lock conflict into a `WarehouseLockedError`
(retryable) instead of a raw IO error, and sets the session up the same way everywhere:
UTC, bounded memory, spill to a temp folder beside the file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from crm.errors import WarehouseLockedError
from crm.settings import Settings, get_settings
from crm.sql import quote_literal

SCHEMAS = ("raw", "staging", "intermediate", "marts", "ml", "audit")


def connect(
    read_only: bool = False,
    settings: Settings | None = None,
    lock_timeout_s: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; wait up to `lock_timeout_s` for another writer to let go."""
    settings = settings or get_settings()
    path = settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"the warehouse {path} is locked by another process; DuckDB allows one "
                    f"writer at a time. Close the other connection (a BI tool should read the "
                    f"published snapshot instead) and retry. DuckDB said: {exc}"
                ) from exc
            time.sleep(0.5)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    con.execute(f"SET memory_limit = {quote_literal(settings.duckdb_memory_limit)}")
    if not read_only:
        tmp = path.parent / "tmp"
        tmp.mkdir(exist_ok=True)
        con.execute(f"SET temp_directory = {quote_literal(tmp)}")
    return con


@contextmanager
def session(read_only: bool = False, settings: Settings | None = None) -> Iterator:
    """A connection that is closed (and its lock released) when the block ends."""
    con = connect(read_only=read_only, settings=settings, lock_timeout_s=30.0)
    try:
        yield con
    finally:
        con.close()


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


#: Columns that say when or by which run a row was written, not what it holds: left out
#: of fingerprints, so the same content written by two runs compares equal (`_as_of_date`
#: on an incremental fact is the run that last wrote the row).
RUN_COLUMNS = frozenset(
    {"run_id", "published_at", "validated_at", "loaded_at", "_loaded_at", "_batch_id"}
    | {"_as_of_date"}
)


def table_fingerprint(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    where: str = "",
    columns: list[str] | None = None,
) -> str:
    """`<rows>:<checksum>` of a table's content, independent of row order. Floating point
    columns are rounded to 9 decimals (a parallel sum may differ in the last bit).
    `columns`: only these (to compare a table with its state before columns were added)."""
    schema, table = relation.split(".")
    described = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    parts = [
        f'round("{name}", 9)' if kind in ("DOUBLE", "FLOAT", "REAL") else f'"{name}"'
        for name, kind in described
        if name not in RUN_COLUMNS and (columns is None or name in columns)
    ]
    rows, checksum = con.execute(
        f"SELECT count(*), coalesce(sum(hash({', '.join(parts)})::HUGEINT), 0) "
        f"FROM {relation} {'WHERE ' + where if where else ''}"
    ).fetchall()[0]
    return f"{rows}:{checksum}"


def marts_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The fingerprint of every table and view dbt builds in `marts`: what a run produced,
    to compare two runs."""
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
    ).fetchall()
    return {t: table_fingerprint(con, f"marts.{t}") for (t,) in tables}
