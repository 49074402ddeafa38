"""The column mapping file: load a user's own export whose column names differ.

`landing/mapping.yml` (or the file in `CRM_MAPPING_FILE`) says, per entity, which of the
user's columns is which contract column, and how to read their CSV files::

    transactions:
      columns:            # your column: contract column (or a list of them)
        order_no: transaction_id
        cust: customer_id
        order_ts: occurred_at
        total: amount
      values:             # contract column: {your value: contract value}
        status:
          Paid: completed
          Storno: cancelled
          "*": null           # optional: any other value loads as empty ("*": "*": as is)
      values_match: loose     # exact (default) or loose: case and spaces do not matter
      csv:
        delimiter: ";"
        encoding: gb18030     # any Python codec; read as UTF-8 after transcoding
        date_format: "%d.%m.%Y"          # or a list; strftime codes, declared, never guessed
        timestamp_format: "%d.%m.%Y %H:%M"
    sales_reps:
      columns: {sales_agent: [owner_id, name]}   # one column gives two
      keys_from_names: [owner_id]   # the key is a name: loaded trimmed, lower-case, one space

A value of a column with a value map that the map does not name and that is not already a
contract value (one of the column's allowed values, or one of the map's targets) is
quarantined as `unmapped_value`, naming the column and the value; `crm quarantine` lists
them with counts, to add to the map.

Mistakes in the mapping are reported before anything loads: an unknown entity, a target
that is not a contract column, two columns mapped onto one, a value mapped to one the
contract does not allow, or (when a file is read) a mapped column the file does not have.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from crm.errors import BadInputError
from ingest.contract import ENTITIES

CSV_OPTIONS = {
    "date_format",
    "timestamp_format",
    "delimiter",
    "encoding",
    "header",
    "quote",
    "escape",
    "decimal_separator",
    "thousands_separator",
    "max_line_size",
}


#: The key of a value map that stands for every value not listed.
ANY_OTHER_VALUE = "*"
VALUE_MATCHING = ("exact", "loose")


@dataclass(frozen=True)
class EntityMapping:
    columns: dict[str, str] = field(default_factory=dict)
    csv: dict[str, object] = field(default_factory=dict)
    #: contract column -> {source value: contract value (None: empty)}
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: `loose`: values compare without regard to case and runs of spaces.
    values_match: str = "exact"
    #: Key and reference columns whose values are names ("Anna Berg", "GTX Pro"): loaded
    #: as the normalised name (trimmed, lower case, one space), so that the same name
    #: spelled with other case or spacing in another file is the same key.
    keys_from_names: tuple[str, ...] = ()


def _id_columns(entity: str) -> set[str]:
    """The columns that hold keys: the entity's own and those referencing another."""
    spec = ENTITIES[entity]
    return set(spec.key) | {r.column for r in spec.references}


