"""Small adapters between stage functions and Airflow, used inside task bodies only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crm.errors import BadInputError


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
