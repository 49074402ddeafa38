"""Publish the marts as a read-only snapshot that BI tools can keep open during runs.

DuckDB lets one process write a file or many read it, never both, so a BI tool cannot sit
on the pipeline's own warehouse. After each successful run the marts are copied into a new
DuckDB file next to the published one (with activation's releases, `activation.*`), which
then replaces it with an atomic rename. A reader that opens `warehouse/bi/crm_marts.duckdb`
gets either the previous snapshot or the new one, whole: a connection already open keeps
reading the file it opened until it reconnects. The snapshot's `marts._snapshot` table says
which run and as-of date it holds and how many rows each table has.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from crm.files import fsync_path
from crm.settings import Settings, get_settings
from crm.sql import quote_identifier, quote_literal
from crm.tables import ACTIVATION_TABLES
from crm.warehouse import session

SCHEMA = "marts"
#: What the snapshot holds: the marts and activation's releases (`activation.*`; not the
#: inputs activation writes for the suppression rule).
PUBLISHED_SCHEMAS = (SCHEMA, "activation")
PUBLISHED_ACTIVATION = (*ACTIVATION_TABLES, "campaign_audience_latest")


def snapshot_path(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.warehouse_path.parent / "bi" / "crm_marts.duckdb"


def published_as_of(path: Path) -> str | None:
    """The as-of date of the snapshot at `path`, if there is one."""
    if not path.exists():
        return None
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return str(con.execute(f"SELECT max(as_of_date) FROM {SCHEMA}._snapshot").fetchone()[0])
    except duckdb.Error:
        return None
    finally:
        con.close()


def publish_snapshot(
    run_id: str, as_of: str, settings: Settings | None = None, republish: bool = False
) -> dict:
    """Copy every table and view of the published schemas into a new file, as tables, and
    swap it in.

    A backfill (a run for a date earlier than the published one) does not replace the
    snapshot: BI keeps showing the latest date, unless `republish` (rolling BI back to this
    date, after a later date was published by mistake).
    """
    settings = settings or get_settings()
    target = snapshot_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    current = published_as_of(target)
    if current and current > as_of and not republish:
        return {
            "path": str(target),
            "skipped": f"the published snapshot is for {current}",
            "seconds": round(time.perf_counter() - started, 3),
        }
    # Runs that write the warehouse hold the one-slot writer pool, so any staging file left
    # here is from a run that crashed: remove it before it piles up.
    for leftover in target.parent.glob(f".{target.name}.*"):
        leftover.unlink(missing_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    counts: dict[str, int] = {}
    try:
        with session(settings=settings) as con:
            relations = [
                (schema, table)
                for schema, table in con.execute(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    f"WHERE table_schema IN ({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) "
                    "ORDER BY 1, 2",
                    list(PUBLISHED_SCHEMAS),
                ).fetchall()
                if schema == SCHEMA or table in PUBLISHED_ACTIVATION
            ]
            con.execute(f"ATTACH {quote_literal(staging)} AS snapshot")
            try:
                for schema in PUBLISHED_SCHEMAS:
                    con.execute(f"CREATE SCHEMA snapshot.{schema}")
                for schema, table in relations:
                    name = f"{schema}.{quote_identifier(table)}"
                    # a view is copied as a table: the snapshot stands on its own
                    con.execute(f"CREATE TABLE snapshot.{name} AS SELECT * FROM {name}")
                    key = table if schema == SCHEMA else f"{schema}.{table}"
                    counts[key] = con.execute(f"SELECT count(*) FROM snapshot.{name}").fetchone()[0]
                published_at = datetime.now(UTC).replace(tzinfo=None)
                con.execute(
                    f"CREATE TABLE snapshot.{SCHEMA}._snapshot AS SELECT ? AS run_id, "
                    "CAST(? AS DATE) AS as_of_date, CAST(? AS TIMESTAMP) AS published_at, "
                    "? AS table_rows",
                    [run_id, as_of, published_at, json.dumps(counts)],
                )
                con.execute("CHECKPOINT snapshot")
            finally:
                con.execute("DETACH snapshot")
        with staging.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(staging, target)
        fsync_path(target.parent)
    finally:
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return {
        "path": str(target),
        "tables": len(counts),
        "rows": sum(counts.values()),
        "seconds": round(time.perf_counter() - started, 3),
    }
