"""Contact fields and the keyed hash of personal data, applied where rows enter raw.

A contact field holds one e-mail address or one phone number. Exports hold other things
there too: two addresses ("a@x.com; b@y.com"), a note after the address, an extension
written out, three digits. Masking such a value keeps part of it readable (the second
address survives `j***@...`), so the value is parsed here, at ingest, and only a parsed
value reaches raw; anything else loads as NULL with the reason in `audit.nulled_values`,
and the rest of the row loads as usual (a customer is not lost for a bad phone number).

The address is also hashed here, with HMAC-SHA256 and a secret key from the settings
(`CRM_PERSONAL_DATA_KEY`, or a key made once per CRM_HOME): a plain SHA-256 of an address
is reversed by hashing a list of addresses. The key stays in this process; it never
appears in SQL text, dbt's artifacts or a log.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pyarrow as pa

#: One address: no spaces, separators or brackets; a domain of two labels at least.
_EMAIL = r"""[^\s@;,<>()\[\]"]+@[^\s@;,<>()\[\]".]+(\.[^\s@;,<>()\[\]".]+)+"""
#: One number once spaces, dots, dashes, slashes and brackets are removed: E.164 allows
#: 15 digits; fewer than 7 is a fragment, not a number.
_PHONE = r"\+?[0-9]{7,15}"
_PHONE_SEPARATORS = r"[\s().\-/]"

KEYED_HASH_FUNCTION = "crm_keyed_hash"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parsed_contact_sql(kind: str, text: str) -> str:
    """SQL: the parsed contact value of `text` (trimmed SQL text), NULL when it is not one
    address or number. Phone numbers keep their digits and a leading +."""
    if kind == "email":
        return f"CASE WHEN regexp_full_match({text}, {_lit(_EMAIL)}) THEN {text} END"
    if kind == "phone":
        digits = f"regexp_replace({text}, {_lit(_PHONE_SEPARATORS)}, '', 'g')"
        return f"CASE WHEN regexp_full_match({digits}, {_lit(_PHONE)}) THEN {digits} END"
    raise ValueError(f"unknown contact kind {kind!r}")


def contact_problem_sql(kind: str, name: str, text: str, parsed: str) -> str:
    """SQL: why a present value was set to NULL (without the value: it is personal)."""
    what = "one e-mail address" if kind == "email" else "one phone number of 7 to 15 digits"
    return (
        f"CASE WHEN {text} IS NOT NULL AND {parsed} IS NULL THEN "
        f"'{name} is not {what} (' || length({text}) || ' characters); loaded as NULL' END"
    )


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the trimmed, lower-cased value, hex."""
    return hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()


def register_keyed_hash(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """Make `crm_keyed_hash(text)` callable on this connection (vectorised over Arrow)."""

    def _hash(values: pa.Array) -> pa.Array:
        return pa.array(
            [None if v is None else keyed_hash(key, v) for v in values.to_pylist()], pa.string()
        )

    try:
        con.remove_function(KEYED_HASH_FUNCTION)
    except (duckdb.InvalidInputException, duckdb.CatalogException):
        pass  # not registered on this connection yet
    con.create_function(
        KEYED_HASH_FUNCTION,
        _hash,
        [duckdb.sqltypes.VARCHAR],
        duckdb.sqltypes.VARCHAR,
        type="arrow",
        side_effects=False,
    )
