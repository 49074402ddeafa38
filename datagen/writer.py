"""Write a generated CRM into the landing folder the way a nightly export would arrive.

Reference entities land as one file each; transactions and interactions as one file per
month (`transactions/transactions_2025-03.parquet`), which is how large exports are usually
cut and lets ingestion skip months it has already loaded. Files are written under a dot
name and renamed, so ingestion never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datagen.spec import GeneratedCRM

MANIFEST_NAME = "_generation.json"


def _write_one(table: pa.Table, path: Path, fmt: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    if fmt == "parquet":
        pq.write_table(table, tmp, compression="snappy")
    else:
        pacsv.write_csv(table, tmp)
    os.replace(tmp, path)


def write_landing(
    crm: GeneratedCRM,
    landing: Path,
    fmt: str = "parquet",
    manifest_extra: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[Path]]:
    """Replace the entity folders under `landing` with the generated files."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, not {fmt!r}")
    step = progress or (lambda _msg: None)
    landing.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for entity, table in crm.tables.items():
        step(f"write {entity}")
        folder = landing / entity
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        paths = []
        if entity in crm.partitions:
            months = crm.partitions[entity]
            order = np.argsort(months, kind="stable")
            sorted_months = months[order]
            table = table.take(pa.array(order))
            bounds = np.flatnonzero(sorted_months[1:] != sorted_months[:-1]) + 1
            starts = np.concatenate([[0], bounds])
            ends = np.concatenate([bounds, [len(sorted_months)]])
            for s, e in zip(starts, ends, strict=True):
                month = np.datetime64(int(sorted_months[s]), "M")
                path = folder / f"{entity}_{month}.{fmt}"
                _write_one(table.slice(int(s), int(e - s)), path, fmt)
                paths.append(path)
        else:
            path = folder / f"{entity}.{fmt}"
            _write_one(table, path, fmt)
            paths.append(path)
        written[entity] = paths
    files = {e: [str(p.relative_to(landing)) for p in ps] for e, ps in written.items()}
    write_manifest(crm, landing, {"format": fmt, **(manifest_extra or {}), "files": files})
    return written


def write_manifest(crm: GeneratedCRM, landing: Path, extra: dict) -> None:
    """What was generated (the planted facts tests and benchmarks check against)."""
    manifest = {**crm.facts, **extra}
    (landing / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def read_manifest(landing: Path) -> dict:
    path = landing / MANIFEST_NAME
    return json.loads(path.read_text()) if path.exists() else {}
