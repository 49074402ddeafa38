"""The CRM database connector: read each entity from an operational PostgreSQL CRM
incrementally, by its `updated_at` watermark, through the same checks as a landing file.

How a read goes, per entity (`load_from_source`):

- The watermark is the newest `updated_at` this warehouse has loaded from this source for
  the entity: `max(source_watermark)` over its batches in `audit.load_batches` that were not
  rejected. It moves only with a committed batch, in that batch's transaction, and a batch
  the landing checkpoint rejects takes its advance back with it.
- The read starts `overlap` before the watermark (30 minutes by default): a row whose
  transaction committed after newer rows were read carries an older `updated_at`, and the
  overlap picks it up. Rows raw already holds exactly are not loaded again, so the overlap
  (and a retry after a failure half-way) never duplicates anything.
- The read stops at a cutoff: the start of the pipeline run (every entity of a run stops
  at the same instant, so a purchase and its new customer are read together unless the
  customer changes again while the run reads), or the database's clock when called outside
  a run. Later changes, and rows dated in the future, wait for a later run; they never move
  the watermark ahead of rows not yet read.
- Rows come in chunks of `chunk_rows`, ordered by (`updated_at`, key) and paged by that
  position, each streamed by COPY into a CSV file on disk and loaded as one batch: memory
  stays bounded whatever the table's size, and a failure keeps the chunks committed before
  it; the retry goes on from there. Each chunk is its own short read-only statement (no
  transaction held open on the CRM while the warehouse loads): a row updated while the
  chunks are read moves past the cutoff and comes with the next run.
- Each chunk passes the source contract like a file (`ingest.load`): bad rows go to
  quarantine with the reason; the rest land in `raw.<entity>` as a new version.

Deletes: the CRM soft-deletes (`deleted_at` on every table, and `updated_at` moves with
it), so a delete arrives as an update and staging drops the key from the deletion on. A
row removed physically is not seen; docs/deployment.md says how to compare in full.

The CRM is only read: the session is read-only. An unreachable database is a
`RetryableError` before anything is written. A row that arrives before its parent (a
reference this warehouse does not know yet) is quarantined as `unknown_reference`; it loads
when a later read returns it (within the overlap, or once it changes), or when it is sent
again with `crm quarantine resubmit`.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from crm.errors import BadInputError, RetryableError
from crm.settings import Settings
from crm.sql import quote_identifier as _q
from crm.warehouse import connect
from ingest.batches import (
    EntityLoadResult,
    add_counts,
    already_recorded,
    batch_id_for,
    commit_batch,
    ensure_tables,
)
from ingest.checks import validate_batch
from ingest.contract import Entity
from ingest.files import (
    READ_TABLE,
    LandingFile,
    checksum,
    drop_temp_tables,
    read_into_source_table,
)
from ingest.mapping import EntityMapping
from ingest.personal import register_keyed_hash

#: The column every source table must have to be read incrementally.
WATERMARK_COLUMN = "updated_at"
#: The extract's copy of it (the contract may not have an updated_at of its own).
SOURCE_UPDATED_AT = "_source_updated_at"


def source_id(url: str, schema: str) -> str:
    """Which source a watermark belongs to: host, port, database and schema, no user or
    password (a different database starts from scratch)."""
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(url)
    host = parts.get("host", "localhost")
    return f"postgresql://{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}/{schema}"


def connect_source(url: str):
    """A read-only session on the CRM database, each statement on its own."""
    import psycopg2

    try:
        pg = psycopg2.connect(url, connect_timeout=10, application_name="crm-analytics ingest")
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RetryableError(f"cannot reach the CRM source database: {reason}") from exc
    pg.set_session(readonly=True, autocommit=True)
    with pg.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    return pg


def source_columns(cur, schema: str, table: str) -> dict[str, str] | None:
    """The table's columns and their types, or None when the source has no such table."""
    cur.execute(
        "SELECT column_name, format_type(a.atttypid, a.atttypmod) FROM "
        "information_schema.columns AS c JOIN pg_attribute AS a ON a.attrelid = "
        "format('%%I.%%I', c.table_schema, c.table_name)::regclass AND a.attname = c.column_name "
        "WHERE c.table_schema = %s AND c.table_name = %s ORDER BY c.ordinal_position",
        (schema, table),
    )
    return dict(cur.fetchall()) or None


