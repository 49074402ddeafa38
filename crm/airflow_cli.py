"""Airflow's command line as this project calls it: which executable, and the writer pool
every deployment of the project has (the embedded one and `crm deployment` alike)."""

from __future__ import annotations

import sys
from pathlib import Path

#: The one-slot pool every warehouse-writing task holds: one DuckDB writer at a time.
WRITER_POOL = "warehouse_writer"
WRITER_POOL_DESCRIPTION = "One writer at a time on the DuckDB warehouse"


def airflow_executable() -> str:
    """The `airflow` of this virtual environment (else the one on PATH)."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"
