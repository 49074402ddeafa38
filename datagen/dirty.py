"""Dirty data on request: the defects real CRM exports contain, with exact expected counts.

Bad rows are *added* beside the clean data rather than overwriting it, so after ingestion
every clean row must still arrive and the quarantine must hold exactly the injected rows,
each under the reason code `ingest.load` gives it. The expected counts go into the
generation manifest (`landing/_generation.json`) for tests and for the curious.

Classes (per entity where they make sense): exact duplicates, later updates of the same
key (valid: staging must keep the latest), missing required values, unparseable values,
values outside the allowed set, negative amounts, dates in the far future, and references
to customers, campaigns or opportunities that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.spec import GeneratedCRM

#: entity -> [(class, expected reason code or None when the row is valid)]
DIRTY_CLASSES: dict[str, list[tuple[str, str | None]]] = {
    "customers": [
        ("duplicate", "duplicate_key"),
        ("late_update", None),
        ("missing_key", "missing_required"),
        ("bad_type", "bad_type"),
        ("future_date", "future_date"),
    ],
    "transactions": [
        ("duplicate", "duplicate_key"),
        ("late_update", None),
        ("missing_required", "missing_required"),
        ("bad_type", "bad_type"),
        ("negative_amount", "out_of_range"),
        ("future_date", "future_date"),
        ("unknown_customer", "unknown_reference"),
    ],
    "interactions": [
        ("duplicate", "duplicate_key"),
        ("missing_required", "missing_required"),
        ("bad_value", "bad_value"),
        ("future_date", "future_date"),
        ("unknown_customer", "unknown_reference"),
    ],
    "opportunities": [
        ("duplicate", "duplicate_key"),
        ("late_update", None),
        ("negative_amount", "out_of_range"),
        ("unknown_customer", "unknown_reference"),
    ],
    "contracts": [
        ("negative_amount", "out_of_range"),
        ("unknown_opportunity", "unknown_reference"),
    ],
    "campaign_members": [
        ("duplicate", "duplicate_key"),
        ("unknown_campaign", "unknown_reference"),
    ],
}

KEYS = {
    "customers": "customer_id",
    "transactions": "transaction_id",
    "interactions": "interaction_id",
    "opportunities": "opportunity_id",
    "contracts": "contract_id",
}

DAY_US = 86_400 * 10**6


@dataclass
class _Batch:
    rows: pa.Table
    source_index: np.ndarray


def _as_string(table: pa.Table, column: str) -> pa.Table:
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, pc.cast(table[column], pa.string()))


def _replace(table: pa.Table, column: str, values: pa.Array | list) -> pa.Table:
    i = table.schema.get_field_index(column)
    field_type = table.schema.field(column).type
    return table.set_column(
        i, column, pa.array(values, type=field_type) if isinstance(values, list) else values
    )


def _fresh_keys(table: pa.Table, key: str) -> pa.Table:
    return _replace(table, key, pc.binary_join_element_wise("D", table[key], ""))


def _shift_us(values: pa.ChunkedArray | pa.Array, delta_us: np.ndarray) -> pa.Array:
    micros = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False) + delta_us.astype(np.int64)
    return pa.array(micros, type=pa.timestamp("us"))


def inject(crm: GeneratedCRM, rate: float, seed: int) -> dict:
    """Append dirty rows to `crm.tables` in place; return the expected outcome per entity."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7_919]))
    end_us = int(pc.max(crm.tables["transactions"]["occurred_at"]).cast(pa.int64()).as_py())
    expected: dict[str, dict] = {}
    for entity, classes in DIRTY_CLASSES.items():
        table = crm.tables[entity]
        n = table.num_rows
        if n == 0 or rate <= 0:
            continue
        per_class = max(1, int(round(rate * n / len(classes))))
        needs_string = {"bad_type": _bad_type_column(entity)}
        for cls, _ in classes:
            if cls == "bad_type" and needs_string["bad_type"]:
                table = _as_string(table, needs_string["bad_type"])
        outcome = {"clean_rows": n, "late_updates": 0, "quarantine": {}}
        extra: list[_Batch] = []
        for cls, reason in classes:
            idx = rng.choice(n, size=min(per_class, n), replace=False)
            rows = table.take(pa.array(idx))
            rows = _mutate(entity, cls, rows, rng, end_us)
            if rows is None:
                continue
            extra.append(_Batch(rows, idx))
            if reason is None:
                outcome["late_updates"] += rows.num_rows
            else:
                outcome["quarantine"][reason] = outcome["quarantine"].get(reason, 0) + rows.num_rows
        crm.tables[entity] = pa.concat_tables([table, *(b.rows for b in extra)])
        if entity in crm.partitions:
            parts = crm.partitions[entity]
            crm.partitions[entity] = np.concatenate(
                [parts, *(parts[b.source_index] for b in extra)]
            )
        expected[entity] = outcome
    return expected


