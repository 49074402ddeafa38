"""The `crm` command.

    crm generate --customers N [--seed S] [--end DATE] [--format parquet|csv] [--dirty-rate R]
    crm run [--as-of DATE] [--reload] [--full-refresh]
    crm demo [--customers N]            generate a fresh demo CRM and run the pipeline
    crm airflow <args>                  any Airflow command, against this project's config

Heavy libraries are imported inside the commands so `crm --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime

from crm.errors import CrmError
from crm.settings import get_settings


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from crm.runs import parse_date
    from datagen.dirty import inject
    from datagen.generator import GenerationSpec, generate
    from datagen.writer import write_landing

    if args.customers < 1:
        raise CrmError("--customers must be at least 1")
    if not 0 <= args.dirty_rate < 0.5:
        raise CrmError("--dirty-rate must be between 0 and 0.5")
    settings = get_settings()
    spec = GenerationSpec(customers=args.customers, seed=args.seed, end=parse_date(args.end))
    started = time.perf_counter()
    bar = tqdm(total=18, desc="generate", unit="step", file=sys.stderr, disable=args.quiet)

    def progress(message: str) -> None:
        bar.set_postfix_str(message)
        bar.update(1)

    crm = generate(spec, progress=progress)
    dirty = inject(crm, args.dirty_rate, args.seed) if args.dirty_rate else {}
    generated_s = time.perf_counter() - started
    write_landing(
        crm,
        settings.landing,
        fmt=args.format,
        manifest_extra={"dirty_rate": args.dirty_rate, "dirty": dirty},
        progress=progress,
    )
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
    print(
        f"Generated in {generated_s:.1f} s, written in {total - generated_s:.1f} s "
        f"to {settings.landing} ({args.format})"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from crm.orchestrate import run_pipeline
    from crm.runs import format_summary, parse_date

    as_of = parse_date(args.as_of)
    print(f"Running the pipeline for {as_of} through Airflow (crm_pipeline)...")
    summary = run_pipeline(as_of, reload=args.reload, full_refresh=args.full_refresh)
    print()
    print(format_summary(summary))
    print(f"{'airflow':<10} {summary['airflow_log']}")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """A fresh demo: new landing files, an empty warehouse, one pipeline run."""
    settings = get_settings()
    for path in (settings.warehouse_path, settings.warehouse_path.with_suffix(".duckdb.wal")):
        if path.exists():
            path.unlink()
    if (settings.reports / "runs").exists():
        shutil.rmtree(settings.reports / "runs")
    end = args.end or _today()
    gen = argparse.Namespace(
        customers=args.customers,
        seed=args.seed,
        end=end,
        format="parquet",
        dirty_rate=0.0,
        quiet=False,
    )
    cmd_generate(gen)
    print()
    return cmd_run(argparse.Namespace(as_of=end, reload=False, full_refresh=False, json=False))


def cmd_airflow(args: argparse.Namespace) -> int:
    from crm.orchestrate import airflow, ensure_airflow

    ensure_airflow()
    return airflow(args.airflow_args).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="CRM marketing analytics platform")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a demo CRM into CRM_HOME/landing")
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--end", default=_today(), help="history ends before this date (default today)"
    )
    gen.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    gen.add_argument(
        "--dirty-rate",
        type=float,
        default=0.0,
        help="share of extra defective rows per entity, e.g. 0.02",
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="run the pipeline for one as-of date through Airflow")
    run.add_argument("--as-of", default=_today(), help="last day of data to use (default today)")
    run.add_argument("--reload", action="store_true", help="reload landing files already loaded")
    run.add_argument(
        "--full-refresh", action="store_true", help="rebuild incremental models from scratch"
    )
    run.add_argument("--json", action="store_true", help="also print the summary as JSON")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="fresh demo CRM + warehouse, then one pipeline run")
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--end", default=None)
    demo.set_defaults(func=cmd_demo)

    af = sub.add_parser("airflow", help="run an Airflow command with this project's settings")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CrmError as exc:
        print(f"crm {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
