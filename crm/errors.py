"""The two kinds of failure a task can report, so Airflow knows whether to retry."""


class CrmError(Exception):
    """Base class for errors the platform raises on purpose, with a message for a person."""


class BadInputError(CrmError):
    """The input itself is wrong (unreadable file, missing column): retrying cannot help."""


class RetryableError(CrmError):
    """A passing condition (a lock held by another process): the same task may succeed later."""


class WarehouseLockedError(RetryableError):
    """Another process holds the DuckDB write lock on the warehouse file."""
