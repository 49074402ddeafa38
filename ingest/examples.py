"""One made-up example row per entity, derived from the contract alone.

`crm contract` shows them so that a person writing an export sees a row that loads. They
are built from each column's type, allowed values, range and references, never written
out per entity, so they follow the contract when it changes; a test loads them all and
expects nothing quarantined.
"""

from __future__ import annotations

from ingest.contract import DELETED_AT, LOAD_ORDER, Column, Entity

#: A moment safely in the past (no `future_date`) and after 1900 (no `out_of_range`).
EXAMPLE_TIMESTAMP = "2024-01-15 09:30:00"
EXAMPLE_DATE = "2024-01-15"
#: Contact fields must hold one address or number, or they load as NULL.
EXAMPLE_CONTACT = {"email": "someone@example.com", "phone": "+15550100100"}


def _number(col: Column, base: float) -> float:
    """`base` moved into the column's range."""
    if col.minimum is not None and base < col.minimum:
        base = col.minimum
    if col.maximum is not None and base > col.maximum:
        base = col.maximum
    return base


def _key(name: str) -> str:
    return f"{name.removesuffix('_id')}_1"


def _value(entity: Entity, col: Column, parents: dict[str, str]) -> str:
    """The example value of one column, as a file would hold it ('' for empty)."""
    if col.name in parents:
        return parents[col.name]
    if col.name == DELETED_AT:
        return ""  # a value would mark the example deleted
    if col.allowed:
        return col.allowed[0]
    if col.vocabulary or (col.name.endswith("_id") and col.name not in entity.key):
        # a configured vocabulary that is empty, or an id the contract does not resolve
        # (the pipeline of a deal): empty means the default
        return ""
    if col.name in entity.key and col.type == "text":
        return _key(col.name)
    if col.contact:
        return EXAMPLE_CONTACT[col.contact]
    if col.type == "timestamp":
        return EXAMPLE_TIMESTAMP
    if col.type == "date":
        return EXAMPLE_DATE
    if col.type == "money":
        return f"{_number(col, 100):.2f}"
    if col.type == "number":
        return f"{_number(col, 100):g}"
    if col.type == "integer":
        return str(int(_number(col, 1)))
    if col.type == "boolean":
        return "true"
    return f"example {col.name.replace('_', ' ')}"


def example_rows(entities: dict[str, Entity]) -> dict[str, dict[str, str]]:
    """One row per entity (contract column -> value as text), parents before children, so
    that each reference names its parent's example key: together they load with nothing
    held back. `entities`: resolved against the pipelines file (`ingest.load.configured`),
    so a stage is one the configuration declares."""
    rows: dict[str, dict[str, str]] = {}
    for name in LOAD_ORDER:
        if name not in entities:
            continue
        entity = entities[name]
        parents = {
            ref.column: rows[ref.parent][ref.parent_column]
            if ref.parent in rows
            else _key(ref.parent_column)
            for ref in entity.references
        }
        rows[name] = {col.name: _value(entity, col, parents) for col in entity.columns}
    return rows
