"""Small adapters between stage functions and Airflow: what every DAG of the project
declares the same way (cheap to import at parse time), and helpers for task bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from crm.errors import BadInputError

#: Every task writes the DuckDB warehouse, so each holds the one-slot writer pool; retries
#: cover a lock held by another process (WarehouseLockedError is retryable).
WRITER_DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "pool": "warehouse_writer",
}


def schedule(variable: str, default: str) -> str | None:
    """A DAG's schedule: the cron expression in `variable` when set ('none' for manual
    runs only), else `default`. Read at parse time: change it without editing the DAG."""
    import os

    value = os.environ.get(variable, "").strip()
    if value.lower() == "none":
        return None
    return value or default


def as_of_param(description: str):
    """The `as_of` run parameter (YYYY-MM-DD or empty) every DAG takes."""
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date", description=description)


@contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Bad input cannot be fixed by a retry: fail the task at once with the message."""
    try:
        yield
    except BadInputError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def connection_url(conn_id: str) -> str | None:
    """The URI of an Airflow connection (metadata database, secrets backend or
    AIRFLOW_CONN_* variable), or None when it is not defined. Call inside a task."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id).get_uri()
    except AirflowNotFoundException:
        return None
