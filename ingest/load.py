"""Load landing files into the warehouse `raw` schema, one batch per file, checking every row.

A batch is one landing file's content: its id is derived from the entity, the path and a
checksum of the bytes, so delivering the same file again (or re-running the task) loads
nothing twice, while a changed file at the same path is a new batch. Raw is therefore an
append log of every version ever delivered; staging picks the version true on the as-of
date. Each batch is written in one transaction: its valid rows into `raw.<entity>`, its
rejected rows into `audit.quarantine` with the reason, its counts into `audit.load_batches`;
`loaded + quarantined = read` is asserted before commit.

All the row checks run as set-based SQL inside DuckDB, so a file of tens of millions of rows
never passes through Python.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from crm import faults
from crm.errors import BadInputError
from crm.settings import Settings, get_settings
from crm.sql import quote_identifier as _q
from crm.sql import quote_literal as _lit
from crm.warehouse import connect, ensure_schemas
from ingest.contract import ENTITIES, Column, Entity
from ingest.files import (
    REJECTS_TABLE,
    SOURCE_TABLE,
    LandingFile,
    checksum,
    discover,
    drop_temp_tables,
    raw_rows_sql,
    read_into_source_table,
)
from ingest.mapping import EntityMapping, load_mapping
from ingest.personal import (
    KEYED_HASH_FUNCTION,
    contact_problem_sql,
    parsed_contact_sql,
    register_keyed_hash,
)

METADATA_COLUMNS = (
    ("_batch_id", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
)

#: Reason codes, in the order a row's primary reason is picked when it has several.
REASON_CODES = (
    "unparseable",
    "missing_required",
    "bad_type",
    "bad_value",
    "out_of_range",
    "future_date",
    "duplicate_key",
    "unknown_reference",
)

EARLIEST_DATE = "1900-01-01"
CHECKED_TABLE = "_landing_checked"


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


def _ts_literal(value: datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


# --------------------------------------------------------------------------- tables


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if missing; add columns the contract gained since."""
    ensure_schemas(con)
    for entity in ENTITIES.values():
        columns = [(c.name, c.sql_type) for c in (*entity.columns, *entity.derived_columns)]
        columns += list(METADATA_COLUMNS)
        body = ", ".join(f"{_q(n)} {t}" for n, t in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{entity.name} ({body})")
        existing = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'raw' AND table_name = ?",
                [entity.name],
            ).fetchall()
        }
        for name, sql_type in columns:
            if name not in existing:
                con.execute(f"ALTER TABLE raw.{entity.name} ADD COLUMN {_q(name)} {sql_type}")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.load_batches (
            batch_id VARCHAR PRIMARY KEY,
            entity VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            file_format VARCHAR,
            file_size BIGINT,
            file_mtime_ns BIGINT,
            checksum VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            rows_loaded BIGINT NOT NULL,
            rows_quarantined BIGINT NOT NULL,
            ignored_columns VARCHAR,
            loaded_at TIMESTAMP NOT NULL,
            run_id VARCHAR,
            note VARCHAR
        )
        """
    )
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS note VARCHAR")
    # 'rejected' when the landing checkpoint (expectations/landing.py) took the batch back out
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS status VARCHAR")
    # database extracts (ingest/database.py): which source, and the newest updated_at read
    con.execute("ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS source_id VARCHAR")
    con.execute(
        "ALTER TABLE audit.load_batches ADD COLUMN IF NOT EXISTS source_watermark TIMESTAMP"
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.quarantine (
            entity VARCHAR NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            row_number BIGINT,
            reason_code VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            raw_row VARCHAR,
            quarantined_at TIMESTAMP NOT NULL,
            run_id VARCHAR
        )
        """
    )
    # values set to NULL on rows that loaded (a contact field that is not one address)
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS audit.nulled_values (
            entity VARCHAR NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            row_number BIGINT NOT NULL,
            reason VARCHAR NOT NULL,
            nulled_at TIMESTAMP NOT NULL,
            run_id VARCHAR
        )
        """
    )


# --------------------------------------------------------------------------- row checks


def _declared_number(text: str, decimal: str, thousands: str | None) -> str:
    """SQL reading `text` as a number written in the declared format, as plain text with a
    '.' decimal point; NULL when it does not fit (then the row is quarantined as bad_type).
    Nothing is guessed: with a decimal comma and no thousands separator declared, "49.98"
    is not a number (it would otherwise become 4998)."""
    d, sign = re.escape(decimal), "[+-]?"
    plain = f"{sign}[0-9]+({d}[0-9]+)?"
    pattern = plain
    if thousands:
        t = re.escape(thousands)
        pattern = f"{plain}|{sign}[0-9]{{1,3}}({t}[0-9]{{3}})+({d}[0-9]+)?"
    digits = f"replace({text}, {_lit(thousands)}, '')" if thousands else text
    if decimal != ".":
        digits = f"replace({digits}, {_lit(decimal)}, '.')"
    return f"CASE WHEN regexp_full_match({text}, {_lit(pattern)}) THEN {digits} END"


def _typed_expr(col: Column, source_type: str, number_format: dict | None = None) -> str:
    """SQL turning the source column into the contract type; NULL where it cannot.

    Integers must be whole numbers (2.5 units is an error, not 3). Money is kept to the
    cent, as the contract's DECIMAL(18,2) says. A CSV file's mapping may declare its number
    format (`decimal_separator`, `thousands_separator`): "1.234,50" reads as 1234.50 with
    "," and "."; a value that does not fit the declared format is NULL, never reinterpreted.
    """
    ref = _q(col.name)
    source_type = source_type.upper()
    text = f"nullif(trim(CAST({ref} AS VARCHAR)), '')"
    number_format = number_format or {}
    decimal = str(number_format.get("decimal_separator", "."))
    thousands = number_format.get("thousands_separator")
    if col.type in ("money", "number", "integer") and source_type == "VARCHAR":
        if decimal != "." or thousands:
            text = _declared_number(text, decimal, str(thousands) if thousands else None)
        if col.type == "integer":
            number = f"TRY_CAST({text} AS DOUBLE)"
            return f"CASE WHEN {number} = floor({number}) THEN TRY_CAST({number} AS BIGINT) END"
    if (
        col.type == "integer"
        and source_type in ("DOUBLE", "FLOAT", "REAL")
        or (col.type == "integer" and source_type.startswith("DECIMAL"))
    ):
        return f"CASE WHEN {ref} = floor({ref}) THEN TRY_CAST({ref} AS BIGINT) END"
    if col.contact:
        return parsed_contact_sql(col.contact, text)
    if col.type == "text":
        return text
    if col.type == "timestamp":
        if source_type.startswith("TIMESTAMP") or source_type == "DATE":
            return f"CAST({ref} AS TIMESTAMP)"
        return f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if col.type == "date":
        if source_type == "DATE" or source_type.startswith("TIMESTAMP"):
            return f"CAST({ref} AS DATE)"
        return f"coalesce(TRY_CAST({text} AS DATE), CAST(TRY_CAST({text} AS TIMESTAMP) AS DATE))"
    if col.type == "boolean":
        if source_type == "BOOLEAN":
            return ref
        return (
            f"CASE WHEN lower({text}) IN ('true', 't', 'yes', 'y', '1') THEN true "
            f"WHEN lower({text}) IN ('false', 'f', 'no', 'n', '0') THEN false END"
        )
    if source_type == "VARCHAR":
        return f"TRY_CAST({text} AS {col.sql_type})"
    return f"TRY_CAST({ref} AS {col.sql_type})"


def _present_expr(col: Column, source_type: str) -> str:
    """True when the file has a non-blank value for the column."""
    if source_type.upper() != "VARCHAR":
        return f"{_q(col.name)} IS NOT NULL"  # typed (Parquet, JSON): no text to trim
    return f"nullif(trim({_q(col.name)}), '') IS NOT NULL"


def _row_checks(
    entity: Entity, col: Column, source_type: str, typed: str, loaded_at: str
) -> list[tuple[str, str]]:
    """(reason code, SQL yielding a message or NULL) for one column."""
    name = col.name
    present = _present_expr(col, source_type)
    checks: list[tuple[str, str]] = []
    if col.required or name in entity.key:
        checks.append(
            ("missing_required", f"CASE WHEN NOT ({present}) THEN '{name} is missing' END")
        )
    if col.type != "text":
        checks.append(
            (
                "bad_type",
                f"CASE WHEN {present} AND {typed} IS NULL THEN "
                f"'{name} is not a valid {col.type}: ' || left(CAST({_q(name)} AS VARCHAR), 40) "
                "END",
            )
        )
    if col.allowed:
        allowed = ", ".join(_lit(v) for v in col.allowed)
        checks.append(
            (
                "bad_value",
                f"CASE WHEN {typed} IS NOT NULL AND lower({typed}) NOT IN ({allowed}) THEN "
                f"'{name} ''' || {typed} || ''' is not one of {', '.join(col.allowed)}' END",
            )
        )
    if col.minimum is not None:
        checks.append(
            (
                "out_of_range",
                f"CASE WHEN {typed} < {col.minimum} THEN "
                f"'{name} ' || CAST({typed} AS VARCHAR) || ' is below {col.minimum:g}' END",
            )
        )
    if col.maximum is not None:
        checks.append(
            (
                "out_of_range",
                f"CASE WHEN {typed} > {col.maximum} THEN "
                f"'{name} ' || CAST({typed} AS VARCHAR) || ' is above {col.maximum:,.0f}' END",
            )
        )
    if col.type in ("timestamp", "date"):
        checks.append(
            (
                "out_of_range",
                f"CASE WHEN {typed} < DATE '{EARLIEST_DATE}' THEN "
                f"'{name} ' || CAST({typed} AS VARCHAR) || ' is before {EARLIEST_DATE}' END",
            )
        )
    if col.not_future:
        bound = f"CAST({loaded_at} AS DATE)" if col.type == "date" else loaded_at
        checks.append(
            (
                "future_date",
                f"CASE WHEN {typed} > {bound} THEN "
                f"'{name} ' || CAST({typed} AS VARCHAR) || ' is in the future' END",
            )
        )
    return checks


def validate_batch(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    present: tuple[str, ...],
    future_bound: datetime,
    mapping: EntityMapping,
) -> None:
    """Build CHECKED_TABLE: typed contract columns plus `_reason_code` and `_reason`.

    `future_bound` is the latest believable timestamp: the load time plus a tolerance for
    clocks and time zones that are a little off.
    """
    source_types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {SOURCE_TABLE}").fetchall()}
    loaded_at_sql = _ts_literal(future_bound)
    typed: dict[str, str] = {}
    checks: list[tuple[str, str]] = []
    for col in entity.columns:
        if col.name in present:
            typed[col.name] = _typed_expr(col, source_types[col.name], mapping.csv)
            checks += _row_checks(
                entity, col, source_types[col.name], typed[col.name], loaded_at_sql
            )
        else:
            typed[col.name] = f"CAST(NULL AS {col.sql_type})"
    # Notes: a value set to NULL on a row that still loads (a contact field that is not
    # one address or number), recorded in audit.nulled_values.
    notes = [
        contact_problem_sql(
            col.contact,
            col.name,
            f"nullif(trim(CAST({_q(col.name)} AS VARCHAR)), '')",
            typed[col.name],
        )
        for col in entity.columns
        if col.contact and col.name in present
    ]
    for col in entity.derived_columns:
        source = typed[col.derived_from]
        typed[col.name] = (
            f"{KEYED_HASH_FUNCTION}({source})"
            if col.derived_from in present
            else (f"CAST(NULL AS {col.sql_type})")
        )
    checks.sort(key=lambda c: REASON_CODES.index(c[0]))
    # Each check is computed once, as a column _c<i> holding a message or NULL.
    check_columns = "".join(f", {sql} AS _c{i}" for i, (_, sql) in enumerate(checks))
    messages = ", ".join(f"_c{i}" for i in range(len(checks)))
    reason = f"concat_ws('; ', {messages})" if checks else "''"
    code = (
        "coalesce("
        + ", ".join(
            f"CASE WHEN _c{i} IS NOT NULL THEN '{c}' END" for i, (c, _) in enumerate(checks)
        )
        + ")"
        if checks
        else "CAST(NULL AS VARCHAR)"
    )
    columns = ", ".join(f"{expr} AS {_q(name)}" for name, expr in typed.items())
    names = ", ".join(_q(c) for c in typed)
    note = f"concat_ws('; ', {', '.join(notes)})" if notes else "''"
    names += ", _note"

    # Keys repeated within the batch: the first copy loads, later copies are duplicates.
    # A later *version* of a key (a different updated_at) is not a duplicate.
    partition = ", ".join(_q(k) for k in entity.key)
    if entity.version_column:
        partition += f", {_q(entity.version_column)}"
    key_text = " and ".join(entity.key)
    dup_reason = (
        f"'same {key_text}"
        + (f" and {entity.version_column}" if entity.version_column else "")
        + " as row ' || CAST(_first_row AS VARCHAR)"
    )

    reference_checks = []
    for ref in entity.references:
        parent_rows = con.execute(f"SELECT count(*) FROM raw.{ref.parent}").fetchone()[0]
        if ref.column not in present or parent_rows == 0:
            continue  # an absent parent entity is allowed; nothing to check against
        reference_checks.append(
            f"CASE WHEN t.{_q(ref.column)} IS NOT NULL AND NOT EXISTS ("
            f"SELECT 1 FROM raw.{ref.parent} p WHERE p.{_q(ref.parent_column)} = t.{_q(ref.column)}"
            f") THEN 'unknown {ref.column} ' || t.{_q(ref.column)} END"
        )
    ref_reason = (
        ("concat_ws('; ', " + ", ".join(reference_checks) + ")") if reference_checks else "''"
    )

    con.execute(f"DROP TABLE IF EXISTS {CHECKED_TABLE}")
    con.execute(
        f"""
        CREATE TEMP TABLE {CHECKED_TABLE} AS
        WITH checked AS (
            SELECT _row_number, {columns}{check_columns}, {note} AS _note FROM {SOURCE_TABLE}
        ),
        row_checked AS (
            SELECT _row_number, {names}, {code} AS _reason_code, {reason} AS _reason
            FROM checked
        ),
        ranked AS (
            SELECT *,
                   CASE WHEN _reason = '' THEN
                       row_number() OVER (PARTITION BY {partition}, _reason = ''
                                          ORDER BY _row_number) END AS _copy,
                   CASE WHEN _reason = '' THEN
                       min(_row_number) OVER (PARTITION BY {partition}, _reason = '') END
                       AS _first_row
            FROM row_checked
        ),
        deduplicated AS (
            SELECT _row_number, {names},
                   CASE WHEN _copy > 1 THEN 'duplicate_key' ELSE _reason_code END
                       AS _reason_code,
                   CASE WHEN _copy > 1 THEN {dup_reason} ELSE _reason END AS _reason
            FROM ranked
        ),
        referenced AS (
            SELECT t.*, CASE WHEN t._reason = '' THEN {ref_reason} ELSE '' END AS _ref_reason
            FROM deduplicated AS t
        )
        SELECT _row_number, {names},
               CASE WHEN _reason <> '' THEN _reason_code
                    WHEN _ref_reason <> '' THEN 'unknown_reference' END AS _reason_code,
               CASE WHEN _reason <> '' THEN _reason ELSE _ref_reason END AS _reason
        FROM referenced
        """
    )


# --------------------------------------------------------------------------- batches


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {CHECKED_TABLE}")
    drop_temp_tables(con)


def batch_id_for(file: LandingFile, digest: str) -> str:
    return hashlib.blake2b(
        f"{file.entity}|{file.relative_path}|{digest}".encode(), digest_size=8
    ).hexdigest()


def _record_batch(
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


def _already_loaded(con: duckdb.DuckDBPyConnection, file: LandingFile) -> str | None:
    """The batch id of this exact file if it was loaded before (cheap check first)."""
    row = con.execute(
        "SELECT batch_id FROM audit.load_batches WHERE entity = ? AND source_file = ? "
        "AND file_size = ? AND file_mtime_ns = ? AND status IS DISTINCT FROM 'rejected'",
        [file.entity, file.relative_path, file.size, file.mtime_ns],
    ).fetchone()
    return row[0] if row else None


def _load_file(
    con: duckdb.DuckDBPyConnection,
    file: LandingFile,
    entity: Entity,
    mapping: EntityMapping,
    run_id: str | None,
    reload: bool,
    future_tolerance: timedelta,
) -> tuple[str, dict | None]:
    """Load one file as a batch; returns ('skipped' | 'loaded', counts)."""
    if not reload and _already_loaded(con, file):
        return "skipped", None
    digest = checksum(file.path)
    batch_id = batch_id_for(file, digest)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    if not reload:
        same_bytes = con.execute(
            "SELECT batch_id, source_file FROM audit.load_batches WHERE entity = ? "
            "AND checksum = ? AND status IS DISTINCT FROM 'rejected' ORDER BY loaded_at LIMIT 1",
            [file.entity, digest],
        ).fetchone()
        if same_bytes and same_bytes[1] == file.relative_path:
            # Same file, new timestamp (copied or touched): remember the stat, load nothing.
            con.execute(
                "UPDATE audit.load_batches SET file_size = ?, file_mtime_ns = ? WHERE batch_id = ?",
                [file.size, file.mtime_ns, same_bytes[0]],
            )
            return "skipped", None
        if same_bytes:
            # The same bytes delivered again under another name: record it, load nothing.
            _record_batch(
                con,
                batch_id,
                file,
                digest,
                (0, 0, 0),
                None,
                loaded_at,
                run_id,
                note=f"same content as {same_bytes[1]}; not loaded again",
            )
            return "skipped", None

    # Read and check in temp tables first (connection-local); only the writes below form
    # the transaction, so a failure leaves raw, quarantine and the batch log untouched.
    try:
        read = read_into_source_table(con, file, entity, mapping)
        # a mapping's csv options (the number format among them) apply to CSV files only
        checked_as = mapping if file.format == "csv" else EntityMapping(columns=mapping.columns)
        validate_batch(con, entity, read.columns, loaded_at + future_tolerance, checked_as)
    except BaseException:
        _drop_work_tables(con)
        raise
    return "loaded", commit_batch(con, entity, file, digest, read, loaded_at, run_id)


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
        _drop_work_tables(con)
        raise
    con.execute("BEGIN TRANSACTION")
    try:
        meta = f"{_lit(batch_id)}, {_lit(file.relative_path)}"
        rejected = f"SELECT _row_number FROM {CHECKED_TABLE} WHERE _reason <> ''"
        ts = _ts_literal(loaded_at)
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
        _record_batch(
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
        faults.checkpoint("ingest.load.before_commit")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        _drop_work_tables(con)
    return {
        "rows_read": rows_read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "rows_unchanged": unchanged,
        "values_nulled": nulled,
        "by_reason": by_reason,
        "ignored_columns": list(read.ignored_columns),
    }


def load_entity(
    entity_name: str,
    run_id: str | None = None,
    settings: Settings | None = None,
    reload: bool = False,
    source_url: str | None = None,
    source_until: datetime | None = None,
) -> EntityLoadResult:
    """Load every new landing file of one entity into `raw.<entity_name>`, then, when a CRM
    database is configured (`source_url`), what changed there since the last read and
    before `source_until` (the run's start, so that every entity stops at one instant)."""
    settings = settings or get_settings()
    entity = ENTITIES[entity_name]
    started = time.perf_counter()
    result = EntityLoadResult(entity=entity_name)
    files = discover(settings.landing, entity_name)
    result.files_found = len(files)
    # A broken mapping file fails here, before anything loads.
    mapping = load_mapping(settings.mapping_path).for_entity(entity_name)
    con = connect(settings=settings, lock_timeout_s=60.0)
    try:
        ensure_tables(con)
        register_keyed_hash(con, settings.personal_data_key_bytes())
        for file in files:
            status, counts = _load_file(
                con, file, entity, mapping, run_id, reload, settings.future_tolerance
            )
            if status == "skipped":
                result.files_skipped += 1
                continue
            result.files_loaded += 1
            add_counts(result, counts)
        result.raw_rows_total = con.execute(f"SELECT count(*) FROM raw.{entity_name}").fetchone()[0]
    finally:
        con.close()
    if source_url:
        from ingest.database import load_from_source

        # (sets raw_rows_total again, after its batches)
        load_from_source(
            entity, result, source_url, run_id=run_id, settings=settings, until=source_until
        )
    if entity.required and result.raw_rows_total == 0:
        where = f"files in {settings.landing / entity_name}"
        if source_url:
            where += f" or rows in the CRM database table {settings.source_schema}.{entity_name}"
        raise BadInputError(
            f"{entity_name} is required but nothing was loaded: put CSV, Parquet or JSON lines "
            + where
            + (" (all rows were quarantined; see audit.quarantine)" if result.rows_read else "")
        )
    result.seconds = round(time.perf_counter() - started, 3)
    return result


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
