"""Small adapters between stage functions and Airflow: what every DAG of the project
declares the same way (cheap to import at parse time), and helpers for task bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from crm.alerts import RunFailureNotifier
from crm.errors import BadInputError
from crm.runs import EARLIEST_AS_OF

#: Every DAG's start_date: the earliest as-of date a run may have. Airflow marks a run whose
#: logical date lies before its DAG's start_date successful without running a task, so a
#: later start_date would turn a backfill of old history into runs that did nothing.
START_DATE = datetime(EARLIEST_AS_OF.year, EARLIEST_AS_OF.month, EARLIEST_AS_OF.day, tzinfo=UTC)

#: How long a task may run before Airflow stops (and retries) it: generous against the
#: 1,000,000-customer figures of docs/benchmarks.md, so only a hung task reaches them.
QUICK = timedelta(minutes=10)  # bookkeeping
CHECK = timedelta(minutes=30)  # a checkpoint, a snapshot, the docs page, a report
LOAD = timedelta(hours=1)  # one entity's ingest, the CLV fit, scoring, publishing
BUILD = timedelta(hours=2)  # a dbt build, the PostgreSQL marts
TRAIN = timedelta(hours=4)  # training and gating every offer

#: Every task writes the DuckDB warehouse, so each holds the one-slot writer pool; retries
#: cover a lock held by another process (WarehouseLockedError is retryable). A task that
#: fails for good alerts (crm/alerts.py: e-mail and webhook, when configured).
WRITER_DEFAULT_ARGS = {
    "owner": "crm-analytics",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "pool": "warehouse_writer",
    "execution_timeout": BUILD,
    "on_failure_callback": [RunFailureNotifier()],
}


def schedule(which: str) -> str | None:
    """A DAG's schedule from the settings (CRM_PIPELINE_SCHEDULE, CRM_TRAINING_SCHEDULE;
    'none' for manual runs only). Read at parse time: change it without editing the DAG."""
    from crm.settings import get_settings

    return get_settings().schedule(which)


def as_of_param(description: str):
    """The `as_of` run parameter (YYYY-MM-DD or empty) every DAG takes."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date", description=description)


@contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Bad input cannot be fixed by a retry: fail the task at once with the message. Either
    kind of expected error is also recorded as the task's `crm_error` XCom, so `crm run`
    can say what went wrong and exit with the matching code without reading the log."""
    from crm.errors import RetryableError

    try:
        yield
    except BadInputError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        _record_error("bad_input", exc)
        raise AirflowFailException(str(exc)) from exc
    except RetryableError as exc:
        _record_error("environment", exc)
        raise


def _record_error(kind: str, exc: Exception) -> None:
    from airflow.sdk import get_current_context

    from crm.airflow_record import ERROR_XCOM_KEY

    try:
        context = get_current_context()
    except Exception:  # called outside a task (a unit test): nothing to record into
        return
    context["ti"].xcom_push(ERROR_XCOM_KEY, {"kind": kind, "message": str(exc)})


def connection_url(conn_id: str) -> str | None:
    """The URI of an Airflow connection (metadata database, secrets backend or
    AIRFLOW_CONN_* variable), or None when it is not defined. Call inside a task."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).get_uri()
    except AirflowNotFoundException:
        return None
