"""Airflow as a deployment: PostgreSQL metadata, CeleryExecutor with Redis as broker, and
the scheduler, dag-processor, triggerer, api-server and Celery workers as separate
processes, watched by a supervisor that restarts any of them that dies.

    crm deployment up [--workers 2]   (make airflow-up)
    crm deployment status
    crm deployment down               (make airflow-down)

This starts every process on this machine, which is how the test runs it and how a small
company might; `up` starts the supervisor (`python -m crm.deployment supervise N`, its own
process group), which starts the others, restarts one that exits, and stops them all on
SIGTERM (`down`). A server deployment does the same with systemd or docker compose
(deploy/, docs/deployment.md). On several machines, one runs the scheduler, dag-processor,
triggerer and api-server (`CRM_AIRFLOW_API_HOST=0.0.0.0`), and each other machine starts
`airflow celery worker` with the same environment and `AIRFLOW__API__BASE_URL` set to the
api-server's address.

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
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from crm.airflow_cli import WRITER_POOL, WRITER_POOL_DESCRIPTION, airflow_executable
from crm.errors import CrmError
from crm.settings import Settings, get_settings
from crm.sql import quote_identifier

DEFAULT_METADATA_DB = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: Task slots per worker.
WORKER_CONCURRENCY = 2
#: How long the supervisor waits before it restarts a process that died.
RESTART_DELAY_S = 5.0
#: How long `down` lets workers finish their running tasks before killing them.
STOP_TIMEOUT_S = 600.0
#: The line the supervisor writes into a process's log when it restarts it.
RESTART_MARK = "--- restarted by the crm deployment supervisor at"


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
        return self.settings.airflow_api_port

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
            "triggerer": [af, "triggerer"],
            # this machine only unless told otherwise (CRM_AIRFLOW_API_HOST=0.0.0.0)
            "api-server": [
                af,
                "api-server",
                "--port",
                str(self.port),
                "--host",
                self.settings.airflow_api_host,
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
        """The supervisor's and every process's pid, as the supervisor last wrote them."""
        path = self.folder / "pids.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def up(self, workers: int = 2, timeout_s: float = 180.0, echo=print) -> dict[str, int]:
        """Migrate the metadata database, create the writer pool, start the supervisor (which
        starts every process and restarts one that dies) and wait until the api-server
        answers and each worker is ready."""
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
            ["pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION],
        ):
            proc = subprocess.run(
                [airflow_executable(), *args], env=env, capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise DeploymentError(
                    f"`airflow {' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
                )
        fd = os.open(self.folder / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as log:
            subprocess.Popen(
                [sys.executable, "-m", "crm.deployment", "supervise", str(workers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(workers, timeout_s)
        except BaseException:
            self.down(echo=lambda _m: None)
            raise
        pids = self.pids()
        for name, pid in pids.items():
            echo(f"  {name:<14} pid {pid}  log {self.folder / (name + '.log')}")
        return pids

    def supervise(self, workers: int) -> None:
        """Run as the deployment's supervisor (its own process): start every process, restart
        one that dies (after RESTART_DELAY_S, logged in supervisor.log and counted in
        restarts.json), and on SIGTERM stop them all (workers finish their running tasks
        within STOP_TIMEOUT_S) and exit."""
        env = self.env()
        stopping = False

        def stop(_signum, _frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        commands = self._processes(workers)
        running: dict[str, subprocess.Popen] = {}
        restarts: dict[str, int] = {}

        def record() -> None:
            pids = {"supervisor": os.getpid(), **{n: p.pid for n, p in running.items()}}
            _atomic_json(self.folder / "pids.json", pids)
            _atomic_json(self.folder / "restarts.json", restarts)

        def start(name: str, first: bool) -> None:
            mode = os.O_TRUNC if first else os.O_APPEND  # readiness is read from this log
            fd = os.open(self.folder / f"{name}.log", os.O_WRONLY | os.O_CREAT | mode, 0o600)
            with os.fdopen(fd, "ab") as log:
                if not first:
                    log.write(
                        f"\n{RESTART_MARK} {time.strftime('%FT%TZ', time.gmtime())}\n".encode()
                    )
                    log.flush()
                worker = {"CRM_WORKER_NAME": name} if name.startswith("worker-") else {}
                running[name] = subprocess.Popen(
                    commands[name],
                    env={**env, **worker},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_stop_with_parent,
                )
            record()
            print(
                f"{'started' if first else 'restarted'} {name} pid {running[name].pid}", flush=True
            )

        for name in commands:
            start(name, first=True)
        died_at: dict[str, float] = {}
        while not stopping:
            now = time.monotonic()
            for name, process in list(running.items()):
                if process.poll() is None:
                    continue
                if name not in died_at:
                    print(
                        f"{name} (pid {process.pid}) exited with {process.returncode}", flush=True
                    )
                    _signal_group(process.pid, signal.SIGKILL)  # what it forked goes too
                    died_at[name] = now
                elif now - died_at[name] >= RESTART_DELAY_S:
                    del died_at[name]
                    restarts[name] = restarts.get(name, 0) + 1
                    start(name, first=False)
            time.sleep(1.0)
        for name, process in running.items():
            _signal_group(process.pid, signal.SIGTERM)
            print(f"stopping {name} (pid {process.pid})", flush=True)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(p.poll() is None for p in running.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        for process in running.values():
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        (self.folder / "pids.json").unlink(missing_ok=True)
        print("stopped", flush=True)

    def _wait_ready(self, workers: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {"api-server"} | {f"worker-{n}" for n in range(1, workers + 1)}
        while pending:
            pids = self.pids()
            if pids.get("supervisor") and not _alive(pids["supervisor"]):
                tail = (self.folder / "supervisor.log").read_text(errors="replace")[-2000:]
                raise DeploymentError(f"the supervisor stopped while starting:\n{tail}")
            if "api-server" in pending and _answers(f"{self.base_url}/api/v2/monitor/health"):
                pending.discard("api-server")
            for name in [p for p in pending if p.startswith("worker-") and p in pids]:
                if worker_ready(self.folder / f"{name}.log"):
                    pending.discard(name)
            if time.monotonic() > deadline:
                raise DeploymentError(f"not ready after {timeout_s:.0f} s: {sorted(pending)}")
            time.sleep(1.0)

    def status(self) -> dict[str, bool]:
        return {name: _alive(pid) for name, pid in self.pids().items()}

    def restarts(self) -> dict[str, int]:
        path = self.folder / "restarts.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def down(self, timeout_s: float = STOP_TIMEOUT_S + 30, echo=print) -> None:
        """Ask the supervisor to stop everything (SIGTERM: a worker stops taking tasks and
        finishes the ones it runs; what still runs after 10 minutes is killed) and wait;
        without a live supervisor, stop the processes it recorded directly."""
        pids = self.pids()
        supervisor = pids.pop("supervisor", None)
        if supervisor and _alive(supervisor):
            os.kill(supervisor, signal.SIGTERM)
            echo(f"  stopping the supervisor (pid {supervisor}) and {', '.join(pids)}")
            deadline = time.monotonic() + timeout_s
            while _alive(supervisor) and time.monotonic() < deadline:
                time.sleep(0.5)
        for name, pid in pids.items():
            if _alive(pid):
                _signal_group(pid, signal.SIGTERM)
                echo(f"  stopping {name} (pid {pid})")
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in pids.values():
            _signal_group(pid, signal.SIGKILL)
        (self.folder / "pids.json").unlink(missing_ok=True)


def _stop_with_parent() -> None:
    """In a child of the supervisor, before it runs: SIGTERM it when the supervisor dies,
    even by SIGKILL, so no Airflow process outlives the supervisor that would restart it
    (Linux; elsewhere `down` stops the recorded pids)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def worker_ready(log: Path) -> bool:
    """A Celery worker's log says it is ready (since its latest restart)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return " ready." in text.rsplit(RESTART_MARK, 1)[-1]


def _atomic_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


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


def active_deployment(settings: Settings | None = None) -> Deployment | None:
    """This CRM_HOME's deployment when it is up (its supervisor runs), else None: then
    `crm run` runs its DAGs there, recorded in its metadata database, in its writer pool."""
    dep = deployment(settings)
    supervisor = dep.pids().get("supervisor")
    return dep if supervisor and _alive(supervisor) else None


def airflow_in_deployment(args: list[str], settings: Settings | None = None, **kwargs):
    """An Airflow CLI command against the deployment (its metadata database)."""
    settings = settings or get_settings()
    return subprocess.run(
        [airflow_executable(), *args], env=deployment(settings).env(), text=True, **kwargs
    )


if __name__ == "__main__":  # python -m crm.deployment supervise N (started by `up`)
    if sys.argv[1:2] == ["supervise"]:
        deployment().supervise(int(sys.argv[2]))
