"""The kinds of failure the platform reports on purpose: Airflow retries only the ones a
retry can fix, and `crm` exits with a code per kind (`exit_code`), so a script can tell a
failed run from bad input or a service that is down."""


class CrmError(Exception):
    """Base class for errors the platform raises on purpose, with a message for a person.
    As such (not one of the kinds below) it means the run failed."""

    exit_code = 1


class UsageError(CrmError):
    """The command was asked for something it cannot do as given (a missing argument, a
    date in the future, a home that would be overwritten): nothing ran."""

    exit_code = 2


class BadInputError(CrmError):
    """The input itself is wrong (unreadable file, missing column): retrying cannot help."""

    exit_code = 3


class RetryableError(CrmError):
    """A passing condition (a lock held by another process, a server that does not answer):
    the same task may succeed later. For `crm`, an environment problem."""

    exit_code = 4


class WarehouseLockedError(RetryableError):
    """Another process holds the DuckDB write lock on the warehouse file."""


class SettingsError(BadInputError):
    """A setting in the environment or `.env` has a value of the wrong form: a task fails at
    once (a retry reads the same value), the command line counts it a usage error."""

    exit_code = 2
