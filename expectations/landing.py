"""The landing checkpoint: every batch a run loaded into `raw`, before dbt builds on it.

Two suites per entity, both built from the source contract:

- `landing.<entity>` on the rows of all the run's new batches of the entity, as one frame
  (one GX run per entity, not per file): keys present and unique within a batch, enums
  within the contract, amounts and dates in range, nothing dated after its load. The row
  checks of ingestion already quarantine such rows, so these are the boundary's second
  line: they fail only if a load let a bad row through. Above `ROW_SAMPLE` rows they run
  on a repeatable sample.
- `landing.<entity>.profile` on one row of batch figures: the share of rows quarantined
  (more than half means the file itself is wrong: critical), the share quarantined for
  unknown references (referential sanity), the volume against the entity's recent batches,
  and freshness (days from the newest event to the as-of date).

A critical failure rejects the entity's batches of the run, and those of the entities that
reference it: their rows leave `raw` and `audit.quarantine`, `audit.load_batches` marks
them `rejected` with the reason, and the task fails without retries (a retry of the same
run fails again), so the marts are not rebuilt on them. The same file delivered
again is checked again (a rejected batch is never counted as loaded).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pandas as pd

from crm.settings import Settings, get_settings
from crm.warehouse import table_exists
from expectations.checkpoint import conclude, record, run_suite
from expectations.outcome import CRITICAL, WARNING, CriticalExpectationFailed, Outcome
from ingest.contract import ENTITIES, LOAD_ORDER, Entity
from ingest.load import configured

CHECKPOINT = "landing"
#: Rows of one batch checked row by row; a larger batch is checked on a repeatable sample
#: of this many rows (the batch figures are always exact).
ROW_SAMPLE = 1_000_000
#: Share of a batch's rows quarantined: above WARN is a warning, above STOP rejects it.
QUARANTINE_WARN = 0.05
QUARANTINE_STOP = 0.5
#: Share of a batch's rows quarantined because a referenced parent is unknown.
UNKNOWN_REFERENCE_WARN = 0.01
#: Rows loaded against the median of the entity's recent batches (needs VOLUME_MIN_HISTORY).
VOLUME_BAND = (0.5, 2.0)
VOLUME_HISTORY = 7
VOLUME_MIN_HISTORY = 3
#: The median amount of a run's batches against the median of the recent batches' medians
#: (same history as the volume): a wrong number format multiplies every amount (4998.00
#: for 49.98) while each row still passes its range check.
AMOUNT_BAND = (1 / 3, 3.0)
#: Days from an entity's newest event to the as-of date before freshness warns.
FRESHNESS_DAYS = {"customers": 30, "transactions": 3, "interactions": 3}
#: Above this share of a batch's loaded rows with a contact field set to NULL at ingest
#: (ingest/personal.py), the export has probably changed its contact format: a warning.
NULLED_CONTACT_WARN = 0.10


def row_expectations(entity: Entity) -> list:
    """The contract of one entity as GX expectations on the rows of the run's batches
    (with `_batch_id` and `_latest_allowed`, the moment of the load plus the tolerance)."""
    from great_expectations import expectations as gxe

    found = []
    for name in dict.fromkeys([*entity.key, *entity.required_columns]):
        found.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=name, severity=CRITICAL, description=f"{name} always present"
            )
        )
    # unique within a batch, as ingestion checks it (the same row may come in two files)
    unique_on = [*entity.key] + ([entity.version_column] if entity.version_column else [])
    found.append(
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[*unique_on, "_batch_id"],
            severity=CRITICAL,
            description=f"({', '.join(unique_on)}) unique in a batch",
        )
    )
    for col in entity.columns:
        if col.allowed:
            found.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col.name,
                    value_set=list(col.allowed),
                    severity=CRITICAL,
                    description=f"{col.name} one of {', '.join(col.allowed)}",
                )
            )
        if col.minimum is not None or col.maximum is not None:
            found.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col.name,
                    min_value=col.minimum,
                    max_value=col.maximum,
                    severity=CRITICAL,
                    description=f"{col.name} between {col.minimum:g} and {col.maximum:,.0f}",
                )
            )
        if col.not_future:
            found.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="_latest_allowed",
                    column_B=col.name,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                    severity=CRITICAL,
                    description=f"{col.name} not after the load",
                )
            )
    return found


def profile_expectations(entity: Entity, has_history: bool) -> list:
    """Expectations on the one-row frame of the entity's batch figures for the run."""
    from great_expectations import expectations as gxe

    found = [
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantine_share",
            max_value=QUARANTINE_STOP,
            severity=CRITICAL,
            description=f"at most {QUARANTINE_STOP:.0%} of the delivered rows quarantined "
            "(more means the file itself is wrong)",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantine_share",
            max_value=QUARANTINE_WARN,
            severity=WARNING,
            description=f"at most {QUARANTINE_WARN:.0%} of the delivered rows quarantined",
        ),
    ]
    if any(c.contact for c in entity.columns):
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="nulled_contact_share",
                max_value=NULLED_CONTACT_WARN,
                severity=WARNING,
                description=f"at most {NULLED_CONTACT_WARN:.0%} of the rows loaded with a "
                "contact field set to NULL: not one address or number (audit.nulled_values)",
            )
        )
    if entity.references:
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="unknown_reference_share",
                max_value=UNKNOWN_REFERENCE_WARN,
                severity=WARNING,
                description=f"at most {UNKNOWN_REFERENCE_WARN:.0%} of the rows point at an "
                "unknown parent",
            )
        )

    def within(column: str, band: tuple[float, float], what: str, of: str):
        """A warning when a ratio against the recent batches leaves its band."""
        low, high = band
        return gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=low,
            max_value=high,
            severity=WARNING,
            description=f"{what} {low:.2g}x to {high:g}x {of}",
        )

    if has_history:
        found.append(
            within(
                "volume_ratio", VOLUME_BAND, "rows loaded",
                f"the median of the last {VOLUME_HISTORY} batches",
            )
        )  # fmt: skip
    if has_history and "amount" in entity.column_names:
        found.append(
            within(
                "amount_median_ratio", AMOUNT_BAND, "the median amount",
                f"the median of the last {VOLUME_HISTORY} batches' medians "
                "(a wrong number format?)",
            )
        )  # fmt: skip
    if entity.name in FRESHNESS_DAYS:
        days = FRESHNESS_DAYS[entity.name]
        found.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="days_since_last_event",
                max_value=days,
                severity=WARNING,
                description=f"the newest {entity.event_time} at most {days} days before the "
                "as-of date",
            )
        )
    return found


