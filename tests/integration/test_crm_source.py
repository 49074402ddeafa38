"""`crm run`, unchanged, against an operational CRM in the real PostgreSQL server: the same
CRM read from the database and from landing files gives the same marts; a second run reads
only what changed there, and soft deletes, updates and inserts reach staging."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from tests.conftest import PG_TEST_URL, run_crm
from tests.conftest import pg_query as sql
from tests.conftest import warehouse_query as query
from tests.integration.conftest import AS_OF, END, built_once

pytestmark = [pytest.mark.integration, pytest.mark.shared_home("crm_source")]

URL = PG_TEST_URL
LATER = AS_OF + timedelta(days=7)


@pytest.fixture(scope="session")
def crm_source(tmp_path_factory):
    """Two homes from the same generated CRM (2,000 customers, seed 8): `files` runs on
    landing files, `database` on the CRM database; then the database changes and
    `database` runs again for a later date."""
    result = built_once(tmp_path_factory, "crm_source", _build)
    result["files"] = result["home"].parent / "files"
    result["database"] = result["home"].parent / "database"
    return result


def _build(home) -> dict:
    schema = f"crm_source_it_{uuid.uuid4().hex[:8]}"
    # one personal-data key for both homes: the e-mail hashes of the two must match
    key = {"CRM_PERSONAL_DATA_KEY": "one-key-for-both-homes"}
    env = {"CRM_SOURCE_URL": URL, "CRM_SOURCE_SCHEMA": schema, **key}
    files, database = home.parent / "files", home.parent / "database"
    generate = ("generate", "--customers", "2000", "--seed", "8", "--end", END.isoformat())
    run_crm(*generate, "--quiet", home=files)
    run_crm(*generate, "--quiet", "--target", "postgres", home=database, env=env)
    run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=files, env=key)
    first = run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=database, env=env)
    source_rows = {
        t: sql(f'SELECT count(*) FROM "{schema}"."{t}"')[0][0]
        for t in ("customers", "transactions", "interactions", "opportunity_stage_history")
    }
    # the CRM changes: one customer deleted, one renamed, two purchases added
    deleted, updated = [
        r[0] for r in sql(f'SELECT customer_id FROM "{schema}".customers ORDER BY 1 LIMIT 2')
    ]
    sql(
        f'UPDATE "{schema}".customers SET deleted_at = %s, updated_at = %s WHERE customer_id = %s',
        (f"{AS_OF + timedelta(days=2)} 09:00", f"{AS_OF + timedelta(days=2)} 09:00", deleted),
    )
    sql(
        f"UPDATE \"{schema}\".customers SET occupation = 'astronaut', updated_at = %s "
        "WHERE customer_id = %s",
        (f"{AS_OF + timedelta(days=3)} 10:00", updated),
    )
    sql(
        f'INSERT INTO "{schema}".transactions (transaction_id, customer_id, product_id, '
        "occurred_at, amount, status, updated_at) VALUES "
        "('NEW-1', %s, 'P010', %s, 40.00, 'completed', %s), "
        "('NEW-2', %s, 'P010', %s, 60.00, 'completed', %s)",
        (updated, f"{LATER} 08:00", f"{LATER} 08:00") * 2,
    )
    # and a purchase and a contact deleted: the incremental facts must drop them
    gone_transaction = sql(
        f'SELECT min(transaction_id) FROM "{schema}".transactions WHERE transaction_id NOT LIKE %s',
        ("NEW-%",),
    )[0][0]
    gone_interaction = sql(f'SELECT min(interaction_id) FROM "{schema}".interactions')[0][0]
    for table, key, value in (
        ("transactions", "transaction_id", gone_transaction),
        ("interactions", "interaction_id", gone_interaction),
    ):
        sql(
            f'UPDATE "{schema}".{table} SET deleted_at = %s, updated_at = %s WHERE {key} = %s',
            (f"{AS_OF + timedelta(days=1)} 12:00", f"{AS_OF + timedelta(days=1)} 12:00", value),
        )
    # the second run also builds the marts on a PostgreSQL warehouse (CRM_POSTGRES_MARTS)
    warehouse = f"crm_marts_{uuid.uuid4().hex[:8]}"
    server = URL.rsplit("/", 1)[0]
    admin = f"{server}/postgres"
    sql(f'CREATE DATABASE "{warehouse}"', url=admin, autocommit=True)
    try:
        second = run_crm(
            "run", "--as-of", LATER.isoformat(), "--no-ml", home=database,
            env={**env, "CRM_POSTGRES_MARTS": "1", "CRM_PG_DATABASE": warehouse},
        )  # fmt: skip
        pg_marts = {
            table: sql(f"SELECT count(*) FROM marts.{table}", url=f"{server}/{warehouse}")[0][0]
            for table in ("dim_customers", "fct_transactions", "fct_campaign_performance")
        }
    finally:
        sql(f'DROP DATABASE IF EXISTS "{warehouse}" WITH (FORCE)', url=admin, autocommit=True)
    sql(f'DROP SCHEMA "{schema}" CASCADE')
    return {
        "first_stdout": first.stdout,
        "second_stdout": second.stdout,
        "source_rows": source_rows,
        "deleted": deleted,
        "updated": updated,
        "gone_transaction": gone_transaction,
        "gone_interaction": gone_interaction,
        "pg_marts": pg_marts,
    }


def last_summary(home) -> dict:
    return json.loads((home / "reports" / "last_run.json").read_text())


def test_the_same_crm_from_the_database_and_from_files_gives_the_same_marts(crm_source):
    from_files, from_db = [
        query(crm_source[h], "SELECT summary FROM audit.pipeline_runs ORDER BY finished_at")[0][0]
        for h in ("files", "database")
    ]
    marts_files = json.loads(from_files)["marts"]
    marts_db = json.loads(from_db)["marts"]
    assert marts_files.keys() == marts_db.keys() and len(marts_files) >= 12
    assert marts_db == marts_files
    # and it did come from the database, every row of it
    ingest = json.loads(from_db)["ingest"]
    for table, rows in crm_source["source_rows"].items():
        assert ingest[table]["rows_loaded"] == ingest[table]["raw_rows_total"] == rows
    formats = query(crm_source["database"], "SELECT DISTINCT file_format FROM audit.load_batches")
    assert formats == [("postgres",)]


def test_a_later_run_reads_only_the_changes_and_staging_applies_them(crm_source):
    home = crm_source["database"]
    summary = last_summary(home)
    assert summary["as_of"] == LATER.isoformat()
    loaded = {e: r["rows_loaded"] for e, r in summary["ingest"].items()}
    assert loaded["customers"] == 2 and loaded["transactions"] == 3
    assert loaded["interactions"] == 1 and sum(loaded.values()) == 6
    # nothing already loaded went missing: raw only grew, by what was loaded
    first = json.loads(
        query(home, "SELECT summary FROM audit.pipeline_runs ORDER BY finished_at")[0][0]
    )["ingest"]
    for entity, r in summary["ingest"].items():
        assert r["raw_rows_total"] == first[entity]["raw_rows_total"] + loaded[entity], entity
    assert "already loaded and are not loaded twice" in crm_source["second_stdout"]
    deleted, updated = crm_source["deleted"], crm_source["updated"]
    assert query(
        home, f"SELECT count(*) FROM staging.stg_crm__customers WHERE customer_id = '{deleted}'"
    ) == [(0,)]
    assert query(
        home, f"SELECT occupation FROM staging.stg_crm__customers WHERE customer_id = '{updated}'"
    ) == [("astronaut",)]
    assert query(
        home,
        "SELECT count(*) FROM staging.stg_crm__transactions WHERE transaction_id LIKE 'NEW-%'",
    ) == [(2,)]
    # a deleted customer is gone from the customer 360 too, deleted facts from the
    # incremental fact tables
    assert query(
        home, f"SELECT count(*) FROM marts.dim_customers WHERE customer_id = '{deleted}'"
    ) == [(0,)]
    gone_t, gone_i = crm_source["gone_transaction"], crm_source["gone_interaction"]
    assert query(
        home, f"SELECT count(*) FROM marts.fct_transactions WHERE transaction_id = '{gone_t}'"
    ) == [(0,)]
    assert query(
        home, f"SELECT count(*) FROM marts.fct_interactions WHERE interaction_id = '{gone_i}'"
    ) == [(0,)]
    # the other facts stay: the daily run did not rebuild, and lost nothing
    assert query(home, "SELECT count(*) FROM marts.fct_transactions") == query(
        home, "SELECT count(*) FROM staging.stg_crm__transactions"
    )


def test_a_run_can_build_the_marts_on_postgresql_too(crm_source):
    """CRM_POSTGRES_MARTS=1: the pipeline DAG's publish_postgres_marts task builds the same
    marts on the PostgreSQL warehouse, after the DuckDB ones."""
    home = crm_source["database"]
    summary = last_summary(home)
    assert summary["postgres_marts"]["dbt"]["tests_failed"] == 0
    assert "postgres_marts" in summary["stages"]
    assert "PostgreSQL marts:" in crm_source["second_stdout"]
    for table, rows in crm_source["pg_marts"].items():
        assert query(home, f"SELECT count(*) FROM marts.{table}") == [(rows,)], table
    # without the setting the task does nothing
    first = json.loads(
        query(home, "SELECT summary FROM audit.pipeline_runs ORDER BY finished_at")[0][0]
    )
    assert first["postgres_marts"] == {"skipped": "CRM_POSTGRES_MARTS is not set"}
