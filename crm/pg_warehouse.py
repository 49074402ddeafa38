"""The warehouse on PostgreSQL: dbt's `postgres` target builds the same models there.

Ingestion checks and loads every batch in DuckDB (set-based checks, quarantine, the batch
log); `sync_sources` then copies what dbt reads as sources, `raw.*` and
`ml.customer_lifetime_values`, into the PostgreSQL warehouse, each table replaced in one
transaction by COPY in chunks (bounded memory). dbt then builds staging, intermediate and
marts there with the same SQL (`crm.dbt.build` with `CRM_DBT_TARGET=postgres`).

The connection comes from the `CRM_PG_*` variables, as dbt's profile reads them.
"""

from __future__ import annotations

import io

import pyarrow.csv as pacsv

from crm.settings import Settings, get_settings
from crm.sql import quote_identifier as _q
from crm.tables import MOVED_OUT_OF_MARTS

#: Rows per COPY chunk.
CHUNK_ROWS = 500_000
#: DuckDB types that PostgreSQL spells differently.
_PG_TYPES = {
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
}


def pg_url(settings: Settings | None = None) -> str:
    """libpq URL of the PostgreSQL warehouse from the same settings dbt's profile reads."""
    from urllib.parse import quote

    s = settings or get_settings()
    auth = quote(s.pg_user, safe="") + (
        f":{quote(s.pg_password, safe='')}" if s.pg_password else ""
    )
    return f"postgresql://{auth}@{s.pg_host}:{s.pg_port}/{s.pg_database}"


def _pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return "numeric" + duck_type[len("DECIMAL") :]
    return _PG_TYPES.get(duck_type, "text")


def source_tables(con) -> list[tuple[str, str]]:
    """(schema, table) of what dbt reads as sources."""
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE (table_schema = 'raw' OR (table_schema = 'ml' "
        "AND table_name = 'customer_lifetime_values')) AND table_type = 'BASE TABLE' "
        "ORDER BY 1, 2"
    ).fetchall()
    return [(s, t) for s, t in rows]


def sync_sources(duck, url: str | None = None) -> dict[str, int]:
    """Replace each source table in PostgreSQL with DuckDB's; rows per table."""
    import psycopg2

    copied: dict[str, int] = {}
    pg = psycopg2.connect(url or pg_url(), connect_timeout=10)
    try:
        for schema, table in source_tables(duck):
            columns = duck.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
            target = f"{_q(schema)}.{_q(table)}"
            body = ", ".join(f"{_q(n)} {_pg_type(t)}" for n, t in columns)
            names = ", ".join(_q(n) for n, _ in columns)
            with pg, pg.cursor() as cur:  # one transaction per table
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
                cur.execute(f"DROP TABLE IF EXISTS {target} CASCADE")
                cur.execute(f"CREATE TABLE {target} ({body})")
                reader = duck.sql(f"SELECT {names} FROM {schema}.{_q(table)}").to_arrow_reader(
                    CHUNK_ROWS
                )
                rows = 0
                for batch in reader:
                    buffer = io.BytesIO()
                    pacsv.write_csv(batch, buffer)
                    buffer.seek(0)
                    cur.copy_expert(
                        f"COPY {target} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)",
                        buffer,
                    )
                    rows += batch.num_rows
                cur.execute(f"ANALYZE {target}")
            copied[f"{schema}.{table}"] = rows
    finally:
        pg.close()
    return copied


#: The role BI tools log in as: it reads the marts and nothing else.
BI_ROLE = "crm_bi"


def grant_bi_reader(url: str | None = None, role: str = BI_ROLE) -> None:
    """Create (once) the BI role and let it read `marts`, now and the tables dbt creates
    there later; it gets nothing on raw, staging, intermediate or ml, where personal data
    is in the clear. Its password, if any, comes from CRM_PG_BI_PASSWORD."""
    import psycopg2

    password = get_settings().pg_bi_password
    pg = psycopg2.connect(url or pg_url(), connect_timeout=10)
    try:
        with pg, pg.cursor() as cur:
            # roles are per server: another database (or a parallel run) may have made it
            cur.execute(
                "DO $$ BEGIN CREATE ROLE " + _q(role) + " LOGIN; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            if password:
                cur.execute(f"ALTER ROLE {_q(role)} PASSWORD %s", (password,))
            cur.execute("SELECT current_database()")
            database = cur.fetchall()[0][0]
            cur.execute(f"GRANT CONNECT ON DATABASE {_q(database)} TO {_q(role)}")
            cur.execute("CREATE SCHEMA IF NOT EXISTS marts")
            # what an older version built in marts and now builds elsewhere: not for BI
            for name in MOVED_OUT_OF_MARTS:
                cur.execute(f"DROP TABLE IF EXISTS marts.{_q(name)}")
            cur.execute(f"GRANT USAGE ON SCHEMA marts TO {_q(role)}")
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA marts TO {_q(role)}")
            cur.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA marts GRANT SELECT ON TABLES TO {_q(role)}"
            )
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ('raw', 'staging', "
                "'intermediate', 'features', 'audiences', 'ml', 'audit', 'public')"
            )
            for (schema,) in cur.fetchall():
                cur.execute(f"REVOKE ALL ON SCHEMA {_q(schema)} FROM {_q(role)}")
                cur.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {_q(schema)} FROM {_q(role)}")
            cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        pg.close()


def build_marts(as_of, settings=None) -> dict:
    """The marts on PostgreSQL for `as_of`: copy the sources over from the DuckDB
    warehouse, `dbt build --target postgres` (the same models and tests but the audience
    inputs), grant BI."""
    import time

    from crm.dbt import build, ensure_sources
    from crm.warehouse import connect

    settings = settings or get_settings()
    started = time.perf_counter()
    ensure_sources(settings)  # the stages as the pipelines file says now, not last build
    duck = connect(read_only=True, settings=settings, lock_timeout_s=60.0)
    try:
        copied = sync_sources(duck)
    finally:
        duck.close()
    synced = time.perf_counter()
    # the audience inputs are for activation, which reads the DuckDB warehouse; the
    # suppression rule reads tables only Python writes there
    result = build(
        as_of, exclude="path:models/audiences", settings=settings.replace(dbt_target="postgres")
    )
    grant_bi_reader()
    return {
        "sources": copied,
        "dbt": result.as_dict(),
        "sync_seconds": round(synced - started, 3),
        "dbt_seconds": round(time.perf_counter() - synced, 3),
    }
