"""`crm quarantine`: what ingestion held back and why, exported and resubmitted."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crm.cli.common import json_option
from crm.errors import UsageError
from crm.settings import get_settings


def cmd_quarantine(args: argparse.Namespace) -> int:
    from crm.warehouse import session
    from ingest import quarantine

    settings = get_settings()
    if args.action == "resubmit":
        if not (args.entity and args.file):
            raise UsageError("crm quarantine resubmit ENTITY FILE")
        done = quarantine.resubmit(args.entity, Path(args.file), settings)
        args.result = {**done, "landing_file": str(done["landing_file"])}
        print(
            f"{done['rows']:,} {args.entity} rows placed in {done['landing_file']}; "
            f"the next `crm run` loads them (rows still wrong are held back again)"
        )
        return 0
    if not settings.warehouse_path.exists():
        print(f"no warehouse yet at {settings.warehouse_path}")
        args.result = {"warehouse": None, "held_back": []}
        return 0
    with session(read_only=True, settings=settings) as con:
        if args.action == "list":
            table = quarantine.summary(con)
            unmapped = quarantine.unmapped_values(con)
            args.result = {"held_back": _records(table), "unmapped_values": _records(unmapped)}
            if table.empty:
                print("nothing is held back")
            for r in table.itertuples():
                meaning, todo = quarantine.REASONS.get(r.reason_code, ("", ""))
                print(f"{r.entity:<26} {r.reason_code:<18} {r.rows:>9,} rows in {r.files} file(s)")
                print(f"    {meaning}; e.g. {r.example}")
                print(f"    what to do: {todo}")
            if not unmapped.empty:
                print("\nvalues no value map names (add them to the mapping file, under values:)")
                for r in unmapped.itertuples():
                    print(f"  {r.entity}.{r.column_name:<24} {r.value!r:<30} {r.rows:>9,} rows")
            return 0
        if not args.entity:
            raise UsageError(f"which entity? crm quarantine {args.action} ENTITY")
        if args.action == "show":
            held = quarantine.rows(con, args.entity, args.reason, args.limit)
            args.result = {"entity": args.entity, "rows": _records(held)}
            for r in held.itertuples():
                print(f"{r.source_file}:{r.row_number}  {r.reason_code}: {r.reason}")
                print(f"    {r.raw_row}")
            return 0
        if not args.out:
            raise UsageError("crm quarantine export ENTITY --out FILE.csv")
        done = quarantine.export(con, args.entity, Path(args.out), args.reason)
        args.result = {"entity": args.entity, **done}
    if done["file"]:
        print(
            f"{done['rows']:,} held-back {args.entity} rows written to {done['file']}; fix "
            f"them, then `crm quarantine resubmit {args.entity} {done['file']}`"
        )
    if done["lines_file"]:
        print(
            f"{done['lines']:,} {args.entity} line(s) that could not be split into columns "
            f"written as they were to {done['lines_file']}; repair them, put the file's "
            "header line above them, save as .csv and resubmit that"
        )
    return 0


def _records(frame) -> list[dict]:
    """A frame as JSON-ready rows (timestamps as ISO text)."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def register(sub, root: argparse.ArgumentParser) -> None:
    quar = sub.add_parser("quarantine", help="what ingestion held back and why; resubmit fixes")
    quar.add_argument(
        "action", nargs="?", choices=("list", "show", "export", "resubmit"), default="list"
    )
    quar.add_argument("entity", nargs="?", default=None)
    quar.add_argument("file", nargs="?", default=None, help="resubmit: the fixed file")
    quar.add_argument("--reason", default=None, help="only this reason code")
    quar.add_argument("--limit", type=int, default=20, help="show: at most this many rows")
    quar.add_argument("--out", default=None, help="export: the CSV to write")
    json_option(quar)
    quar.set_defaults(func=cmd_quarantine)
