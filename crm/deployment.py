"""Airflow as a deployment: PostgreSQL metadata, CeleryExecutor with Redis as broker, and
the scheduler, dag-processor, api-server and Celery workers as separate processes.

    crm deployment up [--workers 2]   (make airflow-up)
    crm deployment status
    crm deployment down               (make airflow-down)

This starts every process on this machine, which is how the test runs it and how a small
company might. On several machines, one runs the scheduler, dag-processor and api-server
(`CRM_AIRFLOW_API_HOST=0.0.0.0`), and each other machine starts `airflow celery worker`
with the same environment and `AIRFLOW__API__BASE_URL` set to the api-server's address
(docs/deployment.md).

Settings, each overridable from the environment (nothing secret is in the repository):
`AIRFLOW__DATABASE__SQL_ALCHEMY_CONN` (default: database `airflow` on the local
PostgreSQL), `AIRFLOW__CELERY__BROKER_URL` (default: the local Redis, db 0),
`CRM_AIRFLOW_API_PORT` (8080). The api-server's JWT secret, which every component must
share, is generated once into `CRM_HOME/airflow/deployment/jwt_secret` (mode 0600) unless
`AIRFLOW__API_AUTH__JWT_SECRET` is set. Each worker names itself `worker-<n>` (Airflow
records it as the task's hostname), so a run shows which worker ran which task.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crm.errors import CrmError
from crm.orchestrate import WRITER_POOL, airflow_executable
from crm.settings import Settings, get_settings
from crm.sql import quote_identifier

DEFAULT_METADATA_DB = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: Task slots per worker.
WORKER_CONCURRENCY = 2


class DeploymentError(CrmError):
    """A process of the deployment did not start or stopped."""


def worker_name() -> str:
    """Airflow's `hostname_callable` here: the worker's own name when it has one."""
    return os.environ.get("CRM_WORKER_NAME") or socket.getfqdn()


@dataclass(frozen=True)
class Deployment:
    settings: Settings

    @property
    def folder(self) -> Path:
        return self.settings.airflow_home / "deployment"

    @property
    def port(self) -> int:
        return int(os.environ.get("CRM_AIRFLOW_API_PORT", "8080"))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _jwt_secret(self) -> str:
        """Made once, readable by this user only; created exclusively, so two starts at
        once cannot write two secrets."""
        path = self.folder / "jwt_secret"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        """The environment every process of the deployment shares."""
        env = self.settings.child_env()
        metadata = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or DEFAULT_METADATA_DB
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata
        env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
        env.setdefault("AIRFLOW__CELERY__BROKER_URL", DEFAULT_BROKER)
        result = "db+" + metadata
        env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", result)
        env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(WORKER_CONCURRENCY))
        # workers on other machines set these to the api-server's address
        env.setdefault("AIRFLOW__API__BASE_URL", self.base_url)
        env["AIRFLOW__API__PORT"] = str(self.port)
        env.setdefault(
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            env["AIRFLOW__API__BASE_URL"].rstrip("/") + "/execution/",
        )
        if not env.get("AIRFLOW__API_AUTH__JWT_SECRET"):
            env["AIRFLOW__API_AUTH__JWT_SECRET"] = self._jwt_secret()
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "crm.deployment.worker_name"
        return env

    def _processes(self, workers: int) -> dict[str, list[str]]:
        af = airflow_executable()
        procs = {
            "scheduler": [af, "scheduler"],
            "dag-processor": [af, "dag-processor"],
            # this machine only unless told otherwise (CRM_AIRFLOW_API_HOST=0.0.0.0)
            "api-server": [
                af,
                "api-server",
                "--port",
                str(self.port),
                "--host",
                os.environ.get("CRM_AIRFLOW_API_HOST", "127.0.0.1"),
            ],
        }
        for n in range(1, workers + 1):
            # one machine: the workers share the log folder, so none serves logs over HTTP
            procs[f"worker-{n}"] = [
                af, "celery", "worker", "--celery-hostname", f"worker-{n}@%h",
                "--skip-serve-logs",
            ]  # fmt: skip
        return procs

    def pids(self) -> dict[str, int]:
        path = self.folder / "pids.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def up(self, workers: int = 2, timeout_s: float = 180.0, echo=print) -> dict[str, int]:
        """Migrate the metadata database, create the writer pool, start every process and
        wait until the api-server answers and each worker is ready."""
        if self.pids():
            raise DeploymentError(
                f"already up ({self.folder / 'pids.json'}): `crm deployment down`"
            )
        self.settings.ensure_dirs()
        self.folder.mkdir(parents=True, exist_ok=True)
        env = self.env()
        ensure_metadata_database(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        for args in (
            ["db", "migrate"],
            ["pools", "set", WRITER_POOL, "1", "One writer at a time on the DuckDB warehouse"],
        ):
            proc = subprocess.run(
                [airflow_executable(), *args], env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise DeploymentError(
                    f"`airflow {' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
                )
        pids: dict[str, int] = {}
        try:
            for name, cmd in self._processes(workers).items():
                # a new log per start (readiness is read from it), for this user only
                fd = os.open(
                    self.folder / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
                )
                with os.fdopen(fd, "wb") as log:
                    worker = {"CRM_WORKER_NAME": name} if name.startswith("worker-") else {}
                    process = subprocess.Popen(
                        cmd,
                        env={**env, **worker},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                pids[name] = process.pid
                # recorded at once, so that a failure from here on can stop what started
                (self.folder / "pids.json").write_text(json.dumps(pids))
                echo(f"  started {name:<14} pid {process.pid}  log {self.folder / (name + '.log')}")
            self._wait_ready(workers, timeout_s)
        except BaseException:
            self.down(echo=lambda _m: None)
            raise
        return pids

    def _wait_ready(self, workers: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {"api-server"} | {f"worker-{n}" for n in range(1, workers + 1)}
        while pending:
            for name, pid in self.pids().items():
                if not _alive(pid):
                    tail = (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise DeploymentError(f"{name} stopped while starting:\n{tail}")
            if "api-server" in pending and _answers(f"{self.base_url}/api/v2/monitor/health"):
                pending.discard("api-server")
            for name in [p for p in pending if p.startswith("worker-")]:
                log = (self.folder / f"{name}.log").read_text(errors="replace")
                if " ready." in log:
                    pending.discard(name)
            if time.monotonic() > deadline:
                raise DeploymentError(f"not ready after {timeout_s:.0f} s: {sorted(pending)}")
            time.sleep(1.0)

    def status(self) -> dict[str, bool]:
        return {name: _alive(pid) for name, pid in self.pids().items()}

    def down(self, timeout_s: float = 600.0, echo=print) -> None:
        """SIGTERM every process group (a worker stops taking tasks and finishes the ones
        it runs), then SIGKILL what is left after `timeout_s` (10 minutes)."""
        pids = self.pids()
        for name, pid in pids.items():
            _signal_group(pid, signal.SIGTERM)
            echo(f"  stopping {name} (pid {pid})")
        deadline = time.monotonic() + timeout_s
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in pids.values():
            _signal_group(pid, signal.SIGKILL)
        (self.folder / "pids.json").unlink(missing_ok=True)


def ensure_metadata_database(sqlalchemy_url: str) -> None:
    """Create the PostgreSQL metadata database when the server has none of that name
    (needs a user allowed to create databases; otherwise create it once by hand)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    if not url.drivername.startswith("postgresql") or not url.database:
        return
    server = {"host": url.host, "port": url.port or 5432, "user": url.username}
    try:
        psycopg2.connect(
            **server, password=url.password, dbname=url.database, connect_timeout=10
        ).close()
        return  # it exists (and this user may not be able to reach `postgres` at all)
    except psycopg2.OperationalError:
        pass
    try:
        admin = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname="postgres", connect_timeout=10,
        )  # fmt: skip
    except psycopg2.OperationalError as exc:
        raise DeploymentError(f"cannot reach the metadata database server: {exc}") from exc
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if not cur.fetchall():
                cur.execute(f"CREATE DATABASE {quote_identifier(url.database)}")
    finally:
        admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # gone, or the number now belongs to another user's process
    # a zombie (exited, not yet reaped by us) counts as stopped
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def deployment(settings: Settings | None = None) -> Deployment:
    return Deployment(settings or get_settings())


def airflow_in_deployment(args: list[str], settings: Settings | None = None, **kwargs):
    """An Airflow CLI command against the deployment (its metadata database)."""
    settings = settings or get_settings()
    return subprocess.run(
        [airflow_executable(), *args], env=deployment(settings).env(), text=True, **kwargs
    )
