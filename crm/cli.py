"""The `crm` command.

    crm generate --customers N [--seed S] [--end DATE] [--format parquet|csv] [--dirty-rate R]
                 [--target files|postgres]
    crm run [--as-of DATE] [--reload] [--full-refresh] [--train] [--no-ml] [--json]
    crm backfill --from DATE --to DATE [--reverse] [--no-ml]   one run per as-of date
    crm demo [--customers N] [--force]  a fresh demo CRM, then crm run (refuses a home it
                                        did not make unless --force)
    crm postgres-marts [--as-of DATE]   the marts on PostgreSQL too (CRM_PG_*), BI role
    crm deployment up [--workers N] | status | down | airflow <args>   Celery deployment
    crm models [list] [--offer X] | rollback OFFER [--to VERSION]
    crm quarantine [list] | show ENTITY [--reason R] | export ENTITY --out F | resubmit ENTITY F
    crm train --input FILE --target COLUMN [--id COLUMN] --out DIR
    crm score --model DIR --input FILE --out FILE [--id COLUMN]
    crm dbt [--as-of DATE] -- <dbt args>  dbt with the project's profile, target and date
    crm config [--json] [--markdown]    the effective settings, secrets masked
    crm airflow <args>                  any Airflow command, against this project's config

`crm --help` has examples and the exit codes (0 success, 1 run failed, 2 usage, 3 bad input,
4 environment); run, backfill, models, quarantine and deployment take --json.

Heavy libraries are imported inside the commands so `crm --help` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from crm.errors import CrmError, RetryableError, UsageError
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


def _as_of(value: str):
    """An as-of date given on the command line: a date a run may use, or a usage error."""
    from crm.errors import BadInputError
    from crm.runs import check_as_of, parse_date

    try:
        return check_as_of(parse_date(value))
    except BadInputError as exc:
        raise UsageError(str(exc)) from exc


def cmd_run(args: argparse.Namespace) -> int:
    from crm.deployment import active_deployment
    from crm.orchestrate import run_activation, run_pipeline, run_scoring, run_training
    from crm.runs import format_summary

    settings = get_settings()
    as_of = _as_of(args.as_of)
    where = "on the deployment" if active_deployment(settings) else "through Airflow"
    print(f"Running the pipeline for {as_of} {where} (crm_pipeline)...")
    summary = run_pipeline(
        as_of,
        reload=args.reload,
        full_refresh=args.full_refresh,
        chain=not args.no_ml,
        force=args.force,
        republish=args.republish,
    )
    args.result = {"as_of": as_of.isoformat(), "pipeline": summary}
    print()
    print(format_summary(summary))
    print(f"{'airflow':<10} {summary['airflow_log']}")
    if args.no_ml:
        return 0
    # on a deployment, scoring follows the latest run whose Asset starts it
    upstream = summary
    untrained = _offers_never_trained(settings)
    if args.train or untrained:
        why = "asked for" if args.train else f"never trained: {', '.join(untrained)}"
        print(f"\nTraining the target-customer models ({why}; train_target_models)...")
        upstream = args.result["training"] = run_training(as_of)
        print(_format_training(args.result["training"]))
    print("\nScoring customers (score_target_customers)...")
    scoring = args.result["scoring"] = run_scoring(as_of, upstream=upstream)
    print(_format_scoring(scoring))
    print("\nPublishing the audiences (activate_audiences)...")
    activation = args.result["activation"] = run_activation(
        as_of, upstream=scoring, republish=args.republish
    )
    print(_format_activation(activation))
    print(f"{'models':<10} {settings.models}")
    print(f"{'audiences':<10} {settings.audiences}")
    print(f"{'report':<10} {activation['report']}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Run a range of as-of dates, one full run per date, in the order asked for. Each run
    is point in time and idempotent, so a failed backfill is resumed by running it again."""
    from crm.errors import BadInputError
    from crm.orchestrate import run_activation, run_pipeline, run_scoring
    from crm.runs import backfill_dates

    try:
        dates = backfill_dates(_as_of(args.date_from), _as_of(args.date_to), args.reverse)
    except BadInputError as exc:
        raise UsageError(str(exc)) from exc
    print(f"Backfilling {len(dates)} date(s), {dates[0]} to {dates[-1]}, one run each...")
    if not args.no_ml:
        print(
            "Scores use today's champion models (a backfill does not train); offers never "
            "trained are not scored"
            + (f": {', '.join(u)}" if (u := _offers_never_trained(get_settings())) else "")
            + "."
        )
    done = []
    args.result = {"dates": [d.isoformat() for d in dates], "done": done, "runs": []}
    for as_of in dates:
        print(f"\n{as_of}: crm_pipeline")
        try:
            summary = run_pipeline(as_of, chain=not args.no_ml)
            if not args.no_ml:
                print(f"{as_of}: score_target_customers, activate_audiences")
                scoring = run_scoring(as_of, upstream=summary)
                run_activation(as_of, upstream=scoring)
        except CrmError:
            print(f"\nThe run for {as_of} failed; done before it: {', '.join(done) or 'none'}.")
            print("Fix the cause and run the same backfill again: finished dates change nothing.")
            raise
        done.append(as_of.isoformat())
        args.result["runs"].append(summary)
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
        raise UsageError("no run yet: `crm run` first, or give --as-of")
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
        restarts = dep.restarts() if states else {}
        args.result = {
            "running": bool(states) and all(states.values()),
            "processes": states,
            "restarts": restarts,
        }
        if not states:
            print("not running")
        for name, alive in states.items():
            again = f"  (restarted {restarts[name]}x)" if restarts.get(name) else ""
            print(f"  {name:<14} {'running' if alive else 'STOPPED'}{again}")
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
            raise UsageError("which offer? crm models rollback OFFER [--to VERSION]")
        version = registry.rollback(args.offer, args.to)
        sync_registry_tables(registry, settings)
        args.result = {"offer": args.offer, "champion": version}
        print(f"{args.offer}: champion is now {version}")
        return 0
    offers = [args.offer] if args.offer else registry.offers()
    if not offers:
        print(f"no models yet in {registry.root}")
    args.result = {"models": str(registry.root), "offers": {}}
    for offer in offers:
        champion = registry.champion(offer)
        args.result["offers"][offer] = {
            "champion": champion,
            "versions": [
                {
                    "version": v["version"],
                    "as_of": v["metadata"].get("as_of"),
                    "holdout": v["holdout"],
                }
                for v in registry.versions(offer)
            ],
            "decisions": registry.decisions(offer),
        }
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
            args.result = {"held_back": _records(table)}
            if table.empty:
                print("nothing is held back")
            for r in table.itertuples():
                meaning, todo = quarantine.REASONS.get(r.reason_code, ("", ""))
                print(f"{r.entity:<26} {r.reason_code:<18} {r.rows:>9,} rows in {r.files} file(s)")
                print(f"    {meaning}; e.g. {r.example}")
                print(f"    what to do: {todo}")
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
    end = args.end or _today()
    (home / DEMO_MARK).write_text(
        json.dumps({"customers": args.customers, "seed": args.seed, "end": end}) + "\n"
    )
    # through the parser, so every option of generate and run keeps its default
    parser = build_parser()
    generate = ["generate", "--customers", str(args.customers), "--seed", str(args.seed)]
    cmd_generate(parser.parse_args([*generate, "--end", end]))
    print()
    return cmd_run(parser.parse_args(["run", "--as-of", end]))


