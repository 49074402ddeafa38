"""Benchmark: one full `crm run` (real Airflow, ingestion, dbt on DuckDB) on a generated CRM.

    python bench/bench_pipeline.py --customers 1000000 [--home DIR] [--keep]

Generates the CRM into a fresh CRM_HOME (unless --home already holds a landing folder or
--landing names one),
runs the pipeline, then runs it again for the same date (nothing new to load), and prints
time per stage, per entity and per dbt model, and the peak memory of the child processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def crm(*args: str, home: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "crm.cli", *args],
        env=dict(os.environ, CRM_HOME=str(home)),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--end", default="2026-11-01")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary CRM_HOME")
    parser.add_argument(
        "--landing", type=Path, default=None, help="reuse this landing folder (linked, not copied)"
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_pipe_"))
    as_of = (date.fromisoformat(args.end) - timedelta(days=1)).isoformat()

    if args.landing and not (home / "landing").exists():
        (home / "landing").symlink_to(args.landing.resolve())
    if not (home / "landing" / "customers").exists():
        t = crm(
            "generate", "--customers", str(args.customers), "--end", args.end, "--quiet", home=home
        )
        print(f"generate {args.customers:,} customers: {t:.1f} s")
    first = crm("run", "--as-of", as_of, home=home)
    summary = json.loads((home / "reports" / "last_run.json").read_text())
    second = crm("run", "--as-of", as_of, home=home)
    again = json.loads((home / "reports" / "last_run.json").read_text())
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2

    rows = sum(r["rows_read"] for r in summary["ingest"].values())
    print(
        f"first run (crm run, wall)       {first:8.1f} s   "
        f"inside the DAG {summary['seconds']:.1f} s"
    )
    print(
        f"  ingest                        {summary['stages']['ingest']:8.1f} s   {rows:,} rows "
        f"({rows / max(summary['stages']['ingest'], 1e-9):,.0f} rows/s)"
    )
    for entity, r in summary["ingest"].items():
        print(f"    {entity:<28}{r['seconds']:8.1f} s   {r['rows_read']:>12,} rows")
    print(
        f"  dbt build                     {summary['stages']['dbt']:8.1f} s   "
        f"{summary['dbt']['models']} models, {summary['dbt']['tests_passed']} tests"
    )
    checked = summary.get("validation") or {}
    print(
        f"  landing checkpoint (GX)       {summary['stages'].get('validation', 0):8.1f} s   "
        f"{checked.get('expectations', 0)} expectations, {len(checked.get('warnings', []))} "
        f"warnings"
    )
    for model, s in sorted(summary["dbt"]["model_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"    {model:<28}{s:8.1f} s")
    print(
        f"second run, same date (wall)    {second:8.1f} s   "
        f"ingest {again['stages']['ingest']:.1f} s, "
        f"dbt {again['stages']['dbt']:.1f} s"
    )
    print(f"peak memory of a child process  {peak_gb:8.2f} GB")
    if args.home is None and not args.keep:
        shutil.rmtree(home)
    else:
        print(f"home: {home}")


if __name__ == "__main__":
    main()
