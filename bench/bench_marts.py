"""Benchmark: the dbt build of every model (both phases) and the CLV fit, full and daily.

    python bench/bench_marts.py --customers 1000000 [--home DIR]

With --home pointing at a CRM_HOME whose raw schema is loaded (for example the one
bench_pipeline.py --keep leaves), the raw data is reused; otherwise a CRM is generated and
ingested first (ingestion is not part of the figures). Then:

1. a full build for as-of date D (`--full-refresh`),
2. a daily incremental build for D + 4 days: the facts take the rows of those four days
   (about 0.5% of two years) and everything downstream is rebuilt,

printing time per model, the CLV fit and the peak memory of the dbt processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def phases(as_of: date, full_refresh: bool) -> dict:
    from crm.dbt import CUSTOMER_360, ML_MARTS, build
    from ml.clv import update_customer_lifetime_values

    started = time.perf_counter()
    first = build(as_of, exclude=f"{CUSTOMER_360} {ML_MARTS}", full_refresh=full_refresh)
    clv = update_customer_lifetime_values(as_of)
    second = build(as_of, select=CUSTOMER_360, full_refresh=full_refresh)
    return {
        "wall": time.perf_counter() - started,
        "dbt": first.seconds + second.seconds,
        "models": {**first.model_seconds, **second.model_seconds},
        "tests": first.tests_passed + second.tests_passed,
        "clv": clv,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--end", default="2026-11-01")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--daily-days", type=int, default=4)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_marts_"))
    os.environ["CRM_HOME"] = str(home)

    from crm.warehouse import connect

    end = date.fromisoformat(args.end)
    as_of = end - timedelta(days=1 + args.daily_days)
    con = connect(read_only=True) if (home / "warehouse" / "crm.duckdb").exists() else None
    loaded = (
        con is not None
        and con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchone()[0]
        > 0
    )
    if con is not None:
        con.close()
    if not loaded:
        from datagen.generator import GenerationSpec, generate
        from datagen.writer import write_landing
        from ingest.contract import LOAD_ORDER
        from ingest.load import load_entity

        crm = generate(GenerationSpec(customers=args.customers, end=end))
        write_landing(crm, home / "landing")
        del crm
        for entity in LOAD_ORDER:
            load_entity(entity)

    with connect(read_only=True) as con:
        total = con.execute("SELECT count(*) FROM raw.transactions").fetchone()[0]
        new = con.execute(
            "SELECT count(*) FROM raw.transactions WHERE occurred_at >= ? AND occurred_at < ?",
            [as_of + timedelta(days=1), as_of + timedelta(days=1 + args.daily_days)],
        ).fetchone()[0]

    full = phases(as_of, full_refresh=True)
    daily = phases(as_of + timedelta(days=args.daily_days), full_refresh=False)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2

    print(f"raw transactions {total:,}; the daily run adds {new:,} ({new / total:.2%})")
    print(f"{'model':<40}{'full s':>9}{'daily s':>9}")
    for model, seconds in sorted(full["models"].items(), key=lambda kv: -kv[1]):
        print(f"  {model:<38}{seconds:>9.1f}{daily['models'].get(model, 0):>9.1f}")
    print(f"{'dbt build, both phases (incl. tests)':<40}{full['dbt']:>9.1f}{daily['dbt']:>9.1f}")
    print(
        f"{'CLV fit (BG/NBD + Gamma-Gamma)':<40}{full['clv']['seconds']:>9.1f}"
        f"{daily['clv']['seconds']:>9.1f}"
    )
    print(f"{'total':<40}{full['wall']:>9.1f}{daily['wall']:>9.1f}")
    print(f"daily dbt build / full dbt build: {daily['dbt'] / full['dbt']:.0%}")
    print(f"tests per build: {full['tests']}")
    print(f"peak memory of a dbt process: {peak_gb:.2f} GB")
    print(f"home: {home}")


if __name__ == "__main__":
    main()