def _batches(con, entity: str, run_id: str) -> pd.DataFrame:
    """The entity's batches this checkpoint must check: the run's own, and every batch a
    run loaded that never passed the checkpoint (that run died or failed before it): a
    later run skips such a file as already loaded, so only this check stands between it
    and the marts. Batches of runs that succeeded before batches were marked `validated`
    count as checked."""
    succeeded = "SELECT 'none' WHERE false"  # (NOT IN a NULL is never true)
    if table_exists(con, "audit", "pipeline_runs"):
        succeeded = "SELECT run_id FROM audit.pipeline_runs WHERE status = 'success'"
    return con.execute(
        "SELECT batch_id, source_file, rows_read, rows_loaded, rows_quarantined, loaded_at "
        "FROM audit.load_batches WHERE entity = ? AND rows_read > 0 AND status IS NULL "
        f"AND (run_id = ? OR (run_id IS NOT NULL AND run_id NOT IN ({succeeded}))) "
        "ORDER BY loaded_at",
        [entity, run_id],
    ).df()


def _profile(con, entity: Entity, batches: pd.DataFrame, run_id: str, as_of: date):
    """One row of figures for the entity's new batches; whether there is volume history."""
    read = int(batches["rows_read"].sum()) if len(batches) else 0
    recent = con.execute(
        "SELECT rows_loaded, batch_id FROM audit.load_batches WHERE entity = ? AND rows_read > 0 "
        "AND run_id IS DISTINCT FROM ? AND status IS DISTINCT FROM 'rejected' "
        "AND batch_id NOT IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY loaded_at DESC LIMIT ?",
        [entity.name, run_id, list(batches["batch_id"]), VOLUME_HISTORY],
    ).fetchall()
    history = [r[0] for r in recent]
    has_history = len(history) >= VOLUME_MIN_HISTORY and read > 0
    amount_ratio = None
    if has_history and "amount" in entity.column_names:
        now = con.execute(
            f"SELECT median(amount) FROM raw.{entity.name} "
            "WHERE _batch_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(batches["batch_id"])],
        ).fetchone()[0]
        before = con.execute(
            "SELECT median(m) FROM (SELECT median(amount) AS m "
            f"FROM raw.{entity.name} WHERE _batch_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY _batch_id)",
            [[r[1] for r in recent]],
        ).fetchone()[0]
        if now is not None and before:
            amount_ratio = float(now) / float(before)
    unknown = 0
    if read:
        unknown = con.execute(
            "SELECT count(*) FROM audit.quarantine WHERE reason_code = 'unknown_reference' "
            "AND batch_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(batches["batch_id"])],
        ).fetchall()[0][0]
    nulled = None
    if read and any(c.contact for c in entity.columns):
        nulled = con.execute(
            "SELECT count(DISTINCT (batch_id, row_number)) FROM audit.nulled_values "
            "WHERE batch_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(batches["batch_id"])],
        ).fetchone()[0]
    loaded = int(batches["rows_loaded"].sum()) if read else 0
    days = None
    if entity.name in FRESHNESS_DAYS:
        newest = con.execute(
            f'SELECT max("{entity.event_time}") FROM raw.{entity.name} '
            f'WHERE "{entity.event_time}" < ?',
            [datetime.combine(as_of + timedelta(days=1), datetime.min.time())],
        ).fetchall()[0][0]
        days = (as_of - newest.date()).days if newest is not None else None
    median = float(pd.Series(history).median()) if history else None
    frame = pd.DataFrame(
        [
            {
                "entity": entity.name,
                "batches": len(batches),
                "rows_read": read,
                "rows_loaded": int(batches["rows_loaded"].sum()) if read else 0,
                "quarantine_share": float(batches["rows_quarantined"].sum()) / read
                if read
                else None,
                "unknown_reference_share": unknown / read if read else None,
                "nulled_contact_share": nulled / loaded if nulled is not None and loaded else None,
                "volume_ratio": int(batches["rows_loaded"].sum()) / median
                if has_history and median
                else None,
                "days_since_last_event": days,
                "amount_median_ratio": amount_ratio,
            }
        ]
    ).astype(
        {
            "quarantine_share": float,
            "unknown_reference_share": float,
            "nulled_contact_share": float,
            "volume_ratio": float,
            "amount_median_ratio": float,
        }
    )
    return frame, has_history


