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

from crm.airflow_cli import WRITER_POOL, WRITER_POOL_DESCRIPTION, airflow_executable
from crm.airflow_record import failed_tasks, not_run
from crm.airflow_run import RECORD_MARKER
from crm.deployment import active_deployment
from crm.errors import BadInputError, CrmError, RetryableError
from crm.settings import Settings, get_settings

PIPELINE_DAG = "crm_pipeline"
TRAINING_DAG = "train_target_models"
SCORING_DAG = "score_target_customers"
ACTIVATION_DAG = "activate_audiences"

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
        ["pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION],
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
    upstream: dict | None = None,
    chain: bool = False,
) -> dict:
    """One DAG run for `as_of`: what Airflow recorded of it (crm/airflow_record.py), with
    `log`. Raises PipelineFailed when the run failed or any task did not run, naming the
    task and the error it recorded.

    When this CRM_HOME's deployment is up (`crm deployment up`), the run is the
    deployment's: triggered there (or, with `upstream`, the run that upstream run's Asset
    started), scheduled by its scheduler, its tasks run by its workers in its writer pool,
    recorded in its metadata database; with `chain`, the DAGs its Assets start are
    unpaused first, so they follow it (a paused DAG's runs never start, and an Asset event
    queues no run for a paused DAG). Otherwise `airflow dags test` runs it here."""
    settings = settings or get_settings()
    dep = active_deployment(settings)
    if dep is not None:
        record = _run_on_deployment(dep, dag_id, as_of, conf, upstream, chain, echo)
        _check_record(record, as_of, 0)
        return record
    return _run_embedded(dag_id, as_of, conf, settings, echo)


def _run_embedded(dag_id, as_of, conf, settings, echo) -> dict:
    """`airflow dags test` with the embedded Airflow (SQLite metadata under CRM_HOME), and
    Airflow's record of the run, from one child process (crm/airflow_run.py). The logical
    date is 02:00 UTC on the day after the as-of date, as the schedule would give."""
    ensure_airflow(settings)
    logical = datetime(as_of.year, as_of.month, as_of.day, 2, tzinfo=UTC) + timedelta(days=1)
    logs = settings.airflow_home / "logs" / "crm_run"
    logs.mkdir(parents=True, exist_ok=True)
    since = datetime.now(UTC)
    log_path = logs / f"{as_of.isoformat()}_{dag_id}_{since:%Y%m%dT%H%M%S}.log"
    cmd = [
        sys.executable,
        "-m",
        "crm.airflow_run",
        dag_id,
        logical.isoformat(),
        json.dumps({"as_of": as_of.isoformat(), **conf}),
        since.isoformat(),
    ]
    started = time.perf_counter()
    record = None
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
            if line.startswith(RECORD_MARKER):
                try:
                    record = json.loads(line[len(RECORD_MARKER) :])
                except json.JSONDecodeError:  # read it again below, from Airflow
                    record = None
                continue
            log.write(line)
            if m := _TASK_END.search(line):  # progress for a person; decisions come below
                echo(f"  {m.group(1):<36} ended at {time.perf_counter() - started:6.1f} s")
        code = proc.wait()
    if record is None:  # the child died before it could read the record: read it here
        record = read_dag_run(dag_id, settings.child_env(), since=since)
    if record is None:
        raise PipelineFailed(
            f"the {dag_id} run for {as_of} never started (airflow exited {code})"
            f"\n{_error_excerpt(log_path)}\nFull log: {log_path}"
        )
    record["log"] = str(log_path)
    _check_record(record, as_of, code)
    return record


#: How long `crm run` waits for a run on the deployment to finish.
DEPLOYMENT_RUN_TIMEOUT_S = 6 * 3600.0
#: How long it waits for the run an upstream run's Asset should start.
ASSET_RUN_WAIT_S = 300.0
#: Seconds between two looks at a run on the deployment.
POLL_S = 3.0
#: The task of each upstream DAG whose Asset starts the next one: scoring follows the
#: pipeline's customer 360 and a training run; activation follows scoring.
OUTLET_TASKS = {
    PIPELINE_DAG: "build_customer_360",
    TRAINING_DAG: "train_and_gate",
    SCORING_DAG: "score",
}
#: The DAGs each DAG's Assets start, directly or through another.
DOWNSTREAM = {
    PIPELINE_DAG: (SCORING_DAG, ACTIVATION_DAG),
    TRAINING_DAG: (SCORING_DAG, ACTIVATION_DAG),
    SCORING_DAG: (ACTIVATION_DAG,),
}
FINAL_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


