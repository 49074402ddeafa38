"""`crm run`, `crm backfill`, `crm postgres-marts` and `crm dbt`: runs for as-of dates."""

from __future__ import annotations

import argparse
import json
import sys

from crm.cli.common import as_of_arg, json_option, today
from crm.cli.format import format_activation, format_scoring, format_summary, format_training
from crm.errors import CrmError, UsageError
from crm.settings import get_settings


def offers_never_trained(settings) -> list[str]:
    """Offers the registry has no decision for yet (an offer a guard stopped has one)."""
    from crm.warehouse import session
    from ml.features import offers
    from ml.registry import Registry

    with session(read_only=True, settings=settings) as con:
        offer_ids = offers(con)
    registry = Registry(settings.models)
    return [o for o in offer_ids if not registry.decisions(o)]


def cmd_run(args: argparse.Namespace) -> int:
    from crm.deployment import active_deployment
    from crm.orchestrate import run_activation, run_pipeline, run_scoring, run_training

    settings = get_settings()
    as_of = as_of_arg(args.as_of)
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
    untrained = offers_never_trained(settings)
    if args.train or untrained:
        why = "asked for" if args.train else f"never trained: {', '.join(untrained)}"
        print(f"\nTraining the target-customer models ({why}; train_target_models)...")
        upstream = args.result["training"] = run_training(as_of)
        print(format_training(args.result["training"]))
    print("\nScoring customers (score_target_customers)...")
    scoring = args.result["scoring"] = run_scoring(as_of, upstream=upstream)
    print(format_scoring(scoring))
    print("\nPublishing the audiences (activate_audiences)...")
    activation = args.result["activation"] = run_activation(
        as_of, upstream=scoring, republish=args.republish
    )
    print(format_activation(activation))
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
        dates = backfill_dates(
            as_of_arg(args.date_from), as_of_arg(args.date_to), args.reverse, args.every
        )
    except BadInputError as exc:
        raise UsageError(str(exc)) from exc
    print(f"Backfilling {len(dates)} date(s), {dates[0]} to {dates[-1]}, one run each...")
    if not args.no_ml:
        print(
            "Scores use today's champion models (a backfill does not train); offers never "
            "trained are not scored"
            + (f": {', '.join(u)}" if (u := offers_never_trained(get_settings())) else "")
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


def cmd_dbt(args: argparse.Namespace) -> int:
    import subprocess

    from crm.dbt import dbt_command, ensure_sources

    settings = get_settings()
    settings.ensure_dirs()
    dbt_args = args.dbt_args[1:] if args.dbt_args[:1] == ["--"] else args.dbt_args
    if not dbt_args:
        raise UsageError("which dbt command? e.g. crm dbt -- build --select dim_customers")
    if settings.dbt_target == "duckdb":
        ensure_sources(settings)
    command = dbt_command(dbt_args, as_of_arg(args.as_of), settings)
    if "--vars" in dbt_args:  # the user's own vars replace the as_of var (the last two)
        command = command[:-2]
    print(" ".join(command), file=sys.stderr)
    return subprocess.run(
        command, cwd=settings.dbt_project_dir, env=settings.child_env()
    ).returncode


def register(sub, root: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", help="run the pipeline for one as-of date through Airflow")
    run.add_argument("--as-of", default=today(), help="last day of data to use (default today)")
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
    json_option(run)
    run.set_defaults(func=cmd_run)

    back = sub.add_parser(
        "backfill", help="run every as-of date of a range (point in time, any order)"
    )
    back.add_argument("--from", dest="date_from", required=True, help="first as-of date")
    back.add_argument("--to", dest="date_to", required=True, help="last as-of date")
    back.add_argument("--reverse", action="store_true", help="newest date first")
    back.add_argument(
        "--every",
        default="1",
        metavar="DAYS|month-end",
        help="one date every DAYS days from --from (default 1), or each month's last day",
    )
    back.add_argument(
        "--no-ml", action="store_true", help="the pipeline only: no scoring or publishing"
    )
    json_option(back)
    back.set_defaults(func=cmd_backfill)

    pgm = sub.add_parser(
        "postgres-marts",
        help="build the marts on the PostgreSQL warehouse (CRM_PG_*) from this warehouse's "
        "sources, with a read-only role for BI",
    )
    pgm.add_argument("--as-of", default=None, help="YYYY-MM-DD (default: the last run's)")
    pgm.set_defaults(func=cmd_postgres_marts)

    dbt = sub.add_parser(
        "dbt",
        help="run dbt by hand with the project's profile, target and as-of date",
        description="Runs dbt against this CRM_HOME's warehouse with the project, profile "
        "and target every run uses and the as-of date as var; everything after `--` goes "
        "to dbt. Example: crm dbt --as-of 2026-05-31 -- build --select dim_customers",
    )
    dbt.add_argument("--as-of", default=today(), help="the as_of var (default today)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's own arguments")
    dbt.set_defaults(func=cmd_dbt)