def watermark(con, source: str, entity: str) -> datetime | None:
    """The newest updated_at loaded (and not rejected) from `source` for `entity`."""
    return con.execute(
        "SELECT max(source_watermark) FROM audit.load_batches WHERE source_id = ? "
        "AND entity = ? AND status IS DISTINCT FROM 'rejected'",
        [source, entity],
    ).fetchall()[0][0]


def extract_query(
    cur,
    schema: str,
    entity: Entity,
    columns: list[str],
    types: dict[str, str],
    since: datetime | None,
    until: datetime,
    after: tuple | None,
    limit: int,
) -> str:
    """The SELECT of one chunk, with its literals bound (COPY takes no parameters).
    `after` is the (updated_at, key...) position of the previous chunk's last row, as text,
    cast back to the source's own column types."""
    order = [WATERMARK_COLUMN, *entity.key]
    where, params = [f"{WATERMARK_COLUMN} < %s"], [until]
    if since is not None:
        where.append(f"{WATERMARK_COLUMN} >= %s")
        params.append(since)
    if after is not None:
        position = ", ".join(f"CAST(%s AS {types[c]})" for c in order)
        where.append(f"({', '.join(_q(c) for c in order)}) > ({position})")
        params.extend(after)
    select = ", ".join(_q(c) for c in columns)
    sql = (
        f"SELECT {select}, {WATERMARK_COLUMN} AS {SOURCE_UPDATED_AT} "
        f"FROM {_q(schema)}.{_q(entity.name)} WHERE {' AND '.join(where)} "
        f"ORDER BY {', '.join(_q(c) for c in order)} LIMIT {int(limit)}"
    )
    return cur.mogrify(sql, params).decode()


def load_from_source(
    entity: Entity,
    result: EntityLoadResult,
    url: str,
    run_id: str | None,
    settings: Settings,
    until: datetime | None = None,
) -> None:
    """Load what changed in the CRM database's table for `entity` since the watermark and
    before `until` (default: the database's clock now), adding the counts to `result`
    (one batch per chunk)."""
    schema = settings.source_schema
    source = source_id(url, schema)  # (libpq reads postgres:// as well)
    pg = connect_source(url)
    try:
        with pg.cursor() as cur:
            available = source_columns(cur, schema, entity.name)
            if available is None:
                if entity.required:
                    raise BadInputError(
                        f"the CRM database has no table {schema}.{entity.name}, which is "
                        "required (set CRM_SOURCE_SCHEMA if it lives in another schema)"
                    )
                return
            if WATERMARK_COLUMN not in available:
                raise BadInputError(
                    f"{schema}.{entity.name} has no {WATERMARK_COLUMN} column: it cannot be "
                    "read incrementally"
                )
            missing = [c for c in (*entity.key, *entity.required_columns) if c not in available]
            if missing:
                raise BadInputError(
                    f"{schema}.{entity.name} lacks required column(s) "
                    f"{', '.join(dict.fromkeys(missing))}; it has: {', '.join(available)}"
                )
            columns = [c for c in entity.column_names if c in available]
            if until is None:
                cur.execute("SELECT CAST(now() AT TIME ZONE 'utc' AS timestamp)")
                until = cur.fetchall()[0][0]
            read = _Read(entity, columns, available, source, until)
            _read_chunks(cur, read, result, run_id, settings)
    finally:
        pg.close()


@dataclass(frozen=True)
class _Read:
    entity: Entity
    columns: list[str]
    types: dict[str, str]
    source: str
    until: datetime


