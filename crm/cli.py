"""The `crm` command.

    crm generate --customers N [--seed S] [--end DATE] [--format parquet|csv] [--dirty-rate R]
                 [--target files|postgres]
    crm run [--as-of DATE] [--reload] [--full-refresh] [--train] [--no-ml]
    crm backfill --from DATE --to DATE [--reverse] [--no-ml]   one run per as-of date
    crm demo [--customers N]            generate a fresh demo CRM and run the pipeline
    crm postgres-marts [--as-of DATE]   the marts on PostgreSQL too (CRM_PG_*), BI role
    crm deployment up [--workers N] | status | down | airflow <args>   Celery deployment
    crm models [list] [--offer X] | rollback OFFER [--to VERSION]
    crm quarantine [list] | show ENTITY [--reason R] | export ENTITY --out F | resubmit ENTITY F
    crm train --input FILE --target COLUMN [--id COLUMN] --out DIR
    crm score --model DIR --input FILE --out FILE [--id COLUMN]
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
from pathlib import Path

from crm.errors import CrmError
from crm.settings import get_settings


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from crm.runs import parse_date
    from datagen.dirty import inject
    from datagen.generator import GenerationSpec, generate
    from datagen.writer import write_landing, write_manifest

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

    if args.target == "postgres":
        if not settings.source_url:
            raise CrmError(
                "--target postgres writes the CRM database CRM_SOURCE_URL names: set it, "
                "e.g. CRM_SOURCE_URL=postgresql://postgres@127.0.0.1:5432/crm_source"
            )
        if args.dirty_rate:
            raise CrmError(
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


def _offers_never_trained(settings) -> list[str]:
    """Offers the registry has no decision for yet (an offer a guard stopped has one)."""
    from crm.warehouse import session
    from ml.features import offers
    from ml.registry import Registry

    with session(read_only=True, settings=settings) as con:
        offer_ids = offers(con)
    registry = Registry(settings.models)
    return [o for o in offer_ids if not registry.decisions(o)]


def _format_training(summary: dict) -> str:
    lines = [
        f"Target-customer models as of {summary['as_of']} (train on "
        f"{summary['train_date']}, holdout {summary['holdout_date']}):"
    ]
    for offer, o in summary["offers"].items():
        if o["status"] == "stopped":
            lines.append(f"  {offer:<12} stopped: {o['reason']}")
            continue
        h = o["holdout"]
        lines.append(
            f"  {offer:<12} {o['status']:<9} AUC {h['roc_auc']:.3f}  "
            f"lift@10% {h['lift_at_10']:.2f} "
            f"(logistic {o['logistic_lift_at_10']:.2f})  champion {o['champion']}"
        )
        lines.append(f"  {'':<12} top rule: {o['top_rule']}")
        lines.append(f"  {'':<12} {o['reason']}")
    return "\n".join(lines)


def _format_scoring(summary: dict) -> str:
    lines = [f"Scores as of {summary['as_of']} (ml.customer_scores, ml.offer_audiences):"]
    for offer, o in summary["offers"].items():
        if o["status"] != "scored":
            lines.append(f"  {offer:<12} {o['status']}")
            continue
        bands = ", ".join(f"{k} {v:,}" for k, v in sorted(o["bands"].items()))
        lines.append(
            f"  {offer:<12} {o['eligible']:,} eligible scored ({bands}); audience "
            f"{o['audience']:,} by {o['selected_by'] or '-'}"
        )
    return "\n".join(lines)


def _format_activation(summary: dict) -> str:
    lines = [f"Audiences released for {summary['as_of']} (CRM database: {summary['crm_db']}):"]
    for offer, o in summary["offers"].items():
        m = o["manifest"]
        reasons = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["suppressed"].items() if v)
        diff = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in m["diff"].items() if v)
        state = "new release" if o.get("files", {}).get("written") else "unchanged"
        lines.append(
            f"  {offer:<12} {m['row_count']:,} released ({m['target']:,} target, "
            f"{m['holdout']:,} holdout), {state}; suppressed {m['suppressed_total']:,}"
            + (f" ({reasons})" if reasons else "")
            + (f"; diff: {diff}" if diff else "")
        )
        if "crm_db" in o and "skipped" in o["crm_db"]:
            lines.append(f"  {'':<12} CRM database: skipped, {o['crm_db']['skipped']}")
        elif "crm_db" in o:
            db = o["crm_db"]
            lines.append(
                f"  {'':<12} CRM database: {db['inserted']:,} inserted, {db['updated']:,} "
                f"updated, {db['deleted']:,} deleted, {db['failed']:,} refused"
            )
    from crm.runs import format_validation

    lines += format_validation(summary.get("validation"), "audience checkpoint")[1:]
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from crm.orchestrate import run_activation, run_pipeline, run_scoring, run_training
    from crm.runs import format_summary, parse_date

    settings = get_settings()
    as_of = parse_date(args.as_of)
    print(f"Running the pipeline for {as_of} through Airflow (crm_pipeline)...")
    summary = run_pipeline(as_of, reload=args.reload, full_refresh=args.full_refresh)
    print()
    print(format_summary(summary))
    print(f"{'airflow':<10} {summary['airflow_log']}")
    if args.json:
        print(json.dumps(summary, indent=2))
    if args.no_ml:
        return 0
    untrained = _offers_never_trained(settings)
    if args.train or untrained:
        why = "asked for" if args.train else f"never trained: {', '.join(untrained)}"
        print(f"\nTraining the target-customer models ({why}; train_target_models)...")
        print(_format_training(run_training(as_of)))
    print("\nScoring customers (score_target_customers)...")
    print(_format_scoring(run_scoring(as_of)))
    print("\nPublishing the audiences (activate_audiences)...")
    activation = run_activation(as_of)
    print(_format_activation(activation))
    print(f"{'models':<10} {settings.models}")
    print(f"{'audiences':<10} {settings.audiences}")
    print(f"{'report':<10} {activation['report']}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Run a range of as-of dates, one full run per date, in the order asked for. Each run
    is point in time and idempotent, so a failed backfill is resumed by running it again."""
    from crm.orchestrate import run_activation, run_pipeline, run_scoring
    from crm.runs import backfill_dates, parse_date

    dates = backfill_dates(parse_date(args.date_from), parse_date(args.date_to), args.reverse)
    print(f"Backfilling {len(dates)} date(s), {dates[0]} to {dates[-1]}, one run each...")
    if not args.no_ml:
        print(
            "Scores use today's champion models (a backfill does not train); offers never "
            "trained are not scored"
            + (f": {', '.join(u)}" if (u := _offers_never_trained(get_settings())) else "")
            + "."
        )
    done = []
    for as_of in dates:
        print(f"\n{as_of}: crm_pipeline")
        try:
            summary = run_pipeline(as_of)
            if not args.no_ml:
                print(f"{as_of}: score_target_customers, activate_audiences")
                run_scoring(as_of)
                run_activation(as_of)
        except CrmError:
            print(f"\nThe run for {as_of} failed; done before it: {', '.join(done) or 'none'}.")
            print("Fix the cause and run the same backfill again: finished dates change nothing.")
            raise
        done.append(as_of.isoformat())
        loaded = sum(r["rows_loaded"] for r in summary["ingest"].values())
        print(
            f"{as_of}: done in {summary['seconds']:.1f} s, {loaded:,} rows loaded, "
            f"{len(summary.get('marts', {}))} marts"
        )
    print(
        f"\nBackfill finished: {len(done)} date(s). Run summaries: reports/runs/, "
        "audit.pipeline_runs."
    )
    return 0


