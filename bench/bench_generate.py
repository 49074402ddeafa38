"""Benchmark: generate the demo CRM and write it as landing files; print time and memory.

python bench/bench_generate.py --customers 1000000 [--format parquet] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from datagen.generator import GenerationSpec, generate
from datagen.writer import write_landing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end", default="2026-11-01")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--out", type=Path, default=None, help="landing folder (default: temp)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_gen_")) / "landing"
    spec = GenerationSpec(
        customers=args.customers, seed=args.seed, end=date.fromisoformat(args.end)
    )
    marks: list[tuple[str, float]] = []  # (step starting, when)
    t0 = time.perf_counter()

    def progress(message: str) -> None:
        marks.append((message, time.perf_counter()))

    crm = generate(spec, progress=progress)
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    write_landing(crm, out, fmt=args.format)
    t_write = time.perf_counter() - t1
    rows = {name: t.num_rows for name, t in crm.tables.items()}
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    print(f"customers            {args.customers:>14,}")
    for name, n in rows.items():
        print(f"  {name:<27}{n:>14,}")
    print(f"total rows           {sum(rows.values()):>14,}")
    print(f"generate             {t_gen:>13.1f} s")
    ends = [when for _, when in marks[1:]] + [t0 + t_gen]
    for (name, began), ended in zip(marks, ends, strict=True):
        print(f"  {name:<27}{ended - began:>8.1f} s")
    print(f"write ({args.format:<7})      {t_write:>13.1f} s   {size / 1024**2:,.0f} MB")
    print(f"total                {t_gen + t_write:>13.1f} s")
    print(f"peak memory          {peak_gb:>13.2f} GB")
    print(f"rows per second      {sum(rows.values()) / (t_gen + t_write):>14,.0f}")
    if args.out is None:
        shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