def _read_chunks(cur, read: _Read, result, run_id, settings) -> None:
    entity = read.entity
    con = connect(settings=settings, lock_timeout_s=60.0)
    register_keyed_hash(con, settings.personal_data_key_bytes())
    extracts = settings.home / "extracts"
    extracts.mkdir(parents=True, exist_ok=True)
    try:
        ensure_tables(con)
        last = watermark(con, read.source, entity.name)
        since = last - settings.source_overlap if last is not None else None
        after = None
        with tempfile.TemporaryDirectory(dir=extracts, prefix=f"{entity.name}_") as folder:
            for chunk in itertools.count():
                sql = extract_query(
                    cur,
                    settings.source_schema,
                    entity,
                    read.columns,
                    read.types,
                    since,
                    read.until,
                    after,
                    settings.source_chunk_rows,
                )
                path = Path(folder) / f"{entity.name}_{chunk:05d}.csv"
                with path.open("wb") as out:
                    cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)", out)
                counts, after = _commit_chunk(con, entity, path, read.source, run_id, settings)
                if counts is None:
                    break
                if counts["rows_loaded"] or counts["rows_quarantined"]:
                    result.files_loaded += 1
                add_counts(result, counts)
                if counts["rows_read"] < settings.source_chunk_rows:
                    break
                path.unlink()
        result.raw_rows_total = con.execute(f"SELECT count(*) FROM raw.{entity.name}").fetchall()[
            0
        ][0]
    finally:
        con.close()


def _commit_chunk(con, entity: Entity, path: Path, source: str, run_id, settings):
    """Check and commit one extracted chunk; (counts, paging position), or (None, None)
    when the chunk is empty."""
    stat = path.stat()
    probe = LandingFile(entity.name, path, path.name, stat.st_size, 0, origin="postgres")
    read = read_into_source_table(con, probe, entity, EntityMapping())
    if read.rows == 0:
        drop_temp_tables(con)
        return None, None
    order = ", ".join(_q(c) for c in (SOURCE_UPDATED_AT, *entity.key))
    first, newest_ts, *position = con.execute(
        f"SELECT (SELECT {SOURCE_UPDATED_AT} FROM {READ_TABLE} ORDER BY rowid LIMIT 1), "
        f"CAST({SOURCE_UPDATED_AT} AS TIMESTAMP), {order} "
        f"FROM {READ_TABLE} ORDER BY rowid DESC LIMIT 1"
    ).fetchall()[0]
    # the batch is named after the source, the range it covers and the run; its id also
    # carries the content's checksum: a retry of the run reading the same rows is the same
    # batch (replaced, or skipped when it loaded whole), another run's read a new one
    batch = LandingFile(
        entity.name,
        path,
        f"{source}/{entity.name} updated_at {first} .. {position[0]} (run {run_id})",
        stat.st_size,
        0,
        origin="postgres",
    )
    digest = checksum(path)
    if already_recorded(con, batch_id_for(batch, digest)):
        # exactly this range with exactly these rows was loaded before: nothing to do
        drop_temp_tables(con)
        rows = read.rows
        counts = {"rows_read": rows, "rows_loaded": 0, "rows_quarantined": 0}
        counts |= {"rows_unchanged": rows, "by_reason": {}, "ignored_columns": []}
        return counts, tuple(position)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    read = _without_watermark_column(read)
    validate_batch(
        con, entity, read.columns, loaded_at + settings.future_tolerance, EntityMapping()
    )
    counts = commit_batch(
        con,
        entity,
        batch,
        digest,
        read,
        loaded_at,
        run_id,
        skip_known=True,
        source_id=source,
        watermark=newest_ts,
    )
    return counts, tuple(position)


def _without_watermark_column(read):
    """The extract's `_source_updated_at` is load metadata, not an ignored source column."""
    return replace(
        read, ignored_columns=tuple(c for c in read.ignored_columns if c != SOURCE_UPDATED_AT)
    )
