"""What loading a landing folder, or one file of it, would do, without loading anything.

`crm check PATH` reads each file and runs the same row checks as the load
(`ingest.load.read_and_check`) on a throwaway in-memory DuckDB, then counts what would load
and what would be held back, and why. The home's warehouse is never written: when it
exists it is attached read-only, for the reference checks only. Parents of a reference are
the rows of the checked folder that would load plus, when the home has a warehouse, the
rows already in `raw`: what a load into this home would compare against (a delivery of new
transactions for customers loaded last month is not flagged). When one file or one
entity's folder is checked, the parent entities' files of the same landing folder are read
for that too (and not reported). With no parent rows at all, the reference is not checked,
and the result says so.

What the check does not foresee: a file the load would skip because it was loaded before,
and a key and version that another, already loaded, file holds with other values (the
load quarantines that as `duplicate_key`).
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from crm.errors import BadInputError, UsageError
from crm.settings import Settings
from crm.sql import quote_identifier as _q
from crm.sql import quote_literal as _lit
from ingest.checks import (
    CHECKED_TABLE,
    UNMAPPED_VALUE_PATTERN,
    drop_work_tables,
    unmapped_values_sql,
)
from ingest.contract import ENTITIES, LOAD_ORDER, Entity
from ingest.files import REJECTS_TABLE, LandingFile, discover
from ingest.load import configured, read_and_check
from ingest.mapping import EntityMapping
from ingest.personal import register_keyed_hash

#: Example reasons shown per reason code and file.
EXAMPLES_PER_REASON = 3
#: The home's warehouse, attached read-only under this name.
WAREHOUSE_ALIAS = "home_warehouse"
#: Where the rows of the checked folder that would load are kept, for the references.
FOLDER_SCHEMA = "checked_folder"


@dataclass(frozen=True)
class CheckTarget:
    """What PATH names: a landing folder (every entity folder in it), or one file."""

    landing: Path
    entities: tuple[str, ...]
    file: LandingFile | None = None
    #: The landing folder as a whole (not one entity's folder, not one file).
    whole: bool = False


def locate(path: Path) -> CheckTarget:
    """The landing folder and entities (or the file) `path` names; UsageError when it is
    not a landing folder, an entity folder or a file inside one."""
    path = path.expanduser().resolve()
    known = ", ".join(ENTITIES)
    if path.is_file():
        entity_dir = next((p for p in path.parents if p.name in ENTITIES), None)
        if entity_dir is None:
            raise UsageError(
                f"cannot tell which entity {path} holds: it is not inside a folder named after "
                f"an entity ({known}); put it in <landing>/<entity>/ and check it there"
            )
        # (a file type the load cannot read is reported for the file, like any unreadable one)
        landing = entity_dir.parent
        stat = path.stat()
        file = LandingFile(
            entity=entity_dir.name,
            path=path,
            relative_path=str(path.relative_to(landing)),
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
        )
        return CheckTarget(landing, (entity_dir.name,), file)
    if not path.is_dir():
        raise UsageError(f"{path} does not exist")
    present = tuple(name for name in LOAD_ORDER if (path / name).is_dir())
    if present:
        return CheckTarget(path, present, whole=True)
    if path.name in ENTITIES:  # an entity folder: its landing is the folder above
        return CheckTarget(path.parent, (path.name,))
    raise UsageError(
        f"{path} holds no entity folders: a landing folder has one subfolder per entity "
        f"({known}); or name one file"
    )


def settings_for(landing: Path, settings: Settings) -> Settings:
    """The settings a load of `landing` would use: its own mapping file and pipelines file
    when it has them, else the home's. The home's own landing folder is checked exactly as
    a run loads it (the home's settings, CRM_MAPPING_FILE included)."""
    if landing.resolve() == settings.landing.resolve():
        return settings
    changes = {}
    if (landing / "mapping.yml").is_file():
        changes["mapping_file"] = landing / "mapping.yml"
    if (landing / "pipelines.yml").is_file():
        changes["pipelines_file"] = landing / "pipelines.yml"
    return settings.replace(**changes) if changes else settings


def _connect(settings: Settings, scratch: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB set up like the warehouse connection (UTC, bounded memory),
    spilling to `scratch`. The hash of personal data gets a throwaway key: the checks
    compute it, nothing shows or keeps it, and the home's key file is not made for a check."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    con.execute(f"SET memory_limit = {_lit(settings.duckdb_memory_limit)}")
    con.execute(f"SET temp_directory = {_lit(scratch)}")
    register_keyed_hash(con, secrets.token_bytes(32))
    return con


def _parent_columns() -> dict[str, tuple[str, ...]]:
    """Each entity some reference points at -> the columns the references compare."""
    found: dict[str, dict[str, None]] = {}
    for entity in ENTITIES.values():
        for ref in entity.references:
            found.setdefault(ref.parent, {})[ref.parent_column] = None
    return {parent: tuple(columns) for parent, columns in found.items()}


def _attach_warehouse(con: duckdb.DuckDBPyConnection, settings: Settings) -> str | None:
    """Attach the home's warehouse read-only when it exists; a note when it cannot be."""
    path = settings.warehouse_path
    if not path.is_file():
        return None
    try:
        con.execute(f"ATTACH {_lit(path)} AS {WAREHOUSE_ALIAS} (READ_ONLY)")
    except duckdb.Error as exc:
        return (
            f"the warehouse {path} could not be opened read-only ({str(exc).splitlines()[0]}); "
            "references are checked against the checked folder only"
        )
    return None


def _warehouse_has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? "
            "AND schema_name = 'raw' AND table_name = ?",
            [WAREHOUSE_ALIAS, table],
        ).fetchone()[0]
    )


