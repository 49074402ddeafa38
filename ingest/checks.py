"""The contract's row checks as set-based SQL: every source column cast to its contract
type in the declared number format, each row's reasons to be held back (missing, bad type,
bad value, out of range, future date, duplicate key, unknown reference), and the contact
fields parsed. The result is a connection-local table that `ingest.batches.commit_batch`
writes out; nothing here writes the warehouse.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb

from crm.sql import quote_identifier as _q
from crm.sql import quote_literal as _lit
from ingest.contract import Column, Entity
from ingest.files import (
    SOURCE_TABLE,
    drop_temp_tables,
)
from ingest.mapping import ANY_OTHER_VALUE, EntityMapping
from ingest.personal import KEYED_HASH_FUNCTION, contact_problem_sql, parsed_contact_sql

#: Reason codes, in the order a row's primary reason is picked when it has several.
REASON_CODES = (
    "unparseable",
    "missing_required",
    "unmapped_value",
    "bad_type",
    "bad_value",
    "out_of_range",
    "future_date",
    "duplicate_key",
    "unknown_reference",
)

EARLIEST_DATE = "1900-01-01"
CHECKED_TABLE = "_landing_checked"


def ts_literal(value: datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


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


#: Runs of whitespace loose matching makes one space: ASCII, no-break and ideographic.
_SPACES = r"[\s\x{00A0}\x{3000}]+"


def _match_sql(text: str, values_match: str) -> str:
    """SQL for a value as the value map compares it. Map keys and allowed values go
    through the same SQL as the data (`_match_sql(_lit(key))`), so both sides are folded
    alike; `ingest.mapping.match_key` only finds keys given twice."""
    if values_match == "loose":
        return f"trim(lower(regexp_replace({text}, {_lit(_SPACES)}, ' ', 'g')))"
    return text


def _allowed_sql(text: str, values_match: str) -> str:
    """An allowed value compares without regard to case, and under loose matching to
    spaces too."""
    return _match_sql(text, values_match) if values_match == "loose" else f"lower({text})"


def _values_match(col: Column, mapping: EntityMapping) -> str:
    """A name key (keys_from_names) is folded on loading: its map compares loosely too."""
    return "loose" if col.name in mapping.keys_from_names else mapping.values_match


def _mapped_text(text: str, col: Column, mapping: EntityMapping) -> str:
    """SQL for the contract value of a source value under the column's value map: empty
    stays empty; a mapped value becomes its target; a value that already is a contract
    value (an allowed one, or for a column without a list one of the map's targets) stays,
    in the contract's spelling; any other value becomes the map's `*` target when it has
    one (`"*": "*"`: as it is), else stays as it is for `_unmapped_check` to hold back."""
    pairs = mapping.values[col.name]
    match = _values_match(col, mapping)
    key = _match_sql(text, match)
    whens = [f"WHEN {text} IS NULL THEN NULL"]
    whens += [
        f"WHEN {key} = {_match_sql(_lit(source), match)} THEN "
        + ("CAST(NULL AS VARCHAR)" if target is None else _lit(target))
        for source, target in pairs.items()
        if source != ANY_OTHER_VALUE
    ]
    if col.allowed:
        folded = _allowed_sql(text, match)
        whens += [
            f"WHEN {folded} = {_allowed_sql(_lit(a), match)} THEN {_lit(a)}" for a in col.allowed
        ]
    else:
        whens += [
            f"WHEN {key} = {_match_sql(_lit(t), match)} THEN {_lit(t)}"
            for t in sorted({t for t in pairs.values() if t not in (None, ANY_OTHER_VALUE)})
        ]
    default = pairs.get(ANY_OTHER_VALUE, ANY_OTHER_VALUE)
    otherwise = text
    if default != ANY_OTHER_VALUE:
        otherwise = "CAST(NULL AS VARCHAR)" if default is None else _lit(default)
    return f"CASE {' '.join(whens)} ELSE {otherwise} END"


def _unmapped_check(text: str, col: Column, mapping: EntityMapping, typed: str) -> str | None:
    """The `unmapped_value` message for a value its column's map does not name and that
    is not already a contract value: one of the column's allowed values; for another text
    column one of the map's targets; for a number or date, one that reads as such. None
    when the map says what becomes of every other value (`*`)."""
    pairs = mapping.values[col.name]
    if ANY_OTHER_VALUE in pairs:
        return None
    match = _values_match(col, mapping)
    key = _match_sql(text, match)
    known = [f"{key} IN ({', '.join(_match_sql(_lit(v), match) for v in pairs)})"]
    if col.allowed:
        folded = ", ".join(_allowed_sql(_lit(a), match) for a in col.allowed)
        known.append(f"{_allowed_sql(text, match)} IN ({folded})")
    elif col.type != "text":
        known.append(f"{typed} IS NOT NULL")
    else:
        targets = sorted({t for t in pairs.values() if t is not None})
        if targets:
            known.append(f"{key} IN ({', '.join(_match_sql(_lit(t), match) for t in targets)})")
    quoted = f"replace({text}, '''', '''''')"
    message = f"'{col.name} value ''' || {quoted} || ''' is not in the value mapping'"
    return f"CASE WHEN {text} IS NOT NULL AND NOT ({' OR '.join(known)}) THEN {message} END"


#: How `crm quarantine` finds each unmapped column and value in a reason text.
UNMAPPED_VALUE_PATTERN = r"(\w+) value '((?:[^']|'')*)' is not in the value mapping"


def unmapped_values_sql(relation: str, reason: str, by: tuple[str, ...] = ()) -> str:
    """SQL counting the rows of `relation` per column and value its `reason` texts name
    as unmapped (`by` columns first; most rows first), with UNMAPPED_VALUE_PATTERN as $1:
    what `crm quarantine` lists after a load and `crm check` before one."""
    keys = "".join(f"{c}, " for c in by)
    return (
        f"SELECT {keys}column_name, replace(quoted, '''''', '''') AS value, count(*) AS rows "
        f"FROM (SELECT {keys}unnest(regexp_extract_all({reason}, $1, 1)) AS column_name, "
        f"unnest(regexp_extract_all({reason}, $1, 2)) AS quoted FROM {relation} "
        f"WHERE {reason} LIKE '%is not in the value mapping%') "
        f"GROUP BY ALL ORDER BY {keys}column_name, rows DESC, value"
    )


def _canonical_sql(text: str, allowed: tuple[str, ...]) -> str:
    """An allowed value in its declared spelling whatever its case ('Won' is 'won';
    '潜在客户跟踪' stays as it is); any other value unchanged, for the bad_value check."""
    whens = " ".join(f"WHEN {_lit(a.lower())} THEN {_lit(a)}" for a in allowed)
    return f"CASE lower({text}) {whens} ELSE {text} END"


def _declared_time(text: str, kind: str, csv: dict) -> str | None:
    """SQL reading a date or timestamp in the declared formats (`csv.date_format`,
    `csv.timestamp_format`: strftime codes, the first that fits wins); None when none is
    declared (then ISO 8601 is read). A timestamp column also takes the date formats
    (midnight), a date column the timestamp formats (the day). A kind without a declared
    format of its own still reads ISO 8601 (a file may declare its dates only, and keep
    ISO timestamps). Nothing is guessed: 03/04/2026 under '%d/%m/%Y' is the 3rd of April;
    under '%Y-%m-%d' it is no date."""
    dates = list(csv.get("date_format") or [])
    stamps = list(csv.get("timestamp_format") or [])
    own, other = (stamps, dates) if kind == "timestamp" else (dates, stamps)
    if not own + other:
        return None
    sql_type = "TIMESTAMP" if kind == "timestamp" else "DATE"
    parsed = (
        f"CAST(try_strptime({text}, [{', '.join(_lit(f) for f in own + other)}]) AS {sql_type})"
    )
    if own:
        return parsed
    return f"coalesce({parsed}, TRY_CAST({text} AS {sql_type}))"


def _typed_expr(
    col: Column,
    source_type: str,
    number_format: dict | None = None,
    mapping: EntityMapping | None = None,
) -> str:
    """SQL turning the source column into the contract type; NULL where it cannot.

    Integers must be whole numbers (2.5 units is an error, not 3). Money is kept to the
    cent, as the contract's DECIMAL(18,2) says. A CSV file's mapping may declare its number
    format (`decimal_separator`, `thousands_separator`): "1.234,50" reads as 1234.50 with
    "," and "."; a value that does not fit the declared format is NULL, never reinterpreted.
    """
    ref = _q(col.name)
    source_type = source_type.upper()
    text = f"nullif(trim(CAST({ref} AS VARCHAR)), '')"
    if mapping and col.name in mapping.values:
        text = _mapped_text(text, col, mapping)
        if source_type != "VARCHAR":  # the map is on text: type it from there
            ref, source_type = text, "VARCHAR"
    if mapping and col.name in mapping.keys_from_names:
        text = _match_sql(text, "loose")  # a name as a key: trimmed, lower case, one space
    if col.allowed:
        text = _canonical_sql(text, col.allowed)
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
    if col.type in ("timestamp", "date") and source_type == "VARCHAR":
        declared = _declared_time(text, col.type, number_format)
        if declared:
            return declared
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
    entity: Entity,
    col: Column,
    source_type: str,
    typed: str,
    loaded_at: str,
    mapping: EntityMapping | None = None,
) -> list[tuple[str, str]]:
    """(reason code, SQL yielding a message or NULL) for one column."""
    name = col.name
    present = _present_expr(col, source_type)
    checks: list[tuple[str, str]] = []
    if col.required or name in entity.key:
        checks.append(
            ("missing_required", f"CASE WHEN NOT ({present}) THEN '{name} is missing' END")
        )
    pairs = (mapping.values.get(name) if mapping else None) or {}
    given = present
    if pairs:
        text = f"nullif(trim(CAST({_q(name)} AS VARCHAR)), '')"
        unmapped = _unmapped_check(text, col, mapping, typed)
        if unmapped:
            checks.append(("unmapped_value", unmapped))
        given = f"{_mapped_text(text, col, mapping)} IS NOT NULL"  # mapped to empty: none
    if col.type != "text":
        checks.append(
            (
                "bad_type",
                f"CASE WHEN {given} AND {typed} IS NULL THEN "
                f"'{name} is not a valid {col.type}: ' || left(CAST({_q(name)} AS VARCHAR), 40) "
                "END",
            )
        )
    # a value map's targets were checked against allowed; `"*": "*"` lets others through
    if col.allowed and (not pairs or pairs.get(ANY_OTHER_VALUE, "") == ANY_OTHER_VALUE):
        allowed = ", ".join(_lit(v) for v in col.allowed)
        checks.append(
            (
                "bad_value",
                f"CASE WHEN {typed} IS NOT NULL AND {typed} NOT IN ({allowed}) THEN "
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
    loaded_at_sql = ts_literal(future_bound)
    typed: dict[str, str] = {}
    checks: list[tuple[str, str]] = []
    for col in entity.columns:
        if col.name in present:
            typed[col.name] = _typed_expr(col, source_types[col.name], mapping.csv, mapping)
            checks += _row_checks(
                entity, col, source_types[col.name], typed[col.name], loaded_at_sql, mapping
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


def drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {CHECKED_TABLE}")
    drop_temp_tables(con)