def _bad_type_column(entity: str) -> str | None:
    return {"customers": "monthly_income", "transactions": "amount"}.get(entity)


def _mutate(
    entity: str, cls: str, rows: pa.Table, rng: np.random.Generator, end_us: int
) -> pa.Table | None:
    k = rows.num_rows
    key = KEYS.get(entity)
    if cls == "duplicate":
        return rows
    if cls == "late_update":
        updated = pc.cast(rows["updated_at"], pa.int64()).to_numpy(zero_copy_only=False)
        room = end_us - updated
        keep = room > 2 * 3600 * 10**6
        rows = rows.filter(pa.array(keep))
        room, updated = room[keep], updated[keep]
        delta = (rng.uniform(0.05, 0.95, rows.num_rows) * np.minimum(room, 10 * DAY_US)).astype(
            np.int64
        )
        rows = _replace(
            rows,
            "updated_at",
            pa.array(updated + np.maximum(delta, 10**6), type=pa.timestamp("us")),
        )
        if entity == "customers":
            return _replace(rows, "city", ["Relocated"] * rows.num_rows)
        if entity == "transactions":
            return _replace(rows, "status", ["refunded"] * rows.num_rows)
        if entity == "opportunities":
            return _replace(rows, "amount", pc.multiply(rows["amount"], 1.1))
        return rows
    if cls == "missing_key":
        return _replace(rows, key, [None] * k)
    rows = _fresh_keys(rows, key) if key else rows
    if cls == "missing_required":
        column = "amount" if entity == "transactions" else "customer_id"
        return _replace(rows, column, [None] * k)
    if cls == "bad_type":
        column = _bad_type_column(entity)
        junk = rng.choice(["N/A", "12,50", "abc", "1.2.3", "--"], size=k).tolist()
        return _replace(rows, column, junk)
    if cls == "bad_value":
        return _replace(rows, "channel", rng.choice(["fax", "pigeon", "telex"], size=k).tolist())
    if cls == "negative_amount":
        amounts = pc.cast(rows["amount"], pa.float64()).to_numpy(zero_copy_only=False)
        values = -np.abs(amounts) - 1.0
        if pa.types.is_string(rows.schema.field("amount").type):
            return _replace(rows, "amount", [f"{v:.2f}" for v in values])
        return _replace(rows, "amount", pa.array(values))
    if cls == "future_date":
        column = "created_at" if entity == "customers" else "occurred_at"
        years = rng.integers(10, 40, size=k)
        return _replace(rows, column, _shift_us(rows[column], years * 365 * DAY_US))
    if cls == "unknown_customer":
        ids = [f"CX{v:08d}" for v in rng.integers(0, 10**8, size=k)]
        return _replace(rows, "customer_id", ids)
    if cls == "unknown_opportunity":
        return _replace(
            rows, "opportunity_id", [f"OX{v:07d}" for v in rng.integers(0, 10**7, size=k)]
        )
    if cls == "unknown_campaign":
        return _replace(
            rows, "campaign_id", [f"CMPX{v:06d}" for v in rng.choice(10**6, size=k, replace=False)]
        )
    raise ValueError(f"unknown dirty class {cls}")