def _prepare_parents(con: duckdb.DuckDBPyConnection, attached: bool) -> dict[str, bool]:
    """`raw.<parent>` as the reference checks (ingest/checks.py) read it: the checked
    folder's rows that would load, plus the warehouse's `raw.<parent>` when attached.
    Returns parent -> whether the warehouse has its table."""
    con.execute(f"CREATE SCHEMA {FOLDER_SCHEMA}")
    con.execute("CREATE SCHEMA raw")
    in_warehouse = {}
    for parent, columns in _parent_columns().items():
        entity = ENTITIES[parent]
        typed = ", ".join(f"{_q(c)} {entity.column(c).sql_type}" for c in columns)
        con.execute(f"CREATE TABLE {FOLDER_SCHEMA}.{parent} ({typed})")
        names = ", ".join(_q(c) for c in columns)
        sources = [f"SELECT {names} FROM {FOLDER_SCHEMA}.{parent}"]
        in_warehouse[parent] = attached and _warehouse_has(con, parent)
        if in_warehouse[parent]:
            sources.append(f"SELECT {names} FROM {WAREHOUSE_ALIAS}.raw.{parent}")
        con.execute(f"CREATE VIEW raw.{parent} AS {' UNION ALL '.join(sources)}")
    return in_warehouse


def _references(
    con: duckdb.DuckDBPyConnection, entity: Entity, in_warehouse: dict[str, bool]
) -> list[dict]:
    """Each reference of `entity` and the parent rows it is checked against now."""
    found = []
    for ref in entity.references:
        folder = con.execute(f"SELECT count(*) FROM {FOLDER_SCHEMA}.{ref.parent}").fetchone()[0]
        warehouse = None
        if in_warehouse[ref.parent]:
            warehouse = con.execute(
                f"SELECT count(*) FROM {WAREHOUSE_ALIAS}.raw.{ref.parent}"
            ).fetchone()[0]
        found.append(
            {
                "column": ref.column,
                "parent": ref.parent,
                "folder_rows": folder,
                "warehouse_rows": warehouse,
                "checked": bool(folder or warehouse),
            }
        )
    return found


