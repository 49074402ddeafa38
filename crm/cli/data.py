"""`crm generate` and `crm demo`: the seeded demo CRM, and a whole run on it."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from crm.cli.common import today
from crm.errors import UsageError
from crm.settings import get_settings


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from crm.runs import parse_date
    from datagen.dirty import inject
    from datagen.generator import GenerationSpec, generate
    from datagen.writer import write_landing, write_manifest

    if args.customers < 1:
        raise UsageError("--customers must be at least 1")
    if not 0 <= args.dirty_rate < 0.5:
        raise UsageError("--dirty-rate must be between 0 and 0.5")
    settings = get_settings()
    spec = GenerationSpec(customers=args.customers, seed=args.seed, end=parse_date(args.end))
    started = time.perf_counter()
    bar = tqdm(total=18, desc="generate", unit="step", file=sys.stderr, disable=args.quiet)

    def progress(message: str) -> None:
        bar.set_postfix_str(message)
        bar.update(1)

    if args.target == "postgres":
        if not settings.source_url:
            raise UsageError(
                "--target postgres writes the CRM database CRM_SOURCE_URL names: set it, "
                "e.g. CRM_SOURCE_URL=postgresql://postgres@127.0.0.1:5432/crm_source"
            )
        if args.dirty_rate:
            raise UsageError(
                "--dirty-rate applies to files: a CRM database's constraints refuse them"
            )
    crm = generate(spec, progress=progress)
    dirty = inject(crm, args.dirty_rate, args.seed) if args.dirty_rate else {}
    generated_s = time.perf_counter() - started
    if args.target == "postgres":
        from datagen.source_db import write_source_db

        write_source_db(crm.tables, settings.source_url, settings.source_schema, progress)
        where = f"the CRM database ({settings.source_schema} schema)"
        settings.landing.mkdir(parents=True, exist_ok=True)
        write_manifest(crm, settings.landing, {"target": "postgres"})
    else:
        write_landing(
            crm,
            settings.landing,
            fmt=args.format,
            manifest_extra={"dirty_rate": args.dirty_rate, "dirty": dirty},
            progress=progress,
        )
        where = f"{settings.landing} ({args.format})"
    bar.close()
    total = time.perf_counter() - started
    rows = {name: t.num_rows for name, t in crm.tables.items()}
    print(
        f"Demo CRM: {args.customers:,} customers, {spec.start} to {spec.end} (end excluded), "
        f"seed {args.seed}"
    )
    for name, n in rows.items():
        print(f"  {name:<27}{n:>14,}")
    print(f"  {'total rows':<27}{sum(rows.values()):>14,}")
    if dirty:
        bad = sum(sum(v["quarantine"].values()) for v in dirty.values())
        print(
            f"  dirty rows injected: {bad:,} to be quarantined, "
            f"{sum(v['late_updates'] for v in dirty.values()):,} late updates"
        )
    print(f"Generated in {generated_s:.1f} s, written in {total - generated_s:.1f} s to {where}")
    return 0


#: The file `crm demo` leaves in a CRM_HOME it made: only such a home is replaced.
DEMO_MARK = ".crm-demo"

#: What a fresh demo replaces in its home (the landing entity folders are replaced by
#: `crm generate`); the Airflow home stays, so its metadata database is not migrated again.
DEMO_OUTPUTS = ("warehouse", "models", "audiences", "reports", "dbt")


def _user_data(home: Path) -> list[str]:
    """What a home holds that `crm demo` would delete: landing files, warehouse, outputs."""
    found = []
    landing = home / "landing"
    if landing.is_dir():
        for entry in sorted(landing.iterdir()):
            if entry.is_file() or any(p.is_file() for p in entry.rglob("*")):
                found.append(str(entry))
    for name in DEMO_OUTPUTS:
        folder = home / name
        if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
            found.append(str(folder))
    return found


def cmd_demo(args: argparse.Namespace) -> int:
    """A fresh demo: new landing files, an empty warehouse, no models, one full run.

    It replaces only a home it made itself (marked by DEMO_MARK), or an empty one; a home
    holding anything else is somebody's own CRM, replaced only with --force."""
    settings = get_settings()
    home = settings.home
    held = _user_data(home)
    if held and not (home / DEMO_MARK).exists() and not args.force:
        shown = "\n  ".join(held[:12]) + ("\n  ..." if len(held) > 12 else "")
        raise UsageError(
            f"{home} holds data that `crm demo` did not make; a demo would delete:\n  {shown}\n"
            "Use another CRM_HOME for the demo, or --force to replace it."
        )
    for name in DEMO_OUTPUTS:
        shutil.rmtree(home / name, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    end = args.end or today()
    (home / DEMO_MARK).write_text(
        json.dumps({"customers": args.customers, "seed": args.seed, "end": end}) + "\n"
    )
    # through the parser, so every option of generate and run keeps its default
    parser = args.root_parser
    generate = ["generate", "--customers", str(args.customers), "--seed", str(args.seed)]
    generated = parser.parse_args([*generate, "--end", end])
    generated.func(generated)
    print()
    run = parser.parse_args(["run", "--as-of", end])
    run.result = None
    code = run.func(run)
    args.result = run.result
    return code


def register(sub, root: argparse.ArgumentParser) -> None:
    gen = sub.add_parser("generate", help="write a demo CRM into CRM_HOME/landing")
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--end", default=today(), help="history ends before this date (default today)")
    gen.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    gen.add_argument(
        "--target",
        choices=("files", "postgres"),
        default="files",
        help="landing files (default), or the PostgreSQL CRM database CRM_SOURCE_URL names "
        "(its schema is replaced)",
    )
    gen.add_argument(
        "--dirty-rate",
        type=float,
        default=0.0,
        help="share of extra defective rows per entity, e.g. 0.02",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser(
        "demo", help="a fresh demo CRM in CRM_HOME, then a whole run (what make run does)"
    )
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--end", default=None, help="history ends before this date (default today)")
    demo.add_argument(
        "--force",
        action="store_true",
        help="replace CRM_HOME even though it holds data crm demo did not make",
    )
    demo.set_defaults(func=cmd_demo, root_parser=root)
