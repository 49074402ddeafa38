"""Every setting the platform reads from the environment, in one typed model.

`Settings` is a pydantic-settings model: each field is one `CRM_*` variable (its name is the
field's, upper-cased, after `CRM_`), read from the environment or a `.env` file (in the
repository and in the working folder; the environment wins), checked for its type once. A
bad value stops the command with one line naming the variable and the form it expects,
before anything runs. Nothing else in the code reads `os.environ` for platform settings.
`crm config` prints the effective values, secrets masked; `docs/settings.md` is generated
from this model (`crm config --markdown`), and a test keeps the two equal.

Paths are resolved to absolute paths once, so a task, a dbt subprocess and the CLI agree;
`child_env()` hands every setting to a subprocess (dbt's profile reads CRM_PG_* itself).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The built-in sales pipelines file: the demo CRM's funnel.
PACKAGE_PIPELINES_FILE = Path(__file__).with_name("sales_pipelines.yml")

#: Variables every child process (Airflow, dbt) gets so that nothing phones home.
NO_TELEMETRY_ENV = {
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "SCARF_ANALYTICS": "false",
}

ENV_PREFIX = "CRM_"
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_CRON_FIELDS = 5


def _secret(description: str, **kwargs):
    """A field whose value `crm config` never prints."""
    return Field(description=description, json_schema_extra={"secret": True}, **kwargs)


class Settings(BaseSettings):
    """The platform's settings; build one with `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=(REPO_ROOT / ".env", ".env"),
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
        validate_default=True,
    )

    # -- where data lives, and the warehouse
    home: Path = Field(
        REPO_ROOT / "data",
        description="Where data lives: landing/, warehouse/, models/, audiences/, reports/, "
        "airflow/.",
    )
    dbt_target: Literal["duckdb", "postgres"] = Field(
        "duckdb", description="dbt target of the runs: duckdb (the warehouse file) or postgres."
    )
    duckdb_threads: int = Field(
        os.cpu_count() or 2, ge=1, description="Threads of DuckDB for ingestion and dbt."
    )
    duckdb_memory_limit: str = Field(
        "4GB", description="DuckDB's memory cap per process, e.g. 4GB or 512MB."
    )
    future_tolerance_hours: float = Field(
        24.0,
        ge=0,
        description="How far after the load time a timestamp may lie before it counts as a "
        "future date (exports in a local time zone, clocks ahead).",
    )
    as_of_max_lag_days: int = Field(
        30,
        ge=0,
        description="How many days an as-of date may lie after the newest transaction or "
        "interaction before a run refuses it as a mistyped date (crm run --force runs anyway).",
    )
    mapping_file: Path | None = Field(
        None, description="The mapping file for your own exports (default: landing/mapping.yml)."
    )
    pipelines_file: Path | None = Field(
        None,
        description="Your sales pipelines: stages in order and how deals close (default: "
        "landing/pipelines.yml when present, else the built-in lead-to-won funnel).",
    )
    # -- the operational CRM database as a source
    source_url: str | None = _secret(
        "The CRM database read as a source (postgresql://...); unset: the Airflow "
        "connection crm_source if defined, else file drops only.",
        default=None,
    )
    source_schema: str = Field("crm", description="Its schema, one table per entity.")
    source_overlap_minutes: float = Field(
        30.0,
        ge=0,
        description="How far before the last watermark each read starts again (late commits).",
    )
    source_chunk_rows: int = Field(
        500_000, ge=1, description="Rows per extract chunk; each chunk is one batch."
    )
    # -- the PostgreSQL warehouse (dbt target postgres; its profile reads these too)
    postgres_marts: bool = Field(
        False, description="Build the marts on the PostgreSQL warehouse in every run too."
    )
    pg_host: str = Field("127.0.0.1", description="PostgreSQL warehouse host.")
    pg_port: int = Field(5432, ge=1, le=65535, description="PostgreSQL warehouse port.")
    pg_user: str = Field("postgres", description="PostgreSQL warehouse user.")
    pg_password: str | None = _secret("PostgreSQL warehouse password.", default=None)
    pg_database: str = Field("crm", description="PostgreSQL warehouse database.")
    pg_bi_password: str | None = _secret(
        "Password of the read-only role crm_bi (none: it cannot log in with one).", default=None
    )
    personal_data_key: str | None = _secret(
        "Secret key of the e-mail hash in the marts (HMAC-SHA256); give every home that must "
        "produce the same hashes the same key. Unset: a random key made once per CRM_HOME "
        "(secrets/personal_data.key). A new key needs crm run --reload.",
        default=None,
    )
    # -- activation
    db_url: str | None = _secret(
        "The CRM database audiences are published to; unset: the Airflow connection crm_db "
        "if defined, else that destination is off.",
        default=None,
    )
    # -- Airflow schedules and the deployment
    pipeline_schedule: str = Field(
        "0 2 * * *", description="Cron schedule of crm_pipeline; none: manual runs only."
    )
    training_schedule: str = Field(
        "0 4 * * 1", description="Cron schedule of train_target_models; none: manual only."
    )
    airflow_api_host: str = Field(
        "127.0.0.1", description="Address the deployment's api-server listens on."
    )
    airflow_api_port: int = Field(
        8080, ge=1, le=65535, description="Port of the deployment's api-server."
    )

    # -- alerts when a task fails for good (crm/alerts.py)
    alert_email: str | None = Field(
        None, description="Who gets an e-mail when a task fails (comma-separated addresses)."
    )
    alert_from: str = Field(
        "crm-analytics@localhost", description="The sender of the failure e-mails."
    )
    alert_smtp_conn_id: str = Field(
        "smtp_default",
        description="The Airflow connection of the SMTP server (e.g. AIRFLOW_CONN_SMTP_DEFAULT).",
    )
    alert_webhook_url: str | None = _secret(
        "A chat tool's incoming webhook: each failure is POSTed to it as JSON.", default=None
    )

    @field_validator("home", "mapping_file", "pipelines_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _MEMORY.match(value.strip()):
            raise ValueError("a size such as 4GB, 512MB or 2GiB")
        return value.strip()

    @field_validator("pipeline_schedule", "training_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "none" or value.startswith("@"):
            return value
        if len(value.split()) != _CRON_FIELDS:
            raise ValueError("a cron expression of 5 fields, an @preset, or none")
        return value

    @field_validator(
        "source_url", "db_url", "pg_password", "pg_bi_password", "alert_webhook_url",
        "personal_data_key", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value):
        return value or None

    # -- derived

    def personal_data_key_bytes(self) -> bytes:
        """The key of the personal-data hash: the setting, else this home's own key, made
        on first use (32 random bytes, readable by its owner only)."""
        if self.personal_data_key:
            return self.personal_data_key.encode()
        path = self.home / "secrets" / "personal_data.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # first writer wins; a racing process reads its key
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip().encode()

    @property
    def future_tolerance(self) -> timedelta:
        return timedelta(hours=self.future_tolerance_hours)

    @property
    def source_overlap(self) -> timedelta:
        return timedelta(minutes=self.source_overlap_minutes)

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
    def mapping_path(self) -> Path:
        return self.mapping_file or self.landing / "mapping.yml"

    @property
    def pipelines_path(self) -> Path:
        """The sales pipelines file in use: the setting, else landing/pipelines.yml when it
        exists, else the built-in default (crm/sales_pipelines.yml)."""
        if self.pipelines_file:
            return self.pipelines_file
        own = self.landing / "pipelines.yml"
        return own if own.exists() else PACKAGE_PIPELINES_FILE

    def schedule(self, which: str) -> str | None:
        """A DAG's schedule ('pipeline' or 'training'); None for manual runs only."""
        value = getattr(self, f"{which}_schedule")
        return None if value.lower() == "none" else value

    def replace(self, **changes) -> Settings:
        """A copy with some settings changed (validated like the environment's)."""
        return type(self).model_validate({**self.model_dump(), **changes})

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

    def as_env(self) -> dict[str, str]:
        """Every setting as the variable that sets it (unset ones left out)."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "1" if value else "0"
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
        return env

    def child_env(self) -> dict[str, str]:
        """Environment for a subprocess (dbt, Airflow) that must see these same settings."""
        env = dict(os.environ)
        env.update(NO_TELEMETRY_ENV)
        env.update(self.as_env())
        # Tools started by a child (airflow standalone starts `airflow ...`) come from this venv.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["CRM_REPO"] = str(REPO_ROOT)
        env["CRM_WAREHOUSE_PATH"] = str(self.warehouse_path)
        env["AIRFLOW_HOME"] = str(self.airflow_home)
        env.setdefault("AIRFLOW_CONFIG", str(REPO_ROOT / "airflow.cfg"))
        env["DBT_TARGET_PATH"] = str(self.dbt_state_dir / "target")
        env["DBT_LOG_PATH"] = str(self.dbt_state_dir / "logs")
        return env


def get_settings() -> Settings:
    """Read the settings now (cheap; call it where needed rather than caching a global).
    A bad value raises SettingsError naming the variable and the form it expects."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None


_EXPECTED = {
    "int_parsing": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "1 or 0 (true/false, yes/no)",
}


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = f"{ENV_PREFIX}{'_'.join(str(p) for p in error['loc']).upper()}"
        expected = _EXPECTED.get(error["type"]) or error["msg"].removeprefix(
            "Value error, "
        ).removeprefix("Input should be ")
        problems.append(f"{name}={error.get('input')!s}: expected {expected}")
    return "; ".join(problems)


def masked(name: str, value) -> str:
    """A setting's value as `crm config` shows it: secrets (and passwords inside URLs)
    replaced by ***."""
    if value is None:
        return ""
    field = Settings.model_fields[name]
    secret = (field.json_schema_extra or {}).get("secret")
    text = str(value)
    if secret and "://" in text:
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", text)
    return "***" if secret else text


def effective(settings: Settings) -> list[tuple[str, str, str]]:
    """(variable, value as shown, where it came from) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        value = getattr(settings, name)
        if os.environ.get(variable):
            source = "environment"
        elif value != field.default and not (name == "duckdb_threads"):
            source = ".env"
        else:
            source = "default"
        rows.append((variable, masked(name, value), source))
    return rows


def settings_table() -> str:
    """The settings as a Markdown table: variable, default, meaning (docs/settings.md)."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if name == "home":
            default = "./data (in the repository)"
        elif name == "duckdb_threads":
            default = "the number of cores"
        elif isinstance(default, bool):
            default = "1" if default else "0"
        shown = "" if default is None else f"`{default}`" if name != "home" else default
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"