def cmd_postgres_marts(args: argparse.Namespace) -> int:
    from crm.pg_warehouse import BI_ROLE, build_marts, pg_url
    from crm.runs import parse_date

    settings = get_settings()
    last_run = settings.reports / "last_run.json"
    if args.as_of is None and not last_run.exists():
        raise CrmError("no run yet: `crm run` first, or give --as-of")
    as_of = parse_date(args.as_of or json.loads(last_run.read_text())["as_of"])
    result = build_marts(as_of, settings)
    d = result["dbt"]
    rows = sum(result["sources"].values())
    target = pg_url().rsplit("@", 1)[-1]
    print(
        f"PostgreSQL warehouse {target} as of {as_of}: {len(result['sources'])} source tables "
        f"({rows:,} rows) copied in {result['sync_seconds']:.1f} s; dbt built {d['models']} "
        f"models, {d['tests_passed']} tests passed, {d['tests_failed']} failed in "
        f"{result['dbt_seconds']:.1f} s; role {BI_ROLE} reads marts only"
    )
    return 0


def cmd_deployment(args: argparse.Namespace) -> int:
    from crm.deployment import airflow_in_deployment, deployment

    dep = deployment()
    if args.action == "up":
        print(f"Starting Airflow with {args.workers} Celery worker(s) ({dep.folder})...")
        dep.up(workers=args.workers)
        print(f"up: api-server {dep.base_url}; `crm deployment down` stops it")
    elif args.action == "down":
        dep.down()
        print("down")
    elif args.action == "status":
        states = dep.status()
        if not states:
            print("not running")
        for name, alive in states.items():
            print(f"  {name:<14} {'running' if alive else 'STOPPED'}")
        return 0 if states and all(states.values()) else 1
    else:  # airflow: any Airflow command against the deployment's metadata database
        return airflow_in_deployment(args.airflow_args).returncode
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ml.registry import Registry
    from ml.warehouse import sync_registry_tables

    settings = get_settings()
    registry = Registry(settings.models)
    if args.action == "rollback":
        if not args.offer:
            raise CrmError("which offer? crm models rollback OFFER [--to VERSION]")
        version = registry.rollback(args.offer, args.to)
        sync_registry_tables(registry, settings)
        print(f"{args.offer}: champion is now {version}")
        return 0
    offers = [args.offer] if args.offer else registry.offers()
    if not offers:
        print(f"no models yet in {registry.root}")
    for offer in offers:
        champion = registry.champion(offer)
        print(f"{offer}")
        for v in registry.versions(offer):
            h = v["holdout"]
            mark = "*" if v["version"] == champion else " "
            print(
                f"  {mark} {v['version']}  as of {v['metadata'].get('as_of')}  "
                f"AUC {h.get('roc_auc') or float('nan'):.3f}  "
                f"lift@10% {h.get('lift_at_10') or float('nan'):.2f}"
            )
        decisions = registry.decisions(offer)
        if decisions:
            last = decisions[-1]
            print(
                f"    last decision: {last['action']} {last.get('version', '')}: "
                f"{last.get('reason')}"
            )
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from crm.warehouse import session
    from ingest import quarantine

    settings = get_settings()
    if args.action == "resubmit":
        if not (args.entity and args.file):
            raise CrmError("crm quarantine resubmit ENTITY FILE")
        done = quarantine.resubmit(args.entity, Path(args.file), settings)
        print(
            f"{done['rows']:,} {args.entity} rows placed in {done['landing_file']}; "
            f"the next `crm run` loads them (rows still wrong are held back again)"
        )
        return 0
    if not settings.warehouse_path.exists():
        print(f"no warehouse yet at {settings.warehouse_path}")
        return 0
    with session(read_only=True, settings=settings) as con:
        if args.action == "list":
            table = quarantine.summary(con)
            if table.empty:
                print("nothing is held back")
            for r in table.itertuples():
                meaning, todo = quarantine.REASONS.get(r.reason_code, ("", ""))
                print(f"{r.entity:<26} {r.reason_code:<18} {r.rows:>9,} rows in {r.files} file(s)")
                print(f"    {meaning}; e.g. {r.example}")
                print(f"    what to do: {todo}")
            return 0
        if not args.entity:
            raise CrmError(f"which entity? crm quarantine {args.action} ENTITY")
        if args.action == "show":
            held = quarantine.rows(con, args.entity, args.reason, args.limit)
            for r in held.itertuples():
                print(f"{r.source_file}:{r.row_number}  {r.reason_code}: {r.reason}")
                print(f"    {r.raw_row}")
            return 0
        if not args.out:
            raise CrmError("crm quarantine export ENTITY --out FILE.csv")
        n = quarantine.export(con, args.entity, Path(args.out), args.reason)
    print(
        f"{n:,} held-back {args.entity} rows written to {args.out}; fix them, then "
        f"`crm quarantine resubmit {args.entity} {args.out}`"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ml.table import train_table

    result = train_table(args.input, args.target, args.out, args.id)
    h, lr = result["holdout"], result["logistic_regression"]
    print(
        f"Trained on {result['rows']['train']:,} rows ({result['rows']['train_positives']:,} "
        f"positive), held out {result['rows']['holdout']:,}; tree {result['params']}"
    )
    print(
        f"holdout AUC {h['roc_auc']:.3f}, lift@10% {h['lift_at_10']:.2f} "
        f"(logistic regression: AUC {lr['roc_auc']:.3f}, lift@10% {lr['lift_at_10']:.2f})"
    )
    for rule in result["rules"][:10]:
        print(
            f"  {rule['rule_id']}  {rule['rate_train']:.0%} of {rule['support_train']:,}: "
            f"{rule['words']}"
        )
    print(f"model, metrics and rules: {result['out']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ml.table import score_table

    result = score_table(args.model, args.input, args.out, args.id)
    bands = ", ".join(f"{k} {v:,}" for k, v in sorted(result["bands"].items()))
    print(f"Scored {result['rows']:,} rows ({bands}) into {result['out']}")
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
    return cmd_run(
        argparse.Namespace(
            as_of=end, reload=False, full_refresh=False, json=False, train=False, no_ml=False
        )
    )


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

    run = sub.add_parser("run", help="run the pipeline for one as-of date through Airflow")
    run.add_argument("--as-of", default=_today(), help="last day of data to use (default today)")
    run.add_argument("--reload", action="store_true", help="reload landing files already loaded")
    run.add_argument(
        "--full-refresh", action="store_true", help="rebuild incremental models from scratch"
    )
    run.add_argument(
        "--train",
        action="store_true",
        help="retrain the target-customer models (default: only offers without one)",
    )
    run.add_argument(
        "--no-ml",
        action="store_true",
        help="the pipeline only: no training, scoring or publishing of audiences",
    )
    run.add_argument("--json", action="store_true", help="also print the summary as JSON")
    run.set_defaults(func=cmd_run)

    back = sub.add_parser(
        "backfill", help="run every as-of date of a range (point in time, any order)"
    )
    back.add_argument("--from", dest="date_from", required=True, help="first as-of date")
    back.add_argument("--to", dest="date_to", required=True, help="last as-of date")
    back.add_argument("--reverse", action="store_true", help="newest date first")
    back.add_argument(
        "--no-ml", action="store_true", help="the pipeline only: no scoring or publishing"
    )
    back.set_defaults(func=cmd_backfill)

    demo = sub.add_parser("demo", help="fresh demo CRM + warehouse, then one pipeline run")
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--end", default=None)
    demo.set_defaults(func=cmd_demo)

    pgm = sub.add_parser(
        "postgres-marts",
        help="build the marts on the PostgreSQL warehouse (CRM_PG_*) from this warehouse's "
        "sources, with a read-only role for BI",
    )
    pgm.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the last run's)")
    pgm.set_defaults(func=cmd_postgres_marts)

    dep = sub.add_parser(
        "deployment",
        help="Airflow as a deployment: PostgreSQL metadata, Celery workers on Redis "
        "(up, status, down, airflow <args>)",
    )
    dep.add_argument("action", choices=("up", "status", "down", "airflow"))
    dep.add_argument("--workers", type=int, default=2, help="Celery workers to start (up)")
    dep.add_argument("airflow_args", nargs=argparse.REMAINDER)
    dep.set_defaults(func=cmd_deployment)

    models = sub.add_parser("models", help="list model versions, or roll a champion back")
    models.add_argument("action", nargs="?", choices=("list", "rollback"), default="list")
    models.add_argument("offer", nargs="?", default=None)
    models.add_argument("--offer", dest="offer_option", default=None)
    models.add_argument("--to", default=None, help="rollback: the version to make champion")
    models.set_defaults(func=cmd_models)

    quar = sub.add_parser("quarantine", help="what ingestion held back and why; resubmit fixes")
    quar.add_argument(
        "action", nargs="?", choices=("list", "show", "export", "resubmit"), default="list"
    )
    quar.add_argument("entity", nargs="?", default=None)
    quar.add_argument("file", nargs="?", default=None, help="resubmit: the fixed file")
    quar.add_argument("--reason", default=None, help="only this reason code")
    quar.add_argument("--limit", type=int, default=20, help="show: at most this many rows")
    quar.add_argument("--out", default=None, help="export: the CSV to write")
    quar.set_defaults(func=cmd_quarantine)

    train = sub.add_parser("train", help="learn a target-customer tree from any customer table")
    train.add_argument("--input", type=Path, required=True)
    train.add_argument("--target", required=True, help="column holding 1/0, true/false, yes/no")
    train.add_argument("--id", default=None, help="id column (must be unique)")
    train.add_argument("--out", type=Path, required=True, help="folder for the model")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="score a customer table with a saved model")
    score.add_argument("--model", type=Path, required=True)
    score.add_argument("--input", type=Path, required=True)
    score.add_argument("--out", type=Path, required=True, help="CSV or Parquet")
    score.add_argument("--id", default=None)
    score.set_defaults(func=cmd_score)

    af = sub.add_parser("airflow", help="run an Airflow command with this project's settings")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    if getattr(args, "offer_option", None):
        args.offer = args.offer_option
    try:
        return args.func(args)
    except CrmError as exc:
        print(f"crm {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
