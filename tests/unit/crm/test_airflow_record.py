"""What `crm run` concludes from Airflow's record of a DAG run: a run Airflow marked
successful without running its tasks fails, a failed task names itself and the error it
recorded, and the exit code follows the kind of error."""

from __future__ import annotations

from datetime import date

import pytest

from crm.airflow_record import not_run
from crm.orchestrate import PipelineFailed, _check_record


def record(state: str, **tasks) -> dict:
    rules = {"record_failure": "one_failed"}
    return {
        "dag_id": "crm_pipeline",
        "run_id": "manual__x",
        "state": state,
        "log": "/nonexistent.log",
        "tasks": {
            t: {"state": s if not isinstance(s, tuple) else s[0],
                "trigger_rule": rules.get(t, "all_success"), "tries": 1,
                **({"error": s[1]} if isinstance(s, tuple) else {})}
            for t, s in tasks.items()
        },
    }  # fmt: skip


def test_a_success_without_tasks_run_is_a_failure(tmp_path):
    empty = record("success", start_run=None, ingest_customers=None, record_failure=None)
    assert not_run(empty) == ["start_run", "ingest_customers", "record_failure"]
    empty["log"] = str(tmp_path / "run.log")
    (tmp_path / "run.log").write_text("")
    with pytest.raises(PipelineFailed, match="3 of 3 tasks did not run") as caught:
        _check_record(empty, date(1998, 6, 30), 0)
    assert caught.value.exit_code == 1


def test_every_task_done_and_the_handler_skipped_is_a_success():
    done = record("success", start_run="success", finish_run="success", record_failure="skipped")
    assert not_run(done) == []
    _check_record(done, date(2026, 1, 1), 0)


@pytest.mark.parametrize(("kind", "code"), [("bad_input", 3), ("environment", 4), (None, 1)])
def test_a_failed_task_names_itself_its_error_and_the_exit_code(tmp_path, kind, code):
    error = {"kind": kind, "message": "customers.csv: customer_id missing"} if kind else None
    failed = record(
        "failed",
        start_run="success",
        ingest_customers=("failed", error) if error else "failed",
        finish_run="upstream_failed",
        record_failure="failed",
    )
    failed["log"] = str(tmp_path / "run.log")
    (tmp_path / "run.log").write_text("ValueError: boom\n")
    with pytest.raises(PipelineFailed) as caught:
        _check_record(failed, date(2026, 1, 1), 1)
    message = str(caught.value)
    assert message.startswith(
        "the crm_pipeline run for 2026-01-01 failed: task ingest_customers failed\n"
    )  # the failure handler, failing on purpose, is not named
    assert ("customer_id missing" if kind else "ValueError: boom") in message
    assert caught.value.exit_code == code
