"""Every setting the platform reads from the environment, in one place.

Configuration comes from `CRM_*` variables (see `.env.example`); nothing else in the code
reads `os.environ` for platform settings, so what can be configured is all listed here.
Paths are resolved to absolute paths once, so a task, a dbt subprocess and the CLI agree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Variables every child process (Airflow, dbt) gets so that nothing phones home.
NO_TELEMETRY_ENV = {
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "SCARF_ANALYTICS": "false",
}


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build one with `get_settings()`."""

    home: Path
    dbt_target: str
    duckdb_threads: int
    duckdb_memory_limit: str
    #: How far after the load time a timestamp may lie before it counts as a future date
    #: (exports written in a local time zone, clocks a little ahead).
    future_tolerance: timedelta
    #: The CRM database audiences are published to (None: that destination is off).
    crm_db_url: str | None = None
    #: The operational CRM database read as a source (None: file drops only). The ingest
    #: tasks fall back on the Airflow connection `crm_source`.
    source_url: str | None = None
    #: Its schema holding one table per contract entity.
    source_schema: str = "crm"
    #: How far before the last watermark each incremental read starts again, for rows whose
    #: transaction committed after a later row was read (their updated_at is older).
    source_overlap: timedelta = timedelta(minutes=30)
    #: Rows per extract chunk: each chunk is one batch, committed with its watermark.
    source_chunk_rows: int = 500_000
    #: Build the marts on the PostgreSQL warehouse (CRM_PG_*) in every pipeline run too.
    postgres_marts: bool = False

    @property
    def repo(self) -> Path:
        return REPO_ROOT

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse" / "crm.duckdb"

    @property
    def audiences(self) -> Path:
        return self.home / "audiences"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def dbt_project_dir(self) -> Path:
        return REPO_ROOT / "dbt_project"

    @property
    def dbt_state_dir(self) -> Path:
        """dbt's target/ and logs/ live with the data, so two homes never share them."""
        return self.home / "dbt"

    @property
    def mapping_file(self) -> Path:
        return Path(os.environ.get("CRM_MAPPING_FILE") or self.landing / "mapping.yml")

    def ensure_dirs(self) -> None:
        for path in (
            self.landing,
            self.warehouse_path.parent,
            self.audiences,
            self.models,
            self.reports,
            self.airflow_home,
            self.dbt_state_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)

    def child_env(self) -> dict[str, str]:
        """Environment for a subprocess (dbt, Airflow) that must see these same settings."""
        env = dict(os.environ)
        env.update(NO_TELEMETRY_ENV)
        # Tools started by a child (airflow standalone starts `airflow ...`) come from this venv.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["CRM_HOME"] = str(self.home)
        env["CRM_REPO"] = str(REPO_ROOT)
        env["CRM_WAREHOUSE_PATH"] = str(self.warehouse_path)
        env["CRM_DBT_TARGET"] = self.dbt_target
        env["CRM_DUCKDB_THREADS"] = str(self.duckdb_threads)
        env["CRM_DUCKDB_MEMORY_LIMIT"] = self.duckdb_memory_limit
        env["AIRFLOW_HOME"] = str(self.airflow_home)
        env.setdefault("AIRFLOW_CONFIG", str(REPO_ROOT / "airflow.cfg"))
        env["DBT_TARGET_PATH"] = str(self.dbt_state_dir / "target")
        env["DBT_LOG_PATH"] = str(self.dbt_state_dir / "logs")
        return env


def get_settings() -> Settings:
    """Read the settings now (cheap; call it where needed rather than caching a global)."""
    home = Path(os.environ.get("CRM_HOME") or REPO_ROOT / "data").expanduser().resolve()
    return Settings(
        home=home,
        dbt_target=os.environ.get("CRM_DBT_TARGET", "duckdb"),
        duckdb_threads=int(os.environ.get("CRM_DUCKDB_THREADS") or os.cpu_count() or 2),
        duckdb_memory_limit=os.environ.get("CRM_DUCKDB_MEMORY_LIMIT", "4GB"),
        future_tolerance=timedelta(hours=float(os.environ.get("CRM_FUTURE_TOLERANCE_HOURS", 24))),
        # (the activate_audiences task falls back on the Airflow connection `crm_db`)
        crm_db_url=os.environ.get("CRM_DB_URL") or None,
        source_url=os.environ.get("CRM_SOURCE_URL") or None,
        source_schema=os.environ.get("CRM_SOURCE_SCHEMA") or "crm",
        source_overlap=timedelta(minutes=float(os.environ.get("CRM_SOURCE_OVERLAP_MINUTES", 30))),
        source_chunk_rows=int(os.environ.get("CRM_SOURCE_CHUNK_ROWS") or 500_000),
        postgres_marts=os.environ.get("CRM_POSTGRES_MARTS", "").lower() in ("1", "true", "yes"),
    )
