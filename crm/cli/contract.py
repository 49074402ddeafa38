"""`crm contract` and `crm check`: what the landing files must look like, and whether a
folder of them does, before anything loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from crm.cli.common import json_option
from crm.errors import UsageError
from crm.settings import get_settings


def _describe(entity, mapping, example: dict[str, str]) -> dict:
    """One entity of the contract as this home's configuration makes it, JSON-ready."""
    sources: dict[str, list[str]] = {}
    for source, targets in mapping.columns.items():
        for target in targets:
            sources.setdefault(target, []).append(source)
    parents = {r.column: f"{r.parent}.{r.parent_column}" for r in entity.references}
    columns = []
    for col in entity.columns:
        columns.append(
            {
                "name": col.name,
                "type": col.type,
                "required": col.required or col.name in entity.key,
                "key": col.name in entity.key,
                "allowed": list(col.allowed) if col.allowed is not None else None,
                "allowed_from": "pipelines file" if col.vocabulary else None,
                "minimum": col.minimum,
                "maximum": col.maximum,
                "not_future": col.not_future,
                "contact": col.contact,
                "personal": col.personal,
                "references": parents.get(col.name),
                "source_columns": sources.get(col.name, []),
                "value_map": mapping.values.get(col.name),
                "names_as_keys": col.name in mapping.keys_from_names,
                "description": col.description,
            }
        )
    return {
        "name": entity.name,
        "description": entity.description,
        "required": entity.required,
        "key": list(entity.key),
        "columns": columns,
        "references": [
            {"column": r.column, "parent": r.parent, "parent_column": r.parent_column}
            for r in entity.references
        ],
        "personal": [c.name for c in entity.columns if c.personal],
        "computed_at_load": {c.name: c.derived_from for c in entity.derived_columns},
        "values_match": mapping.values_match if mapping.values else None,
        "example": example,
    }


def cmd_contract(args: argparse.Namespace) -> int:
    from crm.cli.format import format_contract
    from ingest.contract import ENTITIES
    from ingest.examples import example_rows
    from ingest.load import configured

    if args.entity and args.entity not in ENTITIES:
        raise UsageError(
            f"unknown entity {args.entity!r}; the contract's entities: {', '.join(ENTITIES)}"
        )
    settings = get_settings()
    # every entity, also for one: an example row names its parents' example keys
    resolved = {name: configured(name, settings) for name in ENTITIES}
    examples = example_rows({name: entity for name, (entity, _) in resolved.items()})
    shown = [args.entity] if args.entity else list(ENTITIES)
    args.result = {
        "mapping_file": str(settings.mapping_path) if settings.mapping_path.is_file() else None,
        "pipelines_file": str(settings.pipelines_path),
        "entities": {name: _describe(*resolved[name], examples[name]) for name in shown},
    }
    print(format_contract(args.result))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from crm.cli.format import format_check
    from ingest.dry_run import check

    result = check(Path(args.path), get_settings())
    args.result = result
    print(format_check(result))
    return 0 if result["ok"] else 3


def register(sub, root: argparse.ArgumentParser) -> None:
    contract = sub.add_parser(
        "contract",
        help="what landing files must hold: columns, types, allowed values, your mapping, "
        "an example row",
    )
    contract.add_argument("entity", nargs="?", default=None, help="only this entity")
    json_option(contract)
    contract.set_defaults(func=cmd_contract)

    check = sub.add_parser(
        "check",
        help="check a landing folder or file against the contract, loading nothing "
        "(exit 3: rows would be held back)",
    )
    check.add_argument(
        "path",
        help="a landing folder (one subfolder per entity) or a file in an entity's folder",
    )
    json_option(check)
    check.set_defaults(func=cmd_check)
