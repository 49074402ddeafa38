"""Drive the real Airflow for the embedded default: set it up, run the pipeline DAG.

`crm run` goes through `airflow dags test`, which executes a real DAG run (tasks, XComs,
retries, asset events, the metadata database) in one process without a scheduler, the
documented way to run a DAG on demand. Its log goes to a file; the terminal gets one line
per task and, at the end, the run summary the DAG wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from crm.errors import CrmError
from crm.settings import Settings, get_settings

PIPELINE_DAG = "crm_pipeline"
TRAINING_DAG = "train_target_models"
SCORING_DAG = "score_target_customers"
ACTIVATION_DAG = "activate_audiences"
WRITER_POOL = "warehouse_writer"

_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_STATE = re.compile(r"new_state=(\w+)")


class PipelineFailed(CrmError):
    """The DAG run did not succeed; the message points at the log."""


def airflow_executable() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow(
    args: list[str], settings: Settings | None = None, **kwargs
) -> subprocess.CompletedProcess:
    settings = settings or get_settings()
    return subprocess.run(
        [airflow_executable(), *args], env=settings.child_env(), text=True, **kwargs
    )


def ensure_airflow(settings: Settings | None = None) -> None:
    """Create or migrate the metadata database and the writer pool, once per version."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    from importlib.metadata import version

    marker = settings.airflow_home / ".crm_ready"
    wanted = f"airflow {version('apache-airflow')}"
    if marker.exists() and marker.read_text().strip() == wanted:
        return
    steps = [
        ["db", "migrate"],
        ["pools", "set", WRITER_POOL, "1", "One writer at a time on the DuckDB warehouse"],
    ]
    for args in steps:
        proc = airflow(args, settings, capture_output=True)
        if proc.returncode != 0:
            raise PipelineFailed(
                f"`airflow {' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
    marker.write_text(wanted + "\n")


def run_dag(
    dag_id: str,
    as_of: date,
    conf: dict,
    settings: Settings | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """One DAG run for `as_of` through `airflow dags test`; the path of its log.

    The logical date is 02:00 UTC on the day after the as-of date, as the schedule would
    give. Raises PipelineFailed naming the failed task and quoting the errors."""
    settings = settings or get_settings()
    ensure_airflow(settings)
    logical = datetime(as_of.year, as_of.month, as_of.day, 2, tzinfo=UTC) + timedelta(days=1)
    logs = settings.airflow_home / "logs" / "crm_run"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{as_of.isoformat()}_{dag_id}_{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    cmd = [
        airflow_executable(),
        "dags",
        "test",
        dag_id,
        logical.isoformat(),
        "-c",
        json.dumps({"as_of": as_of.isoformat(), **conf}),
    ]
    started: dict[str, float] = {}
    last_state: dict[str, str] = {}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            env=settings.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        current = None
        for line in proc.stdout:
            log.write(line)
            if m := _TASK_START.search(line):
                current = m.group(1)
                started[current] = time.perf_counter()
            elif m := _TASK_END.search(line):
                task = m.group(1)
                took = time.perf_counter() - started.get(task, time.perf_counter())
                echo(f"  {task:<36} {took:6.1f} s")
            elif current and (m := _STATE.search(line)):
                last_state[current] = m.group(1)
                if m.group(1) in ("failed", "up_for_retry") and current != "record_failure":
                    word = "failed" if m.group(1) == "failed" else "failed, will retry"
                    echo(f"  {current:<36} {word}")
        code = proc.wait()
    # A task that failed and then succeeded on retry is fine: only final states count, and
    # `airflow dags test` exits non-zero when the run failed.
    failed = [t for t, state in last_state.items() if state == "failed" and t != "record_failure"]
    if code != 0:
        raise PipelineFailed(
            f"the {dag_id} run for {as_of} failed "
            f"(task: {', '.join(failed) or '?'})"
            f"\n{_error_excerpt(log_path)}\nFull log: {log_path}"
        )
    return log_path


def _fresh_report(settings: Settings, name: str, as_of: date, since: datetime, log: Path) -> dict:
    path = settings.reports / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < since.timestamp() - 5:
        raise PipelineFailed(f"the run ended but wrote no {name}.json; log: {log}")
    doc = json.loads(path.read_text())
    if doc.get("as_of") != as_of.isoformat():
        raise PipelineFailed(f"{name}.json is for {doc.get('as_of')}, not {as_of}; log: {log}")
    doc["airflow_log"] = str(log)
    return doc


def run_pipeline(
    as_of: date,
    reload: bool = False,
    full_refresh: bool = False,
    settings: Settings | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run the pipeline DAG for `as_of` through Airflow; return the run summary."""
    settings = settings or get_settings()
    since = datetime.now(UTC)
    log = run_dag(
        PIPELINE_DAG, as_of, {"reload": reload, "full_refresh": full_refresh}, settings, echo
    )
    return _fresh_report(settings, "last_run", as_of, since, log)


def _run_reporting_dag(dag_id: str, report: str, as_of: date, settings, echo) -> dict:
    """A DAG run whose last task writes `reports/<report>.json`; that summary."""
    settings = settings or get_settings()
    since = datetime.now(UTC)
    log = run_dag(dag_id, as_of, {}, settings, echo)
    return _fresh_report(settings, report, as_of, since, log)


def run_training(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The training DAG (train, gate, record) for `as_of`; its summary."""
    return _run_reporting_dag(TRAINING_DAG, "last_training", as_of, settings, echo)


def run_scoring(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The scoring DAG (scores and audiences) for `as_of`; its summary."""
    return _run_reporting_dag(SCORING_DAG, "last_scoring", as_of, settings, echo)


def run_activation(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The activation DAG (releases, destinations, run report) for `as_of`; its summary."""
    return _run_reporting_dag(ACTIVATION_DAG, "last_activation", as_of, settings, echo)


def _error_excerpt(log_path: Path, limit: int = 25) -> str:
    """The lines that say what went wrong, not the whole Airflow log."""
    lines = log_path.read_text(errors="replace").splitlines()
    picked = [
        ln
        for ln in lines
        if re.search(r"(Error|Exception|FAIL|error:)", ln) and "DeprecationWarning" not in ln
    ]
    return "\n".join(picked[-limit:])