def _batch_rows(con, entity: Entity, batches: pd.DataFrame, tolerance) -> pd.DataFrame:
    """The run's batches of the entity as the contract sees them (ingestion stores an
    allowed value in its declared spelling); a repeatable sample above ROW_SAMPLE rows."""
    columns = ", ".join(f'"{c.name}"' for c in entity.columns)
    sample = ""
    if int(batches["rows_loaded"].sum()) > ROW_SAMPLE:
        sample = f" USING SAMPLE reservoir({ROW_SAMPLE} ROWS) REPEATABLE (42)"
    allowed = batches[["batch_id", "loaded_at"]].assign(
        latest_allowed=batches["loaded_at"] + tolerance
    )
    con.register("run_batches", allowed)
    try:
        return con.execute(
            f"""
            SELECT {columns}, r._batch_id, b.latest_allowed AS _latest_allowed
            FROM raw.{entity.name} AS r JOIN run_batches AS b ON r._batch_id = b.batch_id
            {sample}
            """
        ).df()
    finally:
        con.unregister("run_batches")


def dependants(entities: set[str]) -> list[str]:
    """Every entity whose rows may reference one of `entities`, directly or through another
    (their rows were checked against parents that are being taken out)."""
    found: list[str] = []
    for name in LOAD_ORDER:
        parents = set(ENTITIES[name].parents)
        if name not in entities and parents & (entities | set(found)):
            found.append(name)
    return found