def _run_on_deployment(dep, dag_id, as_of, conf, upstream, chain, echo) -> dict:
    """A DAG run on the deployment, followed to its end. With `upstream` (the summary of
    the run whose Asset starts this DAG) follow the run that Asset started rather than
    trigger a second one; else trigger one with the as-of date. The DAG is unpaused first:
    a paused DAG's runs never start."""
    env = dep.env()

    def airflow_cli(*args: str) -> None:
        proc = subprocess.run(
            [airflow_executable(), *args], env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise PipelineFailed(
                f"`airflow {' '.join(args[:3])}` failed on the deployment:\n"
                f"{(proc.stdout + proc.stderr)[-2000:]}"
            )

    dag_ids = [dag_id, *(DOWNSTREAM.get(dag_id, ()) if chain else ())]
    airflow_cli("dags", "unpause", "--treat-dag-id-as-regex", "-y", f"^({'|'.join(dag_ids)})$")
    started = time.perf_counter()
    if upstream is not None:
        source = upstream["airflow"]
        outlet = source["tasks"][OUTLET_TASKS[source["dag_id"]]]
        after = datetime.fromisoformat(outlet["started_at"])
        deadline = time.monotonic() + ASSET_RUN_WAIT_S
        while (record := read_dag_run(dag_id, env, since=after)) is None:
            if time.monotonic() > deadline:
                raise PipelineFailed(
                    f"no {dag_id} run started on the deployment within "
                    f"{ASSET_RUN_WAIT_S:.0f} s after {source['dag_id']} updated its Asset"
                )
            time.sleep(POLL_S)
        run_id = record["run_id"]
        echo(f"  (following {run_id}, started by {source['dag_id']}'s Asset)")
    else:
        run_id = f"crm__{as_of.isoformat()}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        conf_json = json.dumps({"as_of": as_of.isoformat(), **conf})
        airflow_cli("dags", "trigger", dag_id, "--run-id", run_id, "-c", conf_json)
    reported: set[str] = set()
    deadline = time.monotonic() + DEPLOYMENT_RUN_TIMEOUT_S
    while True:
        record = read_dag_run(dag_id, env, run_id=run_id)
        for task_id, task in record["tasks"].items():
            if task["state"] in FINAL_STATES and task_id not in reported:
                reported.add(task_id)
                took = time.perf_counter() - started
                echo(f"  {task_id:<36} {task['state']} at {took:6.1f} s on {task['hostname']}")
        if record["state"] in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise PipelineFailed(
                f"{dag_id} run {run_id} unfinished after {DEPLOYMENT_RUN_TIMEOUT_S:.0f} s"
            )
        time.sleep(POLL_S)
    record["log"] = str(
        dep.settings.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    )
    return record


def read_dag_run(
    dag_id: str, env: dict, since: datetime | None = None, run_id: str | None = None
) -> dict | None:
    """Airflow's record of the run `run_id`, or of the first `dag_id` run created since
    `since`, in the Airflow `env` points at (None: no such run)."""
    how = ["--run-id", run_id] if run_id else ["--since", since.isoformat()]
    proc = subprocess.run(
        [sys.executable, "-m", "crm.airflow_record", dag_id, *how],
        env=env,
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
            t: {k: v.get(k) for k in ("state", "tries", "seconds", "started_at", "hostname")}
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
    chain: bool = True,
    force: bool = False,
    republish: bool = False,
) -> dict:
    """Run the pipeline DAG for `as_of` through Airflow; return the run summary. `chain`:
    scoring and activation follow (on a deployment, by the pipeline's Asset). `force`: run
    although the date lies far after the newest data; `republish`: replace the BI snapshot
    even if it holds a later date."""
    conf = {
        "reload": reload,
        "full_refresh": full_refresh,
        "force": force,
        "republish": republish,
    }
    return summary_of(run_dag(PIPELINE_DAG, as_of, conf, settings, echo, chain=chain))


def _run_reporting_dag(
    dag_id: str, as_of: date, settings, echo, upstream=None, conf: dict | None = None
) -> dict:
    # a run with its own conf is triggered, not followed: the Asset's run has no conf
    upstream = None if conf else upstream
    return summary_of(run_dag(dag_id, as_of, conf or {}, settings, echo, upstream, chain=True))


def run_training(as_of: date, settings: Settings | None = None, echo=print) -> dict:
    """The training DAG (train, gate, record) for `as_of`; its summary."""
    return _run_reporting_dag(TRAINING_DAG, as_of, settings, echo)


def run_scoring(
    as_of: date, settings: Settings | None = None, echo=print, upstream: dict | None = None
) -> dict:
    """The scoring DAG (scores and audiences) for `as_of`; its summary. `upstream`: the
    pipeline or training summary whose Asset starts it on a deployment."""
    return _run_reporting_dag(SCORING_DAG, as_of, settings, echo, upstream)


def run_activation(
    as_of: date,
    settings: Settings | None = None,
    echo=print,
    upstream: dict | None = None,
    republish: bool = False,
) -> dict:
    """The activation DAG (releases, destinations, run report) for `as_of`; its summary.
    `upstream`: the scoring summary whose Asset starts it on a deployment. `republish`:
    each offer's `latest` moves to this date even if a later one was released."""
    conf = {"republish": True} if republish else None
    return _run_reporting_dag(ACTIVATION_DAG, as_of, settings, echo, upstream, conf)


def _error_excerpt(log_path: Path, limit: int = 25) -> str:
    """The lines that say what went wrong, not the whole Airflow log (nothing when the log
    is a deployment's folder of task logs)."""
    if not log_path.is_file():
        return ""
    lines = log_path.read_text(errors="replace").splitlines()
    picked = [
        ln
        for ln in lines
        if re.search(r"(Error|Exception|FAIL|error:)", ln) and "DeprecationWarning" not in ln
    ]
    return "\n".join(picked[-limit:])
