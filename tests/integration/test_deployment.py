"""Airflow as a deployment on this machine: PostgreSQL metadata database, CeleryExecutor
with Redis as broker, scheduler, dag-processor, api-server and two Celery workers as
separate processes (`crm deployment up`). The pipeline DAG is triggered through the CLI;
scoring and activation follow by their Assets; the CRM database is read through the
Airflow connection `crm_source`, given in the environment. A worker killed afterwards is
restarted by the deployment's supervisor; `crm run` then runs on the deployment (its
metadata database, its workers, its writer pool); `down` stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg2
import pytest

from crm.deployment import worker_ready
from datagen.generator import GenerationSpec, generate
from datagen.source_db import write_source_db
from tests.conftest import run_crm

pytestmark = pytest.mark.integration

SERVER = "postgresql://postgres@127.0.0.1:5432"
AS_OF = date(2026, 5, 31)
LATER = date(2026, 6, 1)
CHAINED = ("crm_pipeline", "score_target_customers", "activate_audiences")
PROCESSES = (
    "supervisor", "scheduler", "dag-processor", "triggerer", "api-server", "worker-1", "worker-2"
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metadata(database: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(f"{SERVER}/{database}")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def deployment(tmp_path):
    import redis

    suffix = uuid.uuid4().hex[:8]
    database, schema = f"airflow_test_{suffix}", f"crm_source_deploy_{suffix}"
    admin = psycopg2.connect(f"{SERVER}/postgres")
    admin.autocommit = True
    # (no metadata database yet: `crm deployment up` creates it)
    broker_db = 11
    redis.Redis(host="127.0.0.1", port=6379, db=broker_db).flushdb()
    crm = generate(GenerationSpec(customers=2000, seed=3, end=date(2026, 6, 1)))
    write_source_db(crm.tables, f"{SERVER}/test", schema)
    home = tmp_path / "home"
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{broker_db}",
        "CRM_AIRFLOW_API_PORT": str(_free_port()),
        # manual and asset-triggered runs only: no scheduled run of its own during the test
        "CRM_PIPELINE_SCHEDULE": "none",
        "CRM_TRAINING_SCHEDULE": "none",
        # the CRM database through an Airflow connection from the environment
        "AIRFLOW_CONN_CRM_SOURCE": f"{SERVER}/test",
        "CRM_SOURCE_URL": "",  # (which would win over the connection)
        "CRM_SOURCE_SCHEMA": schema,
    }
    try:
        up = run_crm("deployment", "up", "--workers", "2", home=home, env=env, timeout=400)
        yield {"home": home, "env": env, "database": database, "up": up.stdout}
    finally:
        run_crm("deployment", "down", home=home, env=env, check=False)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        with psycopg2.connect(f"{SERVER}/test") as conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.close()
        admin.close()


def test_the_dags_run_end_to_end_on_two_celery_workers_chained_by_assets(deployment):
    home, env, database = deployment["home"], deployment["env"], deployment["database"]
    status = run_crm("deployment", "status", home=home, env=env).stdout
    for process in PROCESSES:
        assert f"{process:<14} running" in status
    for dag_id in CHAINED:
        run_crm("deployment", "airflow", "dags", "unpause", dag_id, home=home, env=env)
    run_crm(
        "deployment", "airflow", "dags", "trigger", "crm_pipeline",
        "-c", json.dumps({"as_of": AS_OF.isoformat()}), home=home, env=env,
    )  # fmt: skip

    deadline = time.monotonic() + 480
    runs: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        runs = {
            dag: (state, run_type)
            for dag, state, run_type in _metadata(
                database, "SELECT dag_id, state, run_type FROM dag_run"
            )
        }
        finished = {d: s for d, (s, _) in runs.items() if s in ("success", "failed")}
        if "failed" in finished.values() or len(finished) == len(CHAINED):
            break
        time.sleep(3)
    assert runs == {
        "crm_pipeline": ("success", "manual"),
        "score_target_customers": ("success", "asset_triggered"),
        "activate_audiences": ("success", "asset_triggered"),
    }, runs

    tasks = _metadata(database, "SELECT dag_id, task_id, state, hostname FROM task_instance")
    ran = [t for t in tasks if t[2] == "success"]
    assert len(ran) >= 20
    assert {t[3] for t in ran} == {"worker-1", "worker-2"}  # both workers took tasks
    summary = json.loads((home / "reports" / "last_run.json").read_text())
    assert summary["as_of"] == AS_OF.isoformat()
    assert summary["ingest"]["customers"]["rows_loaded"] == 2000  # from the CRM database
    activation = json.loads((home / "reports" / "last_activation.json").read_text())
    assert activation["as_of"] == AS_OF.isoformat()

    # a worker that dies is restarted by the supervisor, and takes tasks again
    folder = home / "airflow" / "deployment"
    pids = json.loads((folder / "pids.json").read_text())
    assert set(pids) == set(PROCESSES)
    os.killpg(pids["worker-2"], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        again = json.loads((folder / "pids.json").read_text())
        if again["worker-2"] != pids["worker-2"] and worker_ready(folder / "worker-2.log"):
            break
        time.sleep(1)
    assert again["worker-2"] != pids["worker-2"], "worker-2 was not restarted"
    assert worker_ready(folder / "worker-2.log")
    shown = json.loads(run_crm("deployment", "status", "--json", home=home, env=env).stdout)
    assert shown["running"] is True and shown["restarts"] == {"worker-2": 1}
    assert {k for k, v in again.items() if v != pids[k]} == {"worker-2"}  # nothing else moved

    # `crm run` on a home whose deployment is up runs there: triggered on the deployment,
    # its tasks on the workers in the one writer pool, recorded in the one metadata database
    proc = run_crm(
        "run", "--as-of", LATER.isoformat(), "--no-ml", "--json", home=home, env=env, timeout=600
    )
    assert "on the deployment" in proc.stderr
    pipeline = json.loads(proc.stdout)["pipeline"]
    run_id = pipeline["airflow"]["run_id"]
    assert run_id.startswith(f"crm__{LATER.isoformat()}__") and pipeline["as_of"] == str(LATER)
    assert _metadata(database, f"SELECT state FROM dag_run WHERE run_id = '{run_id}'") == [
        ("success",)
    ]
    hosts = _metadata(
        database,
        f"SELECT DISTINCT hostname FROM task_instance WHERE run_id = '{run_id}' "
        "AND state = 'success'",
    )
    assert {h for (h,) in hosts} <= {"worker-1", "worker-2"} and hosts
    writers = _metadata(
        database,
        f"SELECT DISTINCT pool FROM task_instance WHERE run_id = '{run_id}' AND state = 'success'",
    )
    assert writers == [("warehouse_writer",)]
    assert not (home / "airflow" / "airflow.db").exists()  # no second, embedded metadata db

    # down stops every process it started
    pids = again
    run_crm("deployment", "down", home=home, env=env)
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), name
    assert "not running" in run_crm("deployment", "status", home=home, env=env, check=False).stdout


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
