"""What several commands share: today's date, the as-of argument, the --json option."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from crm.errors import UsageError


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def as_of_arg(value: str):
    """An as-of date given on the command line: a date a run may use, or a usage error."""
    from crm.errors import BadInputError
    from crm.runs import check_as_of, parse_date

    try:
        return check_as_of(parse_date(value))
    except BadInputError as exc:
        raise UsageError(str(exc)) from exc


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print exactly one JSON document on stdout (text for people goes to stderr)",
    )