def match_key(value: str, values_match: str) -> str:
    """A value as the value map compares it: trimmed; with `loose`, also lower case and
    with runs of spaces made one ("Closed  Won" is "closed won"). Used to find a key given
    twice; the loads compare in SQL (ingest.checks._match_sql)."""
    value = str(value).strip()
    return " ".join(value.lower().split()) if values_match == "loose" else value


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
        unknown_keys = set(spec) - {"columns", "csv", "values", "values_match", "keys_from_names"}
        if unknown_keys:
            raise BadInputError(
                f"mapping file {path}, {entity}: unknown settings {sorted(unknown_keys)}; "
                "use 'columns', 'values', 'values_match', 'keys_from_names' and 'csv'"
            )
        columns = {
            normalise_name(k): tuple(normalise_name(t) for t in (v if isinstance(v, list) else [v]))
            for k, v in (spec.get("columns") or {}).items()
        }
        contract_columns = set(ENTITIES[entity].column_names)
        for source_col, targets in columns.items():
            for target in targets:
                if target not in contract_columns:
                    raise BadInputError(
                        f"mapping file {path}, {entity}: {source_col!r} is mapped to "
                        f"{target!r}, which is not a column of {entity} "
                        f"(columns: {', '.join(ENTITIES[entity].column_names)})"
                    )
        targets = [t for ts in columns.values() for t in ts]
        doubled = sorted({t for t in targets if targets.count(t) > 1})
        if doubled:
            raise BadInputError(
                f"mapping file {path}, {entity}: several columns are mapped onto {doubled}"
            )
        keys_from_names = tuple(normalise_name(c) for c in spec.get("keys_from_names") or [])
        not_ids = sorted(set(keys_from_names) - _id_columns(entity))
        if not_ids:
            raise BadInputError(
                f"mapping file {path}, {entity}: keys_from_names lists {not_ids}, which are "
                f"not key or reference columns of {entity} "
                f"(those are: {', '.join(sorted(_id_columns(entity)))})"
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
        for key in ("date_format", "timestamp_format"):
            if key in csv:
                formats = csv[key] if isinstance(csv[key], list) else [csv[key]]
                if not formats or not all(isinstance(f, str) and "%" in f for f in formats):
                    raise BadInputError(
                        f"mapping file {path}, {entity}: {key} must be a strftime format such "
                        "as '%d/%m/%Y', or a list of them"
                    )
                csv[key] = formats
        values_match = str(spec.get("values_match") or "exact")
        if values_match not in VALUE_MATCHING:
            raise BadInputError(
                f"mapping file {path}, {entity}: values_match must be exact or loose"
            )
        entities[entity] = EntityMapping(
            columns=columns,
            csv=csv,
            values=_value_maps(path, entity, spec.get("values"), values_match),
            values_match=values_match,
            keys_from_names=keys_from_names,
        )
    return Mapping(entities=entities, source=path)


def _value_maps(path, entity: str, spec, values_match: str) -> dict[str, dict[str, str | None]]:
    """`values:` of one entity: per contract column, source value -> contract value."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise BadInputError(
            f"mapping file {path}, {entity}: 'values' holds one map per column, "
            "e.g. values: {{status: {{Paid: completed}}}}"
        )
    maps = {}
    for column, pairs in spec.items():
        column = normalise_name(column)
        if column not in ENTITIES[entity].column_names:
            raise BadInputError(
                f"mapping file {path}, {entity}: values are mapped for {column!r}, which is "
                f"not a column of {entity} (columns: {', '.join(ENTITIES[entity].column_names)})"
            )
        if not isinstance(pairs, dict) or not pairs:
            raise BadInputError(
                f"mapping file {path}, {entity}, values of {column}: expected your value: "
                "contract value pairs"
            )
        mapped: dict[str, str | None] = {}
        for source, target in pairs.items():
            for value in (source, target):
                if isinstance(value, bool) or (value is None and value is source):
                    raise BadInputError(
                        f"mapping file {path}, {entity}, values of {column}: YAML reads "
                        f"{value!r} as a {'boolean' if isinstance(value, bool) else 'null'}; "
                        "quote values such as yes, no, on, off and ~ ('Yes': ...)"
                    )
            key = str(source) if source == ANY_OTHER_VALUE else match_key(source, values_match)
            target = None if target is None else str(target).strip()
            if key in mapped and mapped[key] != target:
                loose = " (loose matching ignores case and spaces)"
                raise BadInputError(
                    f"mapping file {path}, {entity}, values of {column}: {source!r} is mapped "
                    f"twice, to {mapped[key]!r} and {target!r}"
                    + (loose if values_match == "loose" else "")
                )
            mapped[key] = target
        maps[column] = mapped
    return maps


def check_values_allowed(
    mapping: EntityMapping, entity, source: Path | None = None
) -> EntityMapping:
    """The value maps with each target in the allowed spelling of its contract column
    (`entity` resolved against the pipelines file); BadInputError for a target the contract
    does not allow, before anything loads."""
    fixed = {}
    for column, pairs in mapping.values.items():
        contract = entity.column(column)
        allowed = contract.allowed or ()
        spelled = {a.casefold(): a for a in allowed}
        fixed[column] = {}
        for key, target in pairs.items():
            if target is None and contract.required:
                raise BadInputError(
                    f"mapping file {source}, {entity.name}, values of {column}: {key!r} is "
                    f"mapped to empty, but {column} is required"
                )
            if key == ANY_OTHER_VALUE and target == ANY_OTHER_VALUE:
                fixed[column][key] = target  # every other value stays as it is
                continue
            if target is not None and allowed and target.casefold() not in spelled:
                raise BadInputError(
                    f"mapping file {source}, {entity.name}, values of {column}: {key!r} is "
                    f"mapped to {target!r}, which {column} does not allow "
                    f"(allowed: {', '.join(allowed)})"
                )
            fixed[column][key] = spelled.get(target.casefold(), target) if target else target
    return replace(mapping, values=fixed)
