"""The CRM database connector against the real PostgreSQL server (database `test`, a schema
per test) and a real DuckDB warehouse: full load, incremental loads, chunks, retries, late
commits, an unreachable server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date

import pytest

from crm.errors import BadInputError, RetryableError
from datagen.generator import GenerationSpec, generate
from datagen.source_db import write_source_db
from ingest.contract import LOAD_ORDER
from ingest.load import load_entity
from tests.conftest import PG_TEST_URL, REPO
from tests.conftest import pg_query as sql
from tests.conftest import warehouse_query as query

URL = PG_TEST_URL


@pytest.fixture
def source(crm_home, monkeypatch):
    """A 200-customer operational CRM in its own schema, and the settings to read it."""
    schema = f"crm_source_test_{uuid.uuid4().hex[:8]}"
    crm = generate(GenerationSpec(customers=200, seed=5, end=date(2026, 6, 1)))
    counts = write_source_db(crm.tables, URL, schema)
    monkeypatch.setenv("CRM_SOURCE_SCHEMA", schema)
    monkeypatch.setenv("CRM_SOURCE_OVERLAP_MINUTES", "30")
    yield {"schema": schema, "counts": counts, "home": crm_home}
    sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def load(entity: str, run_id: str = "run-1"):
    return load_entity(entity, run_id=run_id, source_url=URL)


def raw_versions(home, entity: str, key: str) -> list[tuple]:
    return query(home, f"SELECT {key}, count(*) FROM raw.{entity} GROUP BY ALL HAVING count(*) > 1")


def test_a_first_load_reads_every_row_of_every_table(source):
    home, schema = source["home"], source["schema"]
    for entity in LOAD_ORDER:
        result = load(entity)
        expected = source["counts"][entity]
        assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (
            expected,
            expected,
            0,
        ), entity
        assert result.raw_rows_total == expected
    # the watermark is the newest updated_at read, per entity
    newest = sql(f'SELECT max(updated_at) FROM "{schema}".transactions')[0][0]
    assert query(
        home,
        "SELECT max(source_watermark) FROM audit.load_batches WHERE entity = 'transactions'",
    ) == [(newest,)]
    assert query(
        home, "SELECT DISTINCT file_format FROM audit.load_batches WHERE rows_read > 0"
    ) == [("postgres",)]


def test_an_incremental_load_reads_inserts_and_updates_once(source):
    home, schema = source["home"], source["schema"]
    for entity in ("customers", "products", "transactions"):
        load(entity)
    before = query(home, "SELECT count(*) FROM raw.transactions")[0][0]
    customer = sql(f'SELECT min(customer_id) FROM "{schema}".customers')[0][0]
    sql(
        f'UPDATE "{schema}".customers SET occupation = %s WHERE customer_id = %s',
        ("astronaut", customer),
    )
    sql(
        f'INSERT INTO "{schema}".transactions (transaction_id, customer_id, product_id, '
        "occurred_at, amount, status) SELECT 'NEW-' || i, %s, 'P010', "
        "(now() AT TIME ZONE 'utc') - interval '2 hours', 25.50, 'completed' "
        "FROM generate_series(1, 40) AS i",
        (customer,),
    )
    customers = load("customers", "run-2")
    transactions = load("transactions", "run-2")
    assert (customers.rows_loaded, transactions.rows_loaded) == (1, 40)
    assert transactions.raw_rows_total == before + 40
    # the overlap read some rows again; none of them is loaded twice
    assert raw_versions(home, "transactions", "transaction_id") == []
    latest = query(
        home,
        f"SELECT occupation FROM raw.customers WHERE customer_id = '{customer}' "
        "ORDER BY updated_at DESC LIMIT 1",
    )
    assert latest == [("astronaut",)]
    # a third read with nothing new loads nothing
    assert load("transactions", "run-3").rows_loaded == 0


def test_a_row_updated_twice_between_runs_arrives_in_its_last_state(source):
    home, schema = source["home"], source["schema"]
    load("customers")
    customer = sql(f'SELECT max(customer_id) FROM "{schema}".customers')[0][0]
    for occupation in ("pilot", "sailor"):
        sql(
            f'UPDATE "{schema}".customers SET occupation = %s WHERE customer_id = %s',
            (occupation, customer),
        )
    assert load("customers", "run-2").rows_loaded == 1
    versions = query(
        home,
        f"SELECT occupation FROM raw.customers WHERE customer_id = '{customer}' "
        "ORDER BY updated_at",
    )
    assert len(versions) == 2 and versions[-1] == ("sailor",)


def test_a_load_killed_half_way_and_retried_leaves_no_duplicates_and_no_gaps(source, monkeypatch):
    """Chunks of 1,000 rows; the process dies (SIGKILL) inside the third chunk's
    transaction. The two chunks before it stay, with their watermark; the retry reads on
    from there and raw ends up holding every source row exactly once."""
    home, schema = source["home"], source["schema"]
    load("customers")
    load("products")
    monkeypatch.setenv("CRM_SOURCE_CHUNK_ROWS", "1000")
    code = (
        "import sys\n"
        "from ingest.load import load_entity\n"
        "from crm import faults\n"
        "calls = []\n"
        "real = faults.checkpoint\n"
        "def third(name):\n"
        "    calls.append(name)\n"
        "    if len(calls) == 3:\n"
        "        real(name)\n"
        "faults.checkpoint = third\n"
        f"load_entity('transactions', run_id='run-1', source_url={URL!r})\n"
    )
    env = {**os.environ, "CRM_FAULT_POINT": "ingest.batches.before_commit"}
    killed = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=False)
    assert killed.returncode == -9
    committed = query(home, "SELECT count(*) FROM raw.transactions")[0][0]
    assert committed == 2_000
    retry = load("transactions", "run-1")
    expected = source["counts"]["transactions"]
    assert retry.raw_rows_total == expected
    assert raw_versions(home, "transactions", "transaction_id") == []
    ids = sql(f'SELECT transaction_id FROM "{schema}".transactions')
    assert sorted(query(home, "SELECT transaction_id FROM raw.transactions")) == sorted(ids)


def test_chunks_page_through_rows_sharing_one_updated_at(source, monkeypatch):
    """A bulk update gives thousands of rows the same updated_at: paging by (updated_at,
    key) must still read each once."""
    home, schema = source["home"], source["schema"]
    load("customers")
    load("products")
    load("transactions")
    sql(f"UPDATE \"{schema}\".transactions SET status = 'refunded' WHERE amount < 20")
    changed = sql(f'SELECT count(*) FROM "{schema}".transactions WHERE amount < 20')[0][0]
    assert changed > 700
    monkeypatch.setenv("CRM_SOURCE_CHUNK_ROWS", "300")
    result = load("transactions", "run-2")
    assert result.rows_loaded == changed
    assert result.files_loaded >= changed // 300
    rows, ids = query(
        home,
        "SELECT count(*), count(DISTINCT transaction_id) FROM raw.transactions WHERE _batch_id "
        "IN (SELECT batch_id FROM audit.load_batches WHERE run_id = 'run-2')",
    )[0]
    assert rows == ids == changed


def test_a_row_committed_late_with_an_older_updated_at_is_caught_by_the_overlap(source):
    home, schema = source["home"], source["schema"]
    load("customers")
    newest = sql(f'SELECT max(updated_at) FROM "{schema}".customers')[0][0]
    sql(
        f'INSERT INTO "{schema}".customers (customer_id, created_at, updated_at, occupation) '
        "VALUES ('LATE-1', %s - interval '10 minutes', %s - interval '10 minutes', 'clerk')",
        (newest, newest),
    )
    assert load("customers", "run-2").rows_loaded == 1
    assert query(home, "SELECT count(*) FROM raw.customers WHERE customer_id = 'LATE-1'") == [(1,)]


def test_a_source_that_cannot_be_reached_is_a_retryable_error_and_nothing_is_written(
    crm_home,
):
    with pytest.raises(RetryableError, match="cannot reach the CRM source database"):
        load_entity("customers", run_id="run-1", source_url="postgresql://postgres@127.0.0.1:1/x")
    assert not (crm_home / "warehouse" / "crm.duckdb").exists() or query(
        crm_home, "SELECT count(*) FROM raw.customers"
    ) == [(0,)]


def test_a_required_table_missing_from_the_source_is_bad_input(crm_home, monkeypatch):
    monkeypatch.setenv("CRM_SOURCE_SCHEMA", "no_such_schema")
    with pytest.raises(BadInputError, match="no table no_such_schema.customers"):
        load_entity("customers", run_id="run-1", source_url=URL)


def test_reading_an_unchanged_table_again_keeps_every_row(source):
    """Products all share one updated_at (one insert): every read returns the same chunk,
    which must neither load twice nor replace the rows it already has."""
    home = source["home"]
    expected = source["counts"]["products"]
    for run in ("run-1", "run-2", "run-3"):
        result = load("products", run)
        assert result.raw_rows_total == expected, run
    assert result.rows_loaded == 0 and result.rows_unchanged == expected
    assert result.files_loaded == 0  # no new batch for nothing new
    assert query(home, "SELECT count(DISTINCT product_id) FROM raw.products") == [(expected,)]


def test_a_value_that_changes_back_is_a_change(source):
    home, schema = source["home"], source["schema"]
    load("products")
    product, price = sql(
        f'SELECT product_id, list_price FROM "{schema}".products ORDER BY 1 LIMIT 1'
    )[0]
    for new_price, run in ((price + 1, "run-2"), (price, "run-3")):
        sql(
            f'UPDATE "{schema}".products SET list_price = %s WHERE product_id = %s',
            (new_price, product),
        )
        assert load("products", run).rows_loaded == 1, run
    latest = query(
        home,
        f"SELECT list_price FROM raw.products WHERE product_id = '{product}' "
        "ORDER BY _loaded_at DESC LIMIT 1",
    )
    assert latest == [(price,)]


def test_a_row_dated_in_the_future_waits_and_does_not_hold_back_later_changes(source):
    home, schema = source["home"], source["schema"]
    load("customers")
    sql(
        f'INSERT INTO "{schema}".customers (customer_id, created_at, updated_at) '
        "VALUES ('FUTURE-1', '2099-01-01', '2099-01-01')"
    )
    customer = sql(f'SELECT min(customer_id) FROM "{schema}".customers')[0][0]
    sql(
        f"UPDATE \"{schema}\".customers SET occupation = 'pilot' WHERE customer_id = %s",
        (customer,),
    )
    assert load("customers", "run-2").rows_loaded == 1  # the update, not the 2099 row
    sql(
        f"UPDATE \"{schema}\".customers SET occupation = 'sailor' WHERE customer_id = %s",
        (customer,),
    )
    assert load("customers", "run-3").rows_loaded == 1
    assert query(home, "SELECT count(*) FROM raw.customers WHERE customer_id = 'FUTURE-1'") == [
        (0,)
    ]


def test_a_purchase_read_before_its_new_customer_loads_once_the_customer_has(source):
    home, schema = source["home"], source["schema"]
    for entity in ("customers", "products", "transactions"):
        load(entity)
    sql(
        f'INSERT INTO "{schema}".customers (customer_id, created_at) '
        "VALUES ('NEW-C', (now() AT TIME ZONE 'utc') - interval '1 hour')"
    )
    sql(
        f'INSERT INTO "{schema}".transactions (transaction_id, customer_id, occurred_at, '
        "amount) VALUES ('NEW-T', 'NEW-C', (now() AT TIME ZONE 'utc') - interval '1 hour', 9)"
    )
    early = load("transactions", "run-2")  # read before the customers of this run
    assert early.quarantined_by_reason == {"unknown_reference": 1}
    assert load("transactions", "run-2b").rows_quarantined == 0  # not quarantined twice
    assert query(home, "SELECT count(*) FROM audit.quarantine WHERE raw_row LIKE '%NEW-T%'") == [
        (1,)
    ]
    load("customers", "run-3")
    again = load("transactions", "run-3")
    assert again.rows_loaded == 1
    assert query(home, "SELECT count(*) FROM raw.transactions WHERE transaction_id = 'NEW-T'") == [
        (1,)
    ]


def test_the_generator_replaces_only_a_schema_it_made():
    from crm.errors import CrmError

    schema = f"crm_not_generated_{uuid.uuid4().hex[:8]}"
    sql(f'CREATE SCHEMA "{schema}"')
    sql(f'CREATE TABLE "{schema}".precious (x int)')
    try:
        with pytest.raises(CrmError, match="was not made by crm generate"):
            write_source_db({}, URL, schema)
        assert sql(f'SELECT count(*) FROM "{schema}".precious') == [(0,)]
    finally:
        sql(f'DROP SCHEMA "{schema}" CASCADE')
