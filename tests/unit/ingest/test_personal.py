"""Contact fields are parsed at ingest and the e-mail is hashed with a secret key (issue 14,
defect 5): a masked value can only come from one address or one number."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ingest.load import load_entity
from tests.conftest import warehouse_query as query
from tests.unit.ingest.test_load import write

CONTACTS = (
    "customer_id,created_at,email,phone\n"
    "C1,2024-01-01, Ann.Lee@Example.com ,+1 (555) 010-1234\n"
    'C2,2024-01-01,"a@x.com; b@y.com",123\n'
    "C3,2024-01-01,c@x.com call me after 5,555 1234 x12\n"
    "C4,2024-01-01,,\n"
)


def _hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_a_contact_field_that_is_not_one_address_or_number_loads_as_null(crm_home):
    write(crm_home, "customers", "c.csv", CONTACTS)
    result = load_entity("customers")
    # nothing valid is lost: every customer loads, only the unusable values are dropped
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 4, 0)
    assert result.rows_with_nulled_values == 2
    assert query(crm_home, "SELECT customer_id, email, phone FROM raw.customers ORDER BY 1") == [
        ("C1", "Ann.Lee@Example.com", "+15550101234"),
        ("C2", None, None),
        ("C3", None, None),
        ("C4", None, None),
    ]
    notes = query(crm_home, "SELECT row_number, reason FROM audit.nulled_values ORDER BY 1")
    assert [n[0] for n in notes] == [2, 3]
    assert "email is not one e-mail address" in notes[0][1]
    assert "phone is not one phone number" in notes[0][1]
    # the reason describes the value without showing it
    assert not any(part in r for _, r in notes for part in ("b@y.com", "x.com", "123"))


def test_the_email_hash_is_keyed_with_the_homes_secret(crm_home):
    write(crm_home, "customers", "c.csv", CONTACTS)
    load_entity("customers")
    key_file = crm_home / "secrets" / "personal_data.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_file.read_text().strip().encode()
    stored = query(crm_home, "SELECT email_hash FROM raw.customers WHERE customer_id = 'C1'")[0][0]
    assert stored == _hmac(key, "ann.lee@example.com")
    # a dictionary of addresses hashed with plain SHA-256 finds nothing
    assert stored != hashlib.sha256(b"ann.lee@example.com").hexdigest()
    assert query(crm_home, "SELECT count(email_hash) FROM raw.customers")[0][0] == 1


@pytest.mark.parametrize("key", ["a-key-shared-by-two-homes"])
def test_the_key_setting_gives_every_home_the_same_hashes(crm_home, monkeypatch, key):
    monkeypatch.setenv("CRM_PERSONAL_DATA_KEY", key)
    write(crm_home, "customers", "c.csv", CONTACTS)
    load_entity("customers")
    stored = query(crm_home, "SELECT email_hash FROM raw.customers WHERE customer_id = 'C1'")[0][0]
    assert stored == _hmac(key.encode(), "ann.lee@example.com")
    assert not (crm_home / "secrets").exists()


def test_an_email_hash_column_in_a_file_is_not_read(crm_home):
    write(
        crm_home,
        "customers",
        "c.csv",
        "customer_id,created_at,email,email_hash\nC1,2024-01-01,a@x.com,forged\n",
    )
    result = load_entity("customers")
    assert result.ignored_columns == ["email_hash"]
    assert query(crm_home, "SELECT email_hash FROM raw.customers")[0][0] != "forged"
