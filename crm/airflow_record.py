"""What a DAG run did, as Airflow itself recorded it: the run's state, every task instance's
state, tries and times, the values the tasks returned (XComs) and the error a task recorded
(`crm.airflow_support.fail_fast_on_bad_input`). `crm run` decides from this record whether a
run did its work, never from log lines: a run Airflow marked successful without running its
tasks (a logical date before the DAG's start) is a failure.

`read_record` runs in a child process (`python -m crm.airflow_record DAG_ID --since TIME`,
or `--run-id RUN_ID`) with the project's Airflow environment (the embedded one, or the
deployment's): Airflow reads its configuration when first imported, so the `crm` process
itself never imports it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

#: The XCom key under which a task records why it failed ({"kind", "message"}).
ERROR_XCOM_KEY = "crm_error"

#: Task states that count as having done the task's work.
DONE = "success"


def is_failure_handler(trigger_rule) -> bool:
    """A task with another trigger rule than all_success (record_failure, one_failed) runs
    only after a real failure and fails on purpose: it is skipped in a good run and never
    the failure to report."""
    return getattr(trigger_rule, "value", trigger_rule) != "all_success"


def read_record(dag_id: str, since: datetime | None = None, run_id: str | None = None):
    """The run `run_id` of `dag_id`, or else the first run created at or after `since`;
    None if there is none."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        if run_id is not None:
            query = query.where(DagRun.run_id == run_id)
        else:
            query = query.where(DagRun.run_after >= since).order_by(DagRun.run_after)
        run = session.scalars(query.limit(1)).first()
        if run is None:
            return None
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        tasks = {
            t.task_id: {
                "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                "state": None,
                "tries": 0,
            }
            for t in dag.tasks
        }
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id
            )
        ):
            tasks.setdefault(ti.task_id, {"trigger_rule": "", "tries": 0})
            tasks[ti.task_id].update(
                state=ti.state and str(ti.state),
                tries=ti.try_number or 0,
                seconds=round(ti.duration, 3) if ti.duration is not None else None,
                started_at=ti.start_date and ti.start_date.isoformat(),
                hostname=ti.hostname or None,
            )
        for xcom in session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id)
        ):
            value = XComModel.deserialize_value(xcom)
            if xcom.key == "return_value":
                tasks[xcom.task_id]["returned"] = value
            elif xcom.key == ERROR_XCOM_KEY:
                tasks[xcom.task_id]["error"] = value
        return {
            "dag_id": dag_id,
            "run_id": run.run_id,
            "state": str(run.state),
            "logical_date": run.logical_date and run.logical_date.isoformat(),
            "tasks": tasks,
        }


def not_run(record: dict) -> list[str]:
    """Tasks that should have done their work and did not. A task with the default trigger
    rule must succeed; one with another rule (a failure handler) may be skipped."""
    missing = []
    for task_id, task in record["tasks"].items():
        if task["state"] == DONE:
            continue
        if task["state"] == "skipped" and is_failure_handler(task["trigger_rule"]):
            continue
        missing.append(task_id)
    return missing


def failed_tasks(record: dict) -> list[str]:
    """Tasks whose final state is failed, in the DAG's order; a failure handler (a task
    with another trigger rule, which fails on purpose to fail the run) is not one."""
    return [
        t
        for t, v in record["tasks"].items()
        if v["state"] == "failed" and not is_failure_handler(v["trigger_rule"])
    ]


def main(argv: list[str]) -> int:
    """`DAG_ID --since ISO-TIME` or `DAG_ID --run-id RUN_ID`: the record as JSON."""
    dag_id, how, value = argv
    if how == "--run-id":
        record = read_record(dag_id, run_id=value)
    else:
        record = read_record(dag_id, since=datetime.fromisoformat(value))
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