def _examples(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Per reason code in CHECKED_TABLE: rows, and the first few reasons with row numbers."""
    counts = con.execute(
        f"SELECT _reason_code, count(*) FROM {CHECKED_TABLE} WHERE _reason <> '' "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    shown = con.execute(
        f"SELECT _reason_code, _row_number, _reason FROM {CHECKED_TABLE} WHERE _reason <> '' "
        "QUALIFY row_number() OVER (PARTITION BY _reason_code ORDER BY _row_number) "
        f"<= {EXAMPLES_PER_REASON} ORDER BY _reason_code, _row_number"
    ).fetchall()
    by_reason = {code: {"rows": n, "examples": []} for code, n in counts}
    for code, row_number, reason in shown:
        by_reason[code]["examples"].append(f"row {row_number}: {reason}")
    return by_reason


def _unparseable(con: duckdb.DuckDBPyConnection, lines: int) -> dict:
    """The lines of a CSV file that could not be split into columns, as the load words them."""
    shown = con.execute(
        "SELECT line, string_agg(DISTINCT error_type || ' (' || error_message || ')', '; ') "
        f"FROM {REJECTS_TABLE} GROUP BY line ORDER BY line LIMIT {EXAMPLES_PER_REASON}"
    ).fetchall()
    return {
        "rows": lines,
        "examples": [f"line {line} of the file could not be parsed: {why}" for line, why in shown],
    }


def _unmapped_values(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Each value no value map names, per column, with the rows that carry it (as
    `crm quarantine` lists them after a load)."""
    found = con.execute(
        unmapped_values_sql(CHECKED_TABLE, "_reason"), [UNMAPPED_VALUE_PATTERN]
    ).fetchall()
    return [{"column": c, "value": v, "rows": n} for c, v, n in found]


def _check_file(
    con: duckdb.DuckDBPyConnection,
    file: LandingFile,
    entity: Entity,
    mapping: EntityMapping,
    future_bound: datetime,
) -> dict:
    """One file's verdict; its rows that would load join the folder's parent rows."""
    result = {"entity": entity.name, "file": file.relative_path, "path": str(file.path)}
    try:
        read = read_and_check(con, file, entity, mapping, future_bound)
    except BadInputError as exc:
        return {**result, "error": str(exc)}
    try:
        by_reason = _examples(con)
        if read.rejected_lines:
            by_reason["unparseable"] = _unparseable(con, read.rejected_lines)
        loads, nulled = con.execute(
            "SELECT count(*) FILTER (_reason = ''), "
            f"count(*) FILTER (_reason = '' AND _note <> '') FROM {CHECKED_TABLE}"
        ).fetchone()
        columns = _parent_columns().get(entity.name)
        if columns:
            names = ", ".join(_q(c) for c in columns)
            con.execute(
                f"INSERT INTO {FOLDER_SCHEMA}.{entity.name} "
                f"SELECT {names} FROM {CHECKED_TABLE} WHERE _reason = ''"
            )
        unmapped = _unmapped_values(con) if "unmapped_value" in by_reason else []
    finally:
        drop_work_tables(con)
    rows_read = read.rows + read.rejected_lines
    return {
        **result,
        "rows_read": rows_read,
        "rows_would_load": loads,
        "rows_would_be_quarantined": rows_read - loads,
        "quarantined_by_reason": dict(sorted(by_reason.items())),
        "unmapped_values": unmapped,
        "ignored_columns": list(read.ignored_columns),
        "rows_with_nulled_values": nulled,
    }


def check(path: Path, settings: Settings) -> dict:
    """Check every file `path` names against the contract and the mapping; nothing loads.

    The result has one entry per file (rows read, would load, would be quarantined per
    reason with examples, unmapped values, ignored columns; or the error that stopped its
    read) and one per entity (its references and the parent rows they are checked
    against). `ok`: every row of every file would load."""
    target = locate(path)
    used = settings_for(target.landing, settings)
    future_bound = datetime.now(UTC).replace(tzinfo=None) + used.future_tolerance
    result: dict = {
        "path": str(path.expanduser().resolve()),
        "landing": str(target.landing),
        "mapping_file": str(used.mapping_path) if used.mapping_path.is_file() else None,
        "pipelines_file": str(used.pipelines_path),
        "warehouse": None,
        "entities": {},
        "parents_read": {},
        "files": [],
        "notes": [],
    }
    with tempfile.TemporaryDirectory(prefix="crm_check_") as scratch:
        con = _connect(used, Path(scratch))
        try:
            problem = _attach_warehouse(con, settings)
            attached = settings.warehouse_path.is_file() and problem is None
            if attached:
                result["warehouse"] = str(settings.warehouse_path)
            if problem:
                result["notes"].append(problem)
            in_warehouse = _prepare_parents(con, attached)
            for name in _ancestors(target):
                # parents of what is checked, from the same landing folder: only their
                # rows that would load are kept, for the references; nothing is reported
                entity, mapping = configured(name, used)
                try:
                    files = discover(target.landing, name)
                except BadInputError as exc:
                    result["notes"].append(f"{name} rows not read, for the references: {exc}")
                    continue
                for file in files:
                    _check_file(con, file, entity, mapping, future_bound)
                result["parents_read"][name] = len(files)
            for name in target.entities:
                # a broken mapping or pipelines file stops the check, as it stops a load
                entity, mapping = configured(name, used)
                about: dict = {"files": 0, "references": _references(con, entity, in_warehouse)}
                result["entities"][name] = about
                try:
                    files = [target.file] if target.file else discover(target.landing, name)
                except BadInputError as exc:
                    about["error"] = str(exc)
                    continue
                about["files"] = len(files)
                for file in files:
                    result["files"].append(_check_file(con, file, entity, mapping, future_bound))
            if target.whole and (attached or not settings.warehouse_path.is_file()):
                result["notes"] += _missing_required(con, result["entities"], attached)
        finally:
            con.close()
    result["ok"] = not any(
        f.get("error") or f["rows_would_be_quarantined"] for f in result["files"]
    ) and not any(e.get("error") for e in result["entities"].values())
    return result


def _ancestors(target: CheckTarget) -> list[str]:
    """The entities the checked ones refer to, directly or through another, that are not
    checked themselves but have a folder in the same landing folder; parents first."""
    wanted: set[str] = set()
    todo = list(target.entities)
    while todo:
        for parent in ENTITIES[todo.pop()].parents:
            if parent not in wanted:
                wanted.add(parent)
                todo.append(parent)
    return [
        name
        for name in LOAD_ORDER
        if name in wanted and name not in target.entities and (target.landing / name).is_dir()
    ]


def _missing_required(con: duckdb.DuckDBPyConnection, entities: dict, attached: bool) -> list:
    """A note for each entity a run requires that neither the folder nor the warehouse has."""
    notes = []
    for name, entity in ENTITIES.items():
        if not entity.required or entities.get(name, {}).get("files"):
            continue
        if attached and _warehouse_has(con, name):
            if con.execute(f"SELECT count(*) FROM {WAREHOUSE_ALIAS}.raw.{name}").fetchone()[0]:
                continue
        notes.append(f"no {name} files here and none loaded before: a run needs {name}")
    return notes
