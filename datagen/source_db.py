"""Write a generated CRM into a PostgreSQL database shaped like an operational CRM.

One table per contract entity in its own schema (`crm` unless told otherwise), with the
entity's key as primary key, the contract references as foreign keys, and the two columns
an operational CRM keeps on every table: `updated_at` (NOT NULL, set on insert and, by a
trigger, on every update that does not set it itself) and `deleted_at` (soft delete). An
operational database holds one current row per key, so the generated rows load as they
are (the generator writes one version per key).

This is the source `ingest/database.py` reads; `crm generate --target postgres` calls it.
Rows load with COPY, parents before children, in one transaction: the schema is replaced
whole or not at all, and only a schema this module made (marked by its comment).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crm.errors import CrmError
from crm.sql import quote_identifier as _q
from ingest.contract import DELETED_AT, ENTITIES, LOAD_ORDER, Entity

#: PostgreSQL types for the contract's logical types (money stays exact, to the cent).
PG_TYPES = {
    "text": "text",
    "timestamp": "timestamp",
    "date": "date",
    "money": "numeric(18,2)",
    "number": "double precision",
    "integer": "bigint",
    "boolean": "boolean",
}
#: The comment that marks a schema as generated demo data, which may be replaced.
SCHEMA_MARK = "crm-analytics demo CRM (crm generate --target postgres)"
#: Rows per COPY, so a 28-million-row table never sits in memory as one CSV text.
COPY_ROWS = 500_000
#: Timestamps are UTC without a zone, as in the warehouse.
NOW_UTC = "(now() AT TIME ZONE 'utc')"


def table_ddl(schema: str, entity: Entity) -> list[str]:
    """CREATE TABLE (with primary and foreign keys) and the updated_at trigger."""
    table = f"{_q(schema)}.{_q(entity.name)}"
    columns = []
    for col in entity.columns:
        if col.name in ("updated_at", DELETED_AT):
            continue
        null = " NOT NULL" if col.required or col.name in entity.key else ""
        columns.append(f"{_q(col.name)} {PG_TYPES[col.type]}{null}")
    columns.append(f"updated_at timestamp NOT NULL DEFAULT {NOW_UTC}")
    columns.append(f"{DELETED_AT} timestamp")
    columns.append(f"PRIMARY KEY ({', '.join(_q(k) for k in entity.key)})")
    for ref in entity.references:
        parent = ENTITIES[ref.parent]
        if parent.key != (ref.parent_column,):
            continue
        columns.append(
            f"FOREIGN KEY ({_q(ref.column)}) REFERENCES {_q(schema)}.{_q(ref.parent)} "
            f"({_q(ref.parent_column)})"
        )
    return [
        f"CREATE TABLE {table} (\n    " + ",\n    ".join(columns) + "\n)",
        # the watermark reads by updated_at: keep an index on it, as a CRM that is read
        # incrementally would
        f"CREATE INDEX ON {table} (updated_at)",
        f"CREATE TRIGGER {_q(entity.name + '_touch')} BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {_q(schema)}.touch_updated_at()",
    ]


def _touch_function(schema: str) -> str:
    return f"""
        CREATE FUNCTION {_q(schema)}.touch_updated_at() RETURNS trigger AS $$
        BEGIN
            -- an update that does not set updated_at itself gets the time of the change
            IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
                NEW.updated_at := {NOW_UTC};
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
    """


def _fill_updated_at(entity: Entity, table: pa.Table, loaded: pa.Scalar) -> pa.Table:
    """Every row needs an updated_at in the source: the contract's own when the entity has
    one, else the time the row came to be (its event time), else the load time."""
    names = table.column_names
    if "updated_at" in names:
        column = table["updated_at"]
        if entity.event_time:
            column = pc.coalesce(column, table[entity.event_time])
        return table.set_column(
            names.index("updated_at"), "updated_at", pc.coalesce(column, loaded)
        )
    if entity.event_time and entity.event_time in names:
        return table.append_column("updated_at", pc.coalesce(table[entity.event_time], loaded))
    return table


def write_source_db(
    tables: dict[str, pa.Table],
    url: str,
    schema: str = "crm",
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Replace `schema` in the database at `url` with the generated tables; rows per table."""
    import psycopg2

    step = progress or (lambda _msg: None)
    counts: dict[str, int] = {}
    now = datetime.now(UTC).replace(tzinfo=None)
    loaded = pa.scalar(now, type=pa.timestamp("us"))
    con = psycopg2.connect(url, connect_timeout=10)
    try:
        with con, con.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(
                "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
                (schema,),
            )
            existing = cur.fetchall()
            if existing and existing[0][0] != SCHEMA_MARK:
                raise CrmError(
                    f"schema {schema} exists and was not made by crm generate: refusing to "
                    "replace it (set CRM_SOURCE_SCHEMA to another schema)"
                )
            cur.execute(f"DROP SCHEMA IF EXISTS {_q(schema)} CASCADE")
            cur.execute(f"CREATE SCHEMA {_q(schema)}")
            cur.execute(f"COMMENT ON SCHEMA {_q(schema)} IS %s", (SCHEMA_MARK,))
            cur.execute(_touch_function(schema))
            for name in LOAD_ORDER:
                entity = ENTITIES[name]
                for statement in table_ddl(schema, entity):
                    cur.execute(statement)
                table = tables.get(name)
                if table is None or table.num_rows == 0:
                    counts[name] = 0
                    continue
                step(f"load {name}")
                table = _fill_updated_at(entity, table, loaded)
                columns = ", ".join(_q(c) for c in table.column_names)
                copy = (
                    f"COPY {_q(schema)}.{_q(name)} ({columns}) FROM STDIN "
                    "WITH (FORMAT csv, HEADER true)"
                )
                for start in range(0, table.num_rows, COPY_ROWS):
                    buffer = io.BytesIO()
                    pacsv.write_csv(table.slice(start, COPY_ROWS), buffer)
                    buffer.seek(0)
                    cur.copy_expert(copy, buffer)
                counts[name] = table.num_rows
            cur.execute("ANALYZE")
    finally:
        con.close()
    return counts
