"""What ingestion held back, in words, and the way back in for rows a person has fixed.

`audit.quarantine` keeps every rejected row with its reason and the row exactly as it was
read (JSON, the file's own column names). `summary` and `rows` read it for `crm
quarantine`; `export` writes the held-back rows of an entity as a CSV to fix by hand;
`resubmit` puts a fixed file into the entity's landing folder, where the next run loads it
like any delivery (rows still wrong are quarantined again, with the new reason).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from crm.errors import BadInputError, CrmError
from crm.tables import ensure_audit

#: Each reason code: what it means and what to do about it.
REASONS = {
    "missing_required": (
        "a value the contract requires is empty",
        "fill the value in (or fix the export that drops it) and resubmit",
    ),
    "bad_type": (
        "a value does not parse as the column's type (number, date, timestamp)",
        "correct the value; for a decimal comma set csv.decimal_separator in the mapping file",
    ),
    "unmapped_value": (
        "a value the column's value map (mapping file, values:) does not name",
        "add it to the map (crm quarantine lists each one with its count), then resubmit: "
        "crm quarantine export ENTITY --reason unmapped_value, crm quarantine resubmit",
    ),
    "bad_value": (
        "a value is not one the contract allows (a status or channel outside the list)",
        "map it to an allowed value, or ask for the contract to be extended",
    ),
    "out_of_range": (
        "a number or date outside its plausible range (negative amount, date before 1900)",
        "correct the value at the source",
    ),
    "future_date": (
        "a date more than CRM_FUTURE_TOLERANCE_HOURS after the file was read",
        "fix the date or the time zone of the export",
    ),
    "duplicate_key": (
        "the same key and updated_at twice in one file; the first copy loaded",
        "nothing, unless the copies differ: then send the right one with a newer updated_at",
    ),
    "unknown_reference": (
        "it points at a customer, product, campaign, opportunity or rep never loaded",
        "deliver the parent record, then resubmit these rows",
    ),
    "unparseable": (
        "the line could not be split into columns (quoting, column count, encoding)",
        "repair the line; for another encoding set csv.encoding in the mapping file",
    ),
}
#: Columns `export` adds for the person fixing the rows; `resubmit` drops them again.
CONTEXT_PREFIX = "quarantine_"


def _known_entity(entity: str) -> None:
    from ingest.contract import ENTITIES

    if entity not in ENTITIES:
        raise BadInputError(f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")


def _has_quarantine(con) -> bool:
    from crm.warehouse import table_exists

    return table_exists(con, "audit", "quarantine")


def summary(con) -> pd.DataFrame:
    """Rows held back per entity and reason, with the files, when, and an example."""
    if not _has_quarantine(con):
        return pd.DataFrame(columns=["entity", "reason_code", "rows", "files", "example"])
    return con.execute(
        """
        SELECT entity, reason_code, count(*) AS rows, count(DISTINCT source_file) AS files,
               min(quarantined_at) AS first_seen, max(quarantined_at) AS last_seen,
               any_value(reason) AS example
        FROM audit.quarantine
        GROUP BY entity, reason_code
        ORDER BY entity, rows DESC
        """
    ).df()


def unmapped_values(con) -> pd.DataFrame:
    """Each value a value map did not name, per entity and column, with how many held-back
    rows carry it: what to add to the mapping file's `values:` section."""
    from ingest.checks import UNMAPPED_VALUE_PATTERN, unmapped_values_sql

    if not _has_quarantine(con):
        return pd.DataFrame(columns=["entity", "column_name", "value", "rows"])
    sql = unmapped_values_sql("audit.quarantine", "reason", by=("entity",))
    return con.execute(sql, [UNMAPPED_VALUE_PATTERN]).df()


def rows(con, entity: str, reason: str | None = None, limit: int | None = 20) -> pd.DataFrame:
    """The held-back rows of an entity (optionally of one reason), newest first."""
    _known_entity(entity)
    if not _has_quarantine(con):
        return pd.DataFrame(columns=["source_file", "row_number", "reason_code", "reason"])
    sql = (
        "SELECT source_file, row_number, reason_code, reason, raw_row, quarantined_at "
        "FROM audit.quarantine WHERE entity = ? AND (? IS NULL OR reason_code = ?) "
        "ORDER BY quarantined_at DESC, source_file, row_number"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, [entity, reason, reason]).df()


def export(con, entity: str, out: Path, reason: str | None = None) -> dict:
    """The held-back rows as a CSV with their original columns, plus the file, row and
    reason for the person fixing them. Lines that could not be split into columns have no
    columns to give back: their text goes, as it was, to `<out>.unparseable.txt` beside
    it. Returns the rows and lines written and where."""
    out = Path(out)
    held = rows(con, entity, reason, limit=None)
    lines = held[held["reason_code"] == "unparseable"]
    held = held[held["reason_code"] != "unparseable"]
    lines_file = out.with_name(out.stem + ".unparseable.txt") if len(lines) else None
    rows_file = out if len(held) or lines_file is None else None  # an empty CSV says "none"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if rows_file is not None:
            records = [json.loads(raw) for raw in held["raw_row"]]
            frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
            frame[f"{CONTEXT_PREFIX}file"] = held["source_file"].to_numpy()
            frame[f"{CONTEXT_PREFIX}row"] = held["row_number"].to_numpy()
            frame[f"{CONTEXT_PREFIX}reason"] = held["reason"].to_numpy()
            frame.to_csv(out, index=False)
        if lines_file is not None:
            text = "".join(
                str(json.loads(raw).get("line", "")).rstrip("\r\n") + "\n"
                for raw in lines["raw_row"]
            )
            lines_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CrmError(f"cannot write the export to {out}: {exc.strerror or exc}") from exc
    return {
        "rows": int(len(held)),
        "file": str(rows_file) if rows_file else None,
        "lines": int(len(lines)),
        "lines_file": str(lines_file) if lines_file else None,
    }


def resubmit(entity: str, file: Path, settings=None) -> dict:
    """Put a fixed file into `landing/<entity>/` for the next run, without the context
    columns `export` added. The next `crm run` loads it as a new delivery."""
    from crm.files import safe_name
    from crm.settings import get_settings
    from crm.warehouse import session

    _known_entity(entity)
    settings = settings or get_settings()
    file = Path(file)
    try:
        frame = (
            pd.read_parquet(file)
            if file.suffix.lower() == ".parquet"
            else pd.read_csv(file, dtype=str, keep_default_na=False)
        )
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{file}: cannot be read ({exc})") from exc
    frame = frame[[c for c in frame.columns if not str(c).startswith(CONTEXT_PREFIX)]]
    if frame.empty:
        raise BadInputError(f"{file}: no rows to resubmit")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = settings.landing / entity / f"resubmitted_{stamp}_{safe_name(file.stem)}.csv"
    partial = target.with_name("." + target.name)  # hidden from ingestion until complete
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(partial, index=False)
        partial.replace(target)
    except OSError as exc:
        if partial.parent.is_dir():
            partial.unlink(missing_ok=True)
        raise CrmError(
            f"cannot put the file into the landing folder {target.parent}: "
            f"{exc.strerror or exc}; it needs to be writable by this user (nothing was "
            "resubmitted)"
        ) from exc
    with session(settings=settings) as con:
        ensure_audit(con)
        con.execute(
            "INSERT INTO audit.quarantine_resubmissions VALUES (?, ?, ?, ?, ?)",
            [entity, str(file), str(target), len(frame), datetime.now(UTC).replace(tzinfo=None)],
        )
    return {"entity": entity, "rows": int(len(frame)), "landing_file": str(target)}
