"""The `crm` command.

    crm generate --customers N [--seed S] [--end DATE] [--format parquet|csv] [--dirty-rate R]
                 [--target files|postgres]
    crm run [--as-of DATE] [--reload] [--full-refresh] [--train] [--no-ml] [--json]
    crm backfill --from DATE --to DATE [--every N|month-end] [--reverse] [--no-ml]
                                        one run per as-of date
    crm demo [--customers N] [--force]  a fresh demo CRM, then crm run (refuses a home it
                                        did not make unless --force)
    crm postgres-marts [--as-of DATE]   the marts on PostgreSQL too (CRM_PG_*), BI role
    crm deployment up [--workers N] | status | down | airflow <args>   Celery deployment
    crm models [list] [--offer X] | rollback OFFER [--to VERSION]
    crm quarantine [list] | show ENTITY [--reason R] | export ENTITY --out F | resubmit ENTITY F
    crm contract [ENTITY] [--json]      what landing files must hold, with an example row
    crm check PATH [--json]             a landing folder or file checked, nothing loaded
    crm train --input FILE --target COLUMN [--id COLUMN] --out DIR
    crm score --model DIR --input FILE --out FILE [--id COLUMN]
    crm dbt [--as-of DATE] -- <dbt args>  dbt with the project's profile, target and date
    crm config [--json] [--markdown]    the effective settings, secrets masked
    crm airflow <args>                  any Airflow command, against this project's config

`crm --help` has examples and the exit codes (0 success, 1 run failed, 2 usage, 3 bad input,
4 environment); run, backfill, models, quarantine, contract, check and deployment take --json.

Heavy libraries are imported inside the commands so `crm --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from crm.cli import contract, data, models, ops, pipeline, quarantine
from crm.errors import CrmError, RetryableError
from crm.settings import get_settings

EXAMPLES = """\
examples:
  crm demo --customers 2000                 a demo CRM in CRM_HOME, then a whole run
  crm run --as-of 2026-05-31                the pipeline, models, scores and audiences
  crm run --as-of 2026-05-31 --no-ml --json the pipeline only; the summary as JSON on stdout
  crm backfill --from 2026-01-01 --to 2026-01-31
  crm check exports/                        what loading a folder would hold back, loading nothing
  crm quarantine                            what ingestion held back and why
  crm dbt --as-of 2026-05-31 -- build --select dim_customers

exit codes:
  0 success   1 the run failed   2 usage error (nothing ran)
  3 bad input (a contract or checkpoint rejected the data)
  4 environment (a service unreachable, the warehouse locked)

CRM_HOME (default ./data) holds landing/, the warehouse, models, audiences and reports.
"""


#: Commands that write CRM_HOME: one at a time per home (crm/home_lock.py).
WRITES_HOME = {"run", "backfill", "demo", "generate"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm",
        description="CRM marketing analytics: ingest, marts, target-customer models and "
        "audiences, run through Airflow.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # in the order `crm --help` lists them
    data.register(sub, parser)
    pipeline.register(sub, parser)
    ops.register(sub, parser)
    models.register(sub, parser)
    quarantine.register(sub, parser)
    contract.register(sub, parser)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crm-analytics")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _unreachable(exc: Exception) -> str | None:
    """What to say when `exc` means a server the command needs did not answer (PostgreSQL,
    Redis), or None when it is something else."""
    kind = f"{type(exc).__module__}.{type(exc).__name__}"
    if kind.startswith("psycopg2") and type(exc).__name__ == "OperationalError":
        return f"PostgreSQL did not answer: {str(exc).strip().splitlines()[0]}"
    if isinstance(exc, ConnectionError) or kind.startswith("redis.exceptions.Connection"):
        return f"a server did not answer: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command. An expected error prints a line or two, never a traceback, and
    exits with its kind's code (crm/errors.py); with --json, stdout carries exactly one
    JSON document (the result, or the error) and everything for people goes to stderr."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    args.line = " ".join(["crm", *(argv if argv is not None else sys.argv[1:])])
    if getattr(args, "offer_option", None):
        args.offer = args.offer_option
    as_json = getattr(args, "json", False)
    args.result = None
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            if args.command in WRITES_HOME:
                from crm.home_lock import exclusive_home

                with exclusive_home(get_settings(), args.line):
                    code = args.func(args)
            else:
                code = args.func(args)
    except Exception as exc:
        if not isinstance(exc, CrmError) and not _unreachable(exc):
            raise  # a bug: the traceback is what a developer needs
        code = getattr(exc, "exit_code", RetryableError.exit_code)
        message = str(exc).strip() if isinstance(exc, CrmError) else _unreachable(exc)
        print(f"crm {args.command}: {message}", file=sys.stderr)
        if as_json:
            args.result = {"error": message, "exit_code": code, **(args.result or {})}
    if as_json:
        sys.stdout.write(json.dumps(args.result or {}, indent=2, default=str) + "\n")
        sys.stdout.flush()
    return code