def cmd_dbt(args: argparse.Namespace) -> int:
    import subprocess

    from crm.dbt import dbt_command

    settings = get_settings()
    settings.ensure_dirs()
    dbt_args = args.dbt_args[1:] if args.dbt_args[:1] == ["--"] else args.dbt_args
    if not dbt_args:
        raise UsageError("which dbt command? e.g. crm dbt -- build --select dim_customers")
    command = dbt_command(dbt_args, _as_of(args.as_of), settings)
    if "--vars" in dbt_args:  # the user's own vars replace the as_of var (the last two)
        command = command[:-2]
    print(" ".join(command), file=sys.stderr)
    return subprocess.run(
        command, cwd=settings.dbt_project_dir, env=settings.child_env()
    ).returncode


def cmd_config(args: argparse.Namespace) -> int:
    from crm.settings import effective, settings_table

    if args.markdown:
        sys.stdout.write(settings_table())
        return 0
    rows = effective(get_settings())
    args.result = {variable: {"value": value, "source": source} for variable, value, source in rows}
    width = max(len(r[0]) for r in rows)
    for variable, value, source in rows:
        print(f"{variable:<{width}}  {value or '(unset)'}  [{source}]")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    from crm.orchestrate import airflow, ensure_airflow

    ensure_airflow()
    return airflow(args.airflow_args).returncode


