"""Benchmark: the full dbt build on DuckDB and on PostgreSQL, same CRM, side by side.

    python bench/bench_postgres.py --customers 1000000 [--home DIR] [--database crm_bench]

The CRM is generated and ingested into DuckDB first (not timed; `--home` reuses a loaded
home, e.g. the one bench_pipeline.py --keep leaves), and the CLV fit runs once, since both
builds read its table. Then, timed:

1. DuckDB: `dbt build --full-refresh` of every model and test on the warehouse file;
2. PostgreSQL (CRM_PG_* settings, database `--database`, created afresh): copying the
   sources over (`crm.pg_warehouse.sync_sources`), then the same `dbt build`.

Prints the seconds of each, the ratio, the peak memory of the processes and the size of
each warehouse. PostgreSQL runs as configured on the machine, untuned (a default Debian
cluster here: shared_buffers 128 MB, work_mem 4 MB).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def _peak_children_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--end", default="2026-11-01")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--database", default="crm_bench")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench_postgres_"))
    os.environ["CRM_HOME"] = str(home)
    os.environ["CRM_PG_DATABASE"] = args.database

    import psycopg2

    from crm.dbt import CUSTOMER_360, ML_MARTS, build
    from crm.pg_warehouse import build_marts, pg_url
    from crm.settings import get_settings
    from crm.warehouse import connect
    from ml.clv import update_customer_lifetime_values

    as_of = date.fromisoformat(args.end) - timedelta(days=1)
    settings = get_settings()
    if not settings.warehouse_path.exists():
        from datagen.generator import GenerationSpec, generate
        from datagen.writer import write_landing
        from ingest.contract import LOAD_ORDER
        from ingest.load import load_entity

        started = time.perf_counter()
        crm = generate(GenerationSpec(customers=args.customers, end=date.fromisoformat(args.end)))
        write_landing(crm, home / "landing")
        del crm
        for entity in LOAD_ORDER:
            load_entity(entity)
        print(
            f"generated and ingested {args.customers:,} customers in "
            f"{time.perf_counter() - started:.1f} s (not timed below)"
        )
    # the CLV table both builds read
    build(as_of, exclude=f"{CUSTOMER_360} {ML_MARTS}")
    update_customer_lifetime_values(as_of)
    with connect(read_only=True) as con:
        raw_rows = con.execute(
            "SELECT sum(estimated_size) FROM duckdb_tables() WHERE schema_name = 'raw'"
        ).fetchall()[0][0]

    base = pg_url().rsplit("/", 1)[0] + "/postgres"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{args.database}"')

    started = time.perf_counter()
    duck = build(as_of, full_refresh=True, settings=settings)
    duck_s = time.perf_counter() - started
    duck_peak = _peak_children_mb()

    started = time.perf_counter()
    pg = build_marts(as_of, settings)
    pg_s = time.perf_counter() - started
    pg_peak = _peak_children_mb()

    with admin.cursor() as cur:
        cur.execute("SELECT pg_database_size(%s)", (args.database,))
        pg_bytes = cur.fetchall()[0][0]
    admin.close()
    duck_bytes = settings.warehouse_path.stat().st_size

    print(f"\nfull build, {args.customers:,} customers ({raw_rows:,} raw rows), as of {as_of}")
    print(f"{'':<12}{'seconds':>10}{'models':>8}{'tests':>8}{'size GB':>9}")
    print(
        f"{'DuckDB':<12}{duck_s:>10.1f}{duck.models:>8}{duck.tests_passed:>8}"
        f"{duck_bytes / 1e9:>9.2f}"
    )
    d = pg["dbt"]
    print(
        f"{'PostgreSQL':<12}{pg_s:>10.1f}{d['models']:>8}{d['tests_passed']:>8}"
        f"{pg_bytes / 1e9:>9.2f}"
    )
    print(
        f"  of which copying the sources {pg['sync_seconds']:.1f} s, dbt {pg['dbt_seconds']:.1f} s"
    )
    dbt_ratio = pg["dbt_seconds"] / duck_s
    print(f"ratio PostgreSQL / DuckDB: {pg_s / duck_s:.1f}x (dbt alone {dbt_ratio:.1f}x)")
    print(f"peak memory of a dbt process: {max(duck_peak, pg_peak):,.0f} MB")


if __name__ == "__main__":
    main()
