"""The batch log and the tables ingestion owns: `raw.<entity>`, `audit.load_batches`,
`audit.quarantine`, `audit.nulled_values` (created in `crm/tables.py`). A checked batch is
committed here in one transaction; a batch the landing checkpoint turned down is taken
back out here too (the checkpoint gives its verdict, ingestion changes its own tables).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb

from crm import faults
from crm.sql import quote_identifier as _q
from crm.sql import quote_literal as _lit
from crm.tables import ensure_audit, ensure_raw
from crm.warehouse import ensure_schemas
from ingest.checks import CHECKED_TABLE, drop_work_tables, ts_literal
from ingest.contract import ENTITIES, Entity
from ingest.files import (
    REJECTS_TABLE,
    LandingFile,
    raw_rows_sql,
)

METADATA_COLUMNS = (
    ("_batch_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
)


@dataclass
class EntityLoadResult:
    entity: str
    files_found: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    #: Rows a database read returned again that raw (or quarantine) already held.
    rows_unchanged: int = 0
    #: Rows loaded with a value set to NULL (audit.nulled_values says which and why).
    rows_with_nulled_values: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    raw_rows_total: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if missing; add columns the contract gained since."""
    ensure_schemas(con)
    ensure_raw(
        con,
        {
            entity.name: [
                *((c.name, c.sql_type) for c in (*entity.columns, *entity.derived_columns)),
                *METADATA_COLUMNS,
            ]
            for entity in ENTITIES.values()
        },
    )
    ensure_audit(con)


def batch_id_for(file: LandingFile, digest: str) -> str:
    return hashlib.blake2b(
        f"{file.entity}|{file.relative_path}|{digest}".encode(), digest_size=8
    ).hexdigest()


def record_batch(
    con: duckdb.DuckDBPyConnection,
    batch_id: str,
    file: LandingFile,
    digest: str,
    counts: tuple[int, int, int],
    ignored_columns: tuple[str, ...] | None,
    loaded_at: datetime,
    run_id: str | None,
    note: str | None = None,
) -> None:
    con.execute("DELETE FROM audit.load_batches WHERE batch_id = ?", [batch_id])
    con.execute(
        "INSERT INTO audit.load_batches (batch_id, entity, source_file, file_format, file_size, "
        "file_mtime_ns, checksum, rows_read, rows_loaded, rows_quarantined, ignored_columns, "
        "loaded_at, run_id, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id,
            file.entity,
            file.relative_path,
            file.source_format,
            file.size,
            file.mtime_ns,
            digest,
            *counts,
            json.dumps(list(ignored_columns)) if ignored_columns else None,
            loaded_at,
            run_id,
            note,
        ],
    )


def already_loaded(con: duckdb.DuckDBPyConnection, file: LandingFile) -> str | None:
    """The batch id of this exact file if it was loaded before (cheap check first)."""
    row = con.execute(
        "SELECT batch_id FROM audit.load_batches WHERE entity = ? AND source_file = ? "
        "AND file_size = ? AND file_mtime_ns = ? AND status IS DISTINCT FROM 'rejected'",
        [file.entity, file.relative_path, file.size, file.mtime_ns],
    ).fetchone()
    return row[0] if row else None