EXAMPLES = """\
examples:
  crm demo --customers 2000                 a demo CRM in CRM_HOME, then a whole run
  crm run --as-of 2026-05-31                the pipeline, models, scores and audiences
  crm run --as-of 2026-05-31 --no-ml --json the pipeline only; the summary as JSON on stdout
  crm backfill --from 2026-01-01 --to 2026-01-31
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


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print exactly one JSON document on stdout (text for people goes to stderr)",
    )


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
    run.add_argument(
        "--force",
        action="store_true",
        help="run although the as-of date lies more than CRM_AS_OF_MAX_LAG_DAYS after the "
        "newest transaction or interaction",
    )
    run.add_argument(
        "--republish",
        action="store_true",
        help="make this date's BI snapshot and audiences the latest even if a later date was "
        "published (rolls BI and audiences/<offer>/latest back to it)",
    )
    _json_option(run)
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
    _json_option(back)
    back.set_defaults(func=cmd_backfill)

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
    actions = dep.add_subparsers(dest="action", required=True, metavar="ACTION")
    dep_up = actions.add_parser("up", help="migrate, then start every process (supervised)")
    dep_up.add_argument("--workers", type=int, default=2, help="Celery workers to start")
    dep_status = actions.add_parser("status", help="which processes run, and their restarts")
    _json_option(dep_status)
    actions.add_parser("down", help="stop every process (running tasks may finish)")
    dep_af = actions.add_parser("airflow", help="an Airflow command against the deployment")
    dep_af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    dep.set_defaults(func=cmd_deployment)

    models = sub.add_parser("models", help="list model versions, or roll a champion back")
    models.add_argument("action", nargs="?", choices=("list", "rollback"), default="list")
    models.add_argument("offer", nargs="?", default=None)
    models.add_argument("--offer", dest="offer_option", default=None)
    models.add_argument("--to", default=None, help="rollback: the version to make champion")
    _json_option(models)
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
    _json_option(quar)
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

    dbt = sub.add_parser(
        "dbt",
        help="run dbt by hand with the project's profile, target and as-of date",
        description="Runs dbt against this CRM_HOME's warehouse with the project, profile "
        "and target every run uses and the as-of date as var; everything after `--` goes "
        "to dbt. Example: crm dbt --as-of 2026-05-31 -- build --select dim_customers",
    )
    dbt.add_argument("--as-of", default=_today(), help="the as_of var (default today)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's own arguments")
    dbt.set_defaults(func=cmd_dbt)

    config = sub.add_parser(
        "config", help="the effective settings (environment, .env, defaults), secrets masked"
    )
    config.add_argument(
        "--markdown", action="store_true", help="the settings table of docs/settings.md"
    )
    _json_option(config)
    config.set_defaults(func=cmd_config)

    af = sub.add_parser("airflow", help="run an Airflow command with this project's settings")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
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


if __name__ == "__main__":
    sys.exit(main())
