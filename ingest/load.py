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

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb

from crm.errors import BadInputError
from crm.settings import Settings, get_settings
from crm.warehouse import connect
from ingest.batches import (
    EntityLoadResult,
    add_counts,
    already_loaded,
    batch_id_for,
    commit_batch,
    ensure_tables,
    record_batch,
)
from ingest.checks import drop_work_tables, validate_batch
from ingest.contract import ENTITIES, Entity, resolve
from ingest.database import load_from_source
from ingest.files import (
    LandingFile,
    ReadResult,
    checksum,
    discover,
    read_into_source_table,
)
from ingest.mapping import EntityMapping, check_values_allowed, load_mapping
from ingest.personal import register_keyed_hash


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
    if not reload and already_loaded(con, file):
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
            record_batch(
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
    read = read_and_check(con, file, entity, mapping, loaded_at + future_tolerance)
    return "loaded", commit_batch(con, entity, file, digest, read, loaded_at, run_id)


def read_and_check(
    con: duckdb.DuckDBPyConnection,
    file: LandingFile,
    entity: Entity,
    mapping: EntityMapping,
    future_bound: datetime,
) -> ReadResult:
    """Read `file` into the connection's temp tables and check every row against the
    contract (CHECKED_TABLE, ingest/checks.py), writing nothing else: the load commits the
    result, `crm check` (ingest/dry_run.py) only counts it. On failure the temp tables
    are dropped and the error raised (BadInputError for a file that cannot be read)."""
    try:
        read = read_into_source_table(con, file, entity, mapping)
        # a mapping's csv options (the number format among them) apply to CSV files only
        checked_as = mapping if file.format == "csv" else replace(mapping, csv={})
        validate_batch(con, entity, read.columns, future_bound, checked_as)
    except BaseException:
        drop_work_tables(con)
        raise
    return read


def configured(entity_name: str, settings: Settings) -> tuple[Entity, EntityMapping]:
    """An entity as this home's configuration makes it: the stage values the pipelines
    file declares, and the mapping file's section for it with every value-map target
    checked against the contract. A mistake in either file, in any entity's section,
    raises BadInputError here, before anything is read: the first entity a run loads
    stops it, not the one whose section is wrong after others committed."""
    from crm import sales_pipelines

    pipelines = sales_pipelines.load(settings.pipelines_path)
    mapping = load_mapping(settings.mapping_path)
    checked = {}
    for name in ENTITIES:
        entity = resolve(ENTITIES[name], pipelines.stage_values, pipelines.pipeline_ids)
        checked[name] = (
            entity,
            check_values_allowed(mapping.for_entity(name), entity, mapping.source),
        )
    return checked[entity_name]


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
    # A broken mapping or pipelines file fails here, before anything loads.
    entity, mapping = configured(entity_name, settings)
    started = time.perf_counter()
    result = EntityLoadResult(entity=entity_name)
    files = discover(settings.landing, entity_name)
    result.files_found = len(files)
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
