"""Drive the real Airflow for the embedded default: set it up, run the pipeline DAG.

`crm run` goes through `airflow dags test`, which executes a real DAG run (tasks, XComs,
retries, asset events, the metadata database) in one process without a scheduler, the
documented way to run a DAG on demand. Its log goes to a file; the terminal gets one line
per task as it ends. Whether the run did its work, which task failed and why, and the run
summary are then read from Airflow's own record of the run (crm/airflow_record.py).
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

from crm.errors import BadInputError, CrmError, RetryableError
from crm.settings import Settings, get_settings

PIPELINE_DAG = "crm_pipeline"
TRAINING_DAG = "train_target_models"
SCORING_DAG = "score_target_customers"
ACTIVATION_DAG = "activate_audiences"
WRITER_POOL = "warehouse_writer"

_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")


#: The task whose return value (XCom) is each DAG's run summary.
SUMMARY_TASKS = {
    PIPELINE_DAG: "finish_run",
    TRAINING_DAG: "train_and_gate",
    SCORING_DAG: "score",
    ACTIVATION_DAG: "write_run_report",
}

#: `crm` exit codes for a failed run, by the kind of error its task recorded.
EXIT_CODES = {
    "bad_input": BadInputError.exit_code,
    "environment": RetryableError.exit_code,
}


class PipelineFailed(CrmError):
    """The DAG run did not do its work; the message says which task and why."""

    def __init__(self, message: str, exit_code: int = CrmError.exit_code):
        super().__init__(message)
        self.exit_code = exit_code


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
) -> dict:
    """One DAG run for `as_of` through `airflow dags test`: what Airflow recorded of it
    (crm/airflow_record.py), with `summary` (the summary task's return value) and `log`.

    The logical date is 02:00 UTC on the day after the as-of date, as the schedule would
    give. Raises PipelineFailed when the run failed or any task did not run, naming the
    task and the error it recorded."""
    settings = settings or get_settings()
    ensure_airflow(settings)
    logical = datetime(as_of.year, as_of.month, as_of.day, 2, tzinfo=UTC) + timedelta(days=1)
    logs = settings.airflow_home / "logs" / "crm_run"
    logs.mkdir(parents=True, exist_ok=True)
    since = datetime.now(UTC)
    log_path = logs / f"{as_of.isoformat()}_{dag_id}_{since:%Y%m%dT%H%M%S}.log"
    cmd = [
        airflow_executable(),
        "dags",
        "test",
        dag_id,
        logical.isoformat(),
        "-c",
        json.dumps({"as_of": as_of.isoformat(), **conf}),
    ]
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            env=settings.child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        for line in proc.stdout:
            log.write(line)
            if m := _TASK_END.search(line):  # progress for a person; decisions come below
                echo(f"  {m.group(1):<36} ended at {time.perf_counter() - started:6.1f} s")
        code = proc.wait()
    record = read_dag_run(dag_id, since, settings)
    if record is None:
        raise PipelineFailed(
            f"the {dag_id} run for {as_of} never started (airflow exited {code})"
            f"\n{_error_excerpt(log_path)}\nFull log: {log_path}"
        )
    record["log"] = str(log_path)
    _check_record(record, as_of, code)
    return record


def read_dag_run(dag_id: str, since: datetime, settings: Settings | None = None) -> dict | None:
    """Airflow's record of the newest `dag_id` run created since `since` (None: no run)."""
    settings = settings or get_settings()
    proc = subprocess.run(
        [sys.executable, "-m", "crm.airflow_record", dag_id, since.isoformat()],
        env=settings.child_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise PipelineFailed(
            f"could not read the {dag_id} run from Airflow:\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_record(record: dict, as_of: date, airflow_exit: int) -> None:
    """Raise unless the run succeeded and every task it should run did."""
    from crm.airflow_record import failed_tasks, not_run

    dag_id, tasks = record["dag_id"], record["tasks"]
    missing = not_run(record)
    if record["state"] == "success" and not missing and airflow_exit == 0:
        return
    failed = failed_tasks(record)
    errors = [tasks[t]["error"] for t in failed if tasks[t].get("error")]
    # bad input first: a rejected file explains a failed run better than a later lock
    codes = [EXIT_CODES[e["kind"]] for e in errors if e["kind"] in EXIT_CODES]
    code = min(codes, default=CrmError.exit_code)
    if failed:
        what = f"task {', '.join(failed)} failed"
    else:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        what = (
            f"Airflow marked it {record['state']} but {len(missing)} of {len(tasks)} tasks "
            f"did not run ({shown})"
        )
    detail = "\n".join(e["message"] for e in errors) or _error_excerpt(Path(record["log"]))
    detail = f"\n{detail}" if detail else ""
    raise PipelineFailed(
        f"the {dag_id} run for {as_of} failed: {what}{detail}\nFull log: {record['log']}",
        exit_code=code,
    )


def summary_of(record: dict) -> dict:
    """A DAG run's summary: its summary task's return value, with what Airflow recorded of
    each task (state, tries, seconds) and where the log is."""
    summary = dict(record["tasks"][SUMMARY_TASKS[record["dag_id"]]].get("returned") or {})
    summary["airflow_log"] = record["log"]
    summary["airflow"] = {
        "dag_id": record["dag_id"],
        "run_id": record["run_id"],
        "state": record["state"],
        "tasks": {
            t: {k: v.get(k) for k in ("state", "tries", "seconds")}
            for t, v in record["tasks"].items()
        },
    }
    return summary


def run_pipeline(
    as_of: date,
    reload: bool = False,
    full_refresh: bool = False,
    settings: Settings | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run the pipeline DAG for `as_of` through Airflow; return the run summary."""
    conf = {"reload": reload, "full_refresh": full_refresh}
    return summary_of(run_dag(PIPELINE_DAG, as_of, conf, settings, echo))


def _run_reporting_dag(dag_id: str, as_of: date, settings, echo) -> dict:
    return summary_of(run_dag(dag_id, as_of, {}, settings, echo))


def run_training(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The training DAG (train, gate, record) for `as_of`; its summary."""
    return _run_reporting_dag(TRAINING_DAG, as_of, settings, echo)


def run_scoring(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The scoring DAG (scores and audiences) for `as_of`; its summary."""
    return _run_reporting_dag(SCORING_DAG, as_of, settings, echo)


def run_activation(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The activation DAG (releases, destinations, run report) for `as_of`; its summary."""
    return _run_reporting_dag(ACTIVATION_DAG, as_of, settings, echo)


def _error_excerpt(log_path: Path, limit: int = 25) -> str:
    """The lines that say what went wrong, not the whole Airflow log."""
    lines = log_path.read_text(errors="replace").splitlines()
    picked = [
        ln
        for ln in lines
        if re.search(r"(Error|Exception|FAIL|error:)", ln) and "DeprecationWarning" not in ln
    ]
    return "\n".join(picked[-limit:])