def _already_rejected(con, run_id: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT DISTINCT entity, note FROM audit.load_batches "
        "WHERE run_id = ? AND status = 'rejected' ORDER BY 1",
        [run_id],
    ).fetchall()


def validate_landing(
    run_id: str, as_of: date, settings: Settings | None = None, entities=LOAD_ORDER
) -> dict:
    """Run the landing checkpoint on the run's batches; record the results; reject and
    raise when a critical expectation failed. Returns the summary for the run report."""
    from crm.warehouse import session
    from ingest.batches import ensure_tables, mark_validated, reject_batches

    settings = settings or get_settings()
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    failed: dict[str, list[str]] = {}
    with session(settings=settings) as con:
        ensure_tables(con)
        # a retry of a task that already rejected batches (or a cleared task) must fail
        # again, not pass on the rest
        earlier = _already_rejected(con, run_id)
        if earlier:
            raise CriticalExpectationFailed(
                "the landing checkpoint rejected this run's batches of "
                + "; ".join(f"{entity} ({note})" for entity, note in earlier)
            )
        checked: list[str] = []
        for name in entities:
            # with the stage values and pipeline ids of the pipelines file
            entity, _ = configured(name, settings)
            batches = _batches(con, name, run_id)
            checked += list(batches["batch_id"])
            profile, has_history = _profile(con, entity, batches, run_id, as_of)
            found = run_suite(
                CHECKPOINT,
                f"landing.{name}.profile",
                "new batches" if len(batches) else "no new batch",
                profile_expectations(entity, has_history),
                profile,
                id_columns=("entity",),
                figures=True,
            )
            if len(batches):
                found += run_suite(
                    CHECKPOINT,
                    f"landing.{name}",
                    f"{len(batches)} new batch(es)",
                    row_expectations(entity),
                    _batch_rows(con, entity, batches, settings.future_tolerance),
                    id_columns=(*entity.key, "_batch_id"),
                    personal=tuple(c.name for c in entity.columns if c.personal),
                )
            outcomes += found
            failures = [o for o in found if not o.success and o.severity == CRITICAL]
            if failures and len(batches):
                failed[name] = list(batches["batch_id"])
        reasons = {
            name: (
                ids,
                "rejected by the landing checkpoint: "
                + "; ".join(
                    f"expected {o.description}, observed {o.observed}"
                    for o in outcomes
                    if o.suite.startswith(f"landing.{name}")
                    and not o.success
                    and o.severity == CRITICAL
                ),
            )
            for name, ids in failed.items()
        }
        for child in dependants(set(failed)):
            ids = list(_batches(con, child, run_id)["batch_id"])
            if ids:
                parents = ", ".join(p for p in ENTITIES[child].parents if p in reasons)
                reasons[child] = (ids, f"rejected with its parent entity's batches ({parents})")
        # the results first, then the rejection, then the page: a failure between them
        # leaves the rejection for the retry to find and report
        # ingestion owns raw and the batch log: it takes out what the verdict turned down
        # and marks what passed (no later run checks those again)
        record(con, run_id, as_of, CHECKPOINT, outcomes)
        reject_batches(con, reasons)
        rejected = {b for ids, _ in reasons.values() for b in ids}
        mark_validated(con, [b for b in checked if b not in rejected])
        summary = conclude(con, settings, CHECKPOINT, run_id, as_of, outcomes, recorded=True)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