def already_recorded(con: duckdb.DuckDBPyConnection, batch_id: str) -> bool:
    """The batch is in the batch log, was not rejected and quarantined nothing (a batch
    with quarantined rows is checked again: a missing parent may have arrived)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM audit.load_batches WHERE batch_id = ? "
            "AND status IS DISTINCT FROM 'rejected' AND rows_quarantined = 0",
            [batch_id],
        ).fetchall()[0][0]
    )


def _drop_known_rows(con: duckdb.DuckDBPyConnection, entity: Entity, columns, batch_id: str) -> int:
    """Take out of CHECKED_TABLE the rows raw or quarantine already hold exactly: a source
    read again over an overlap, or after a failed attempt, adds no second copy.

    With a version column a row is known when the same version was loaded; without one,
    only the key's latest loaded row counts (a value that changes back, A -> B -> A, is a
    change). Rows are compared after this read's checks: a row once quarantined for an
    unknown parent that now finds its parent is valid and loads; one still failing the
    same way is not quarantined twice."""
    before = con.execute(f"SELECT count(*) FROM {CHECKED_TABLE}").fetchall()[0][0]
    same = " AND ".join(
        f"r.{_q(c)} = c.{_q(c)}" if c in entity.key else f"r.{_q(c)} IS NOT DISTINCT FROM c.{_q(c)}"
        for c in columns
    )
    held = f"(SELECT * FROM raw.{entity.name} WHERE _batch_id <> {_lit(batch_id)})"
    if not entity.version_column:
        keys = ", ".join(_q(k) for k in entity.key)
        held = (
            f"(SELECT * FROM {held} QUALIFY row_number() OVER (PARTITION BY {keys} "
            "ORDER BY _loaded_at DESC, _row_number DESC) = 1)"
        )
    con.execute(
        f"DELETE FROM {CHECKED_TABLE} AS c WHERE c._reason = '' AND EXISTS "
        f"(SELECT 1 FROM {held} AS r WHERE {same})"
    )
    known_rejects = (
        "SELECT _row_number FROM ("
        + raw_rows_sql(f"SELECT _row_number FROM {CHECKED_TABLE} WHERE _reason <> ''")
        + ") AS j WHERE CAST(j._raw AS VARCHAR) IN (SELECT raw_row FROM audit.quarantine "
        f"WHERE entity = {_lit(entity.name)} AND raw_row IS NOT NULL "
        f"AND batch_id <> {_lit(batch_id)})"
    )
    con.execute(f"DELETE FROM {CHECKED_TABLE} WHERE _row_number IN ({known_rejects})")
    return before - con.execute(f"SELECT count(*) FROM {CHECKED_TABLE}").fetchall()[0][0]


def _quarantine_conflicting_copies(
    con: duckdb.DuckDBPyConnection, entity: Entity, columns, batch_id: str
) -> None:
    """A row whose key and version another batch already loaded with other values is a
    `duplicate_key`, as two such rows in one file are: which copy holds is not clear, so
    neither file's order decides it silently. (An identical copy, an overlapping export,
    is no conflict.)"""
    version = entity.version_column
    if not version:
        return
    keys = " AND ".join(f"r.{_q(k)} = c.{_q(k)}" for k in entity.key)
    same_version = f"r.{_q(version)} IS NOT DISTINCT FROM c.{_q(version)}"
    if version not in columns:
        same_version = f"r.{_q(version)} IS NULL"
    other_values = " OR ".join(
        f"r.{_q(col)} IS DISTINCT FROM c.{_q(col)}"
        for col in columns
        if col not in entity.key and col != version
    )
    if not other_values:
        return
    key_text = " and ".join(entity.key)
    con.execute(
        f"""
        UPDATE {CHECKED_TABLE} AS t
        SET _reason_code = 'duplicate_key',
            _reason = 'same {key_text} and {version} as ' || m.first_copy
                      || ', with other values: which copy holds is not clear'
        FROM (
            SELECT c._row_number,
                   min(r._source_file || ' row ' || CAST(r._row_number AS VARCHAR))
                       AS first_copy
            FROM {CHECKED_TABLE} AS c
            JOIN raw.{entity.name} AS r ON {keys} AND {same_version}
            WHERE c._reason = '' AND r._batch_id <> {_lit(batch_id)} AND ({other_values})
            GROUP BY c._row_number
        ) AS m
        WHERE t._row_number = m._row_number
        """
    )


def commit_batch(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    file: LandingFile,
    digest: str,
    read,
    loaded_at: datetime,
    run_id: str | None,
    skip_known: bool = False,
    source_id: str | None = None,
    watermark: datetime | None = None,
) -> dict:
    """Write the checked batch in CHECKED_TABLE in one transaction: valid rows to raw,
    rejected rows to quarantine, the batch (with its source watermark, for a database
    extract) to audit.load_batches. `skip_known` leaves out rows already held."""
    batch_id = batch_id_for(file, digest)
    try:
        unchanged = _drop_known_rows(con, entity, read.columns, batch_id) if skip_known else 0
        _quarantine_conflicting_copies(con, entity, read.columns, batch_id)
    except BaseException:
        drop_work_tables(con)
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        meta = f"{_lit(batch_id)}, {_lit(file.relative_path)}"
        rejected = f"SELECT _row_number FROM {CHECKED_TABLE} WHERE _reason <> ''"
        ts = ts_literal(loaded_at)
        con.execute(f"DELETE FROM raw.{entity.name} WHERE _batch_id = ?", [batch_id])
        con.execute("DELETE FROM audit.quarantine WHERE batch_id = ?", [batch_id])
        con.execute("DELETE FROM audit.load_batches WHERE batch_id = ?", [batch_id])
        con.execute("DELETE FROM audit.nulled_values WHERE batch_id = ?", [batch_id])
        names = (*entity.column_names, *(c.name for c in entity.derived_columns))
        cols = ", ".join(_q(c) for c in names)
        con.execute(
            f"""
            INSERT INTO raw.{entity.name} ({cols}, _batch_id, _source_file, _row_number, _loaded_at)
            SELECT {cols}, {meta}, _row_number, {ts}
            FROM {CHECKED_TABLE} WHERE _reason = ''
            """
        )
        con.execute(
            f"""
            INSERT INTO audit.nulled_values
            SELECT {_lit(entity.name)}, {meta}, _row_number, _note, {ts},
                   {_lit(run_id) if run_id else "NULL"}
            FROM {CHECKED_TABLE} WHERE _reason = '' AND _note <> ''
            """
        )
        con.execute(
            f"""
            INSERT INTO audit.quarantine
            SELECT {_lit(entity.name)}, {meta}, c._row_number, c._reason_code, c._reason,
                   CAST(r._raw AS VARCHAR), {ts}, {_lit(run_id) if run_id else "NULL"}
            FROM {CHECKED_TABLE} AS c
            JOIN ({raw_rows_sql(rejected)}) AS r USING (_row_number)
            WHERE c._reason <> ''
            """
        )
        if read.rejected_lines:
            con.execute(
                f"""
                INSERT INTO audit.quarantine
                SELECT {_lit(entity.name)}, {meta}, NULL, 'unparseable',
                       'line ' || line || ' of the file could not be parsed: ' || errors
                       || CASE WHEN bad_encoding
                               THEN ' - set csv.encoding in the mapping file' ELSE '' END,
                       to_json({{'line': csv_line}}), {ts}, {_lit(run_id) if run_id else "NULL"}
                FROM (  -- one row per source line, however many problems DuckDB found in it
                    SELECT line, any_value(csv_line) AS csv_line,
                           string_agg(DISTINCT error_type || ' (' || error_message || ')', '; ')
                               AS errors,
                           bool_or(error_type = 'INVALID ENCODING') AS bad_encoding
                    FROM {REJECTS_TABLE} GROUP BY line
                )
                """
            )
        loaded = con.execute(f"SELECT count(*) FROM {CHECKED_TABLE} WHERE _reason = ''").fetchone()[
            0
        ]
        by_reason = dict(
            con.execute(
                "SELECT reason_code, count(*) FROM audit.quarantine WHERE batch_id = ? "
                "GROUP BY 1 ORDER BY 1",
                [batch_id],
            ).fetchall()
        )
        quarantined = sum(by_reason.values())
        nulled = con.execute(
            "SELECT count(*) FROM audit.nulled_values WHERE batch_id = ?", [batch_id]
        ).fetchone()[0]
        rows_read = read.rows + read.rejected_lines
        if loaded + quarantined + unchanged != rows_read:
            raise AssertionError(
                f"{file.path}: {loaded} loaded + {quarantined} quarantined + {unchanged} "
                f"already held != {rows_read} read"
            )
        record_batch(
            con,
            batch_id,
            file,
            digest,
            (rows_read, loaded, quarantined),
            read.ignored_columns,
            loaded_at,
            run_id,
            note=f"{unchanged:,} row(s) already held, not loaded again" if unchanged else None,
        )
        if source_id is not None:
            con.execute(
                "UPDATE audit.load_batches SET source_id = ?, source_watermark = ? "
                "WHERE batch_id = ?",
                [source_id, watermark, batch_id],
            )
        faults.checkpoint("ingest.batches.before_commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        drop_work_tables(con)
    return {
        "rows_read": rows_read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "rows_unchanged": unchanged,
        "values_nulled": nulled,
        "by_reason": by_reason,
        "ignored_columns": list(read.ignored_columns),
    }


def add_counts(result: EntityLoadResult, counts: dict) -> None:
    """Add one committed batch's counts to the entity's result."""
    result.rows_read += counts["rows_read"]
    result.rows_loaded += counts["rows_loaded"]
    result.rows_quarantined += counts["rows_quarantined"]
    result.rows_unchanged += counts.get("rows_unchanged", 0)
    result.rows_with_nulled_values += counts.get("values_nulled", 0)
    for reason, n in counts["by_reason"].items():
        result.quarantined_by_reason[reason] = result.quarantined_by_reason.get(reason, 0) + n
    for col in counts["ignored_columns"]:
        if col not in result.ignored_columns:
            result.ignored_columns.append(col)


def reject_batches(con, reasons: dict[str, tuple[list[str], str]]) -> None:
    """Take batches back out of raw and quarantine and mark them rejected, all in one
    transaction: the marts never see them, and the next run checks the same files again.
    `reasons`: entity -> (batch ids, reason)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for entity, (batch_ids, reason) in reasons.items():
            ids = [list(batch_ids)]
            listed = "IN (SELECT unnest(?::VARCHAR[]))"
            con.execute(f"DELETE FROM raw.{entity} WHERE _batch_id {listed}", ids)
            con.execute(f"DELETE FROM audit.quarantine WHERE batch_id {listed}", ids)
            con.execute(f"DELETE FROM audit.nulled_values WHERE batch_id {listed}", ids)
            con.execute(
                f"UPDATE audit.load_batches SET status = 'rejected', note = ? "
                f"WHERE batch_id {listed}",
                [reason[:2000], *ids],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def mark_validated(con, batch_ids: list[str]) -> None:
    """Batches the landing checkpoint checked and kept: no later run checks them again."""
    if batch_ids:
        con.execute(
            "UPDATE audit.load_batches SET status = 'validated' "
            "WHERE batch_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(batch_ids)],
        )
