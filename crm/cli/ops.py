"""`crm deployment`, `crm config` and `crm airflow`: running Airflow and reading settings."""

from __future__ import annotations

import argparse
import sys

from crm.cli.common import json_option
from crm.settings import get_settings


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


def register(sub, root: argparse.ArgumentParser) -> None:
    dep = sub.add_parser(
        "deployment",
        help="Airflow as a deployment: PostgreSQL metadata, Celery workers on Redis "
        "(up, status, down, airflow <args>)",
    )
    actions = dep.add_subparsers(dest="action", required=True, metavar="ACTION")
    dep_up = actions.add_parser("up", help="migrate, then start every process (supervised)")
    dep_up.add_argument("--workers", type=int, default=2, help="Celery workers to start")
    dep_status = actions.add_parser("status", help="which processes run, and their restarts")
    json_option(dep_status)
    actions.add_parser("down", help="stop every process (running tasks may finish)")
    dep_af = actions.add_parser("airflow", help="an Airflow command against the deployment")
    dep_af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    dep.set_defaults(func=cmd_deployment)

    config = sub.add_parser(
        "config", help="the effective settings (environment, .env, defaults), secrets masked"
    )
    config.add_argument(
        "--markdown", action="store_true", help="the settings table of docs/settings.md"
    )
    json_option(config)
    config.set_defaults(func=cmd_config)

    af = sub.add_parser("airflow", help="run an Airflow command with this project's settings")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
