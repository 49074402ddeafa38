"""Quoting for SQL built from names and values the platform does not control (file paths,
column headers, mapping entries, batch ids)."""


def quote_identifier(name: str) -> str:
    """`name` as a double-quoted SQL identifier, whatever characters it holds."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """`value` as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
