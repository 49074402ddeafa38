"""The column mapping file: load a user's own export whose column names differ.

`landing/mapping.yml` (or the file in `CRM_MAPPING_FILE`) says, per entity, which of the
user's columns is which contract column, and how to read their CSV files::

    transactions:
      columns:            # your column: contract column
        order_no: transaction_id
        cust: customer_id
        order_ts: occurred_at
        total: amount
      csv:
        delimiter: ";"
        encoding: gb18030     # any Python codec; read as UTF-8 after transcoding

Mistakes in the mapping are reported before anything loads: an unknown entity, a target
that is not a contract column, two columns mapped onto one, or (when a file is read) a
mapped column the file does not have.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from crm.errors import BadInputError
from ingest.contract import ENTITIES

CSV_OPTIONS = {
    "delimiter",
    "encoding",
    "header",
    "quote",
    "escape",
    "decimal_separator",
    "thousands_separator",
    "max_line_size",
}


@dataclass(frozen=True)
class EntityMapping:
    columns: dict[str, str] = field(default_factory=dict)
    csv: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    entities: dict[str, EntityMapping] = field(default_factory=dict)
    source: Path | None = None

    def for_entity(self, entity: str) -> EntityMapping:
        return self.entities.get(entity, EntityMapping())


def normalise_name(name: str) -> str:
    """Column names compare case- and space-insensitively: ` Customer ID` is `customer_id`."""
    return "_".join(str(name).strip().lower().split())


def load_mapping(path: Path | None) -> Mapping:
    if path is None or not path.exists():
        return Mapping()
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BadInputError(f"mapping file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadInputError(f"mapping file {path} must hold one section per entity")
    entities = {}
    for entity, spec in doc.items():
        if entity not in ENTITIES:
            raise BadInputError(
                f"mapping file {path} names an unknown entity {entity!r}; "
                f"known entities: {', '.join(ENTITIES)}"
            )
        spec = spec or {}
        unknown_keys = set(spec) - {"columns", "csv"}
        if unknown_keys:
            raise BadInputError(
                f"mapping file {path}, {entity}: unknown settings {sorted(unknown_keys)}; "
                "use 'columns' and 'csv'"
            )
        columns = {
            normalise_name(k): normalise_name(v) for k, v in (spec.get("columns") or {}).items()
        }
        contract_columns = set(ENTITIES[entity].column_names)
        for source_col, target in columns.items():
            if target not in contract_columns:
                raise BadInputError(
                    f"mapping file {path}, {entity}: {source_col!r} is mapped to {target!r}, "
                    f"which is not a column of {entity} "
                    f"(columns: {', '.join(ENTITIES[entity].column_names)})"
                )
        targets = list(columns.values())
        doubled = sorted({t for t in targets if targets.count(t) > 1})
        if doubled:
            raise BadInputError(
                f"mapping file {path}, {entity}: several columns are mapped onto {doubled}"
            )
        csv = dict(spec.get("csv") or {})
        bad_csv = set(csv) - CSV_OPTIONS
        if bad_csv:
            raise BadInputError(
                f"mapping file {path}, {entity}: unknown csv options {sorted(bad_csv)}; "
                f"allowed: {sorted(CSV_OPTIONS)}"
            )
        if "encoding" in csv:
            try:
                csv["encoding"] = codecs.lookup(str(csv["encoding"])).name
            except LookupError:
                raise BadInputError(
                    f"mapping file {path}, {entity}: unknown csv encoding {csv['encoding']!r}; "
                    "e.g. utf-8, gb18030, gbk, utf-16, cp1252, latin-1, shift_jis"
                ) from None
        if "max_line_size" in csv and not (
            isinstance(csv["max_line_size"], int) and csv["max_line_size"] > 0
        ):
            raise BadInputError(
                f"mapping file {path}, {entity}: max_line_size must be a number of bytes"
            )
        decimal = str(csv.get("decimal_separator", "."))
        if decimal not in (".", ","):
            raise BadInputError(
                f"mapping file {path}, {entity}: decimal_separator must be '.' or ','"
            )
        thousands = csv.get("thousands_separator")
        if thousands is not None and (
            str(thousands) not in (".", ",", " ", "'") or (str(thousands) == decimal)
        ):
            raise BadInputError(
                f"mapping file {path}, {entity}: thousands_separator must be one of "
                f"'.', ',', ' ', \"'\" and differ from decimal_separator ({decimal!r})"
            )
        entities[entity] = EntityMapping(columns=columns, csv=csv)
    return Mapping(entities=entities, source=path)
