"""The whole pipeline through the real `crm` CLI, real Airflow (`dags test`), dbt and DuckDB.

One dirty demo CRM is generated and run once for the module; tests that change state work
on a copy of that home so they do not depend on each other's order.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.contract import ENTITIES as CONTRACT_ENTITIES
from tests.conftest import REPO
from tests.conftest import warehouse_query as query
from tests.integration.conftest import AS_OF, EARLIER

pytestmark = [pytest.mark.integration, pytest.mark.shared_home("pipeline")]


def scalar(home: Path, sql: str):
    return query(home, sql)[0][0]


#: Every entity of the source contract: the demo writes each one.
ENTITIES = tuple(CONTRACT_ENTITIES)


def test_the_run_succeeds_in_airflow_and_prints_a_summary(pipeline):
    out = pipeline["stdout"]
    assert "success" in out
    for entity in ENTITIES:
        assert entity in out
    # every model but the target-customer features (models/features/) and what only they
    # use (tagged ml), which the ML DAGs build for the dates they need
    models = len(
        [
            p
            for p in (REPO / "dbt_project" / "models").rglob("*.sql")
            if p.parent.name != "features" and "tags=['ml']" not in p.read_text()
        ]
    )
    assert f"dbt: {models} models built" in out and "0 failed" in out
    assert "time per stage: ingest" in out
    db = sqlite3.connect(pipeline["home"] / "airflow" / "airflow.db")
    states = db.execute("SELECT state FROM dag_run WHERE dag_id = 'crm_pipeline'").fetchall()
    assert states == [("success",)]
    tasks = dict(
        db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'crm_pipeline'"
        ).fetchall()
    )
    assert tasks.pop("record_failure") == "skipped"  # it runs only when something failed
    # start, an ingest per entity, landing checkpoint, raw_loaded, dbt phase 1, CLV, dbt
    # phase 2, BI snapshot, PostgreSQL marts (a no-op unless CRM_POSTGRES_MARTS is set),
    # docs, finish
    assert set(tasks.values()) == {"success"} and len(tasks) == len(ENTITIES) + 10
    # the landing checkpoint ran and passed: the dirty rows were quarantined at ingestion
    assert "landing checkpoint:" in out and "0 critical" in out
    assert scalar(
        pipeline["home"],
        "SELECT count(DISTINCT suite) FILTER (WHERE suite LIKE 'landing.%') "
        "FROM audit.validation_results",
    ) == 2 * len(ENTITIES)
    assert scalar(pipeline["home"], "SELECT status FROM audit.pipeline_runs") == "success"


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_valid_row_arrives_in_staging(pipeline, entity):
    manifest = pipeline["manifest"]
    expected = manifest["dirty"].get(entity, {}).get("clean_rows", manifest["rows"][entity])
    assert scalar(pipeline["home"], f"SELECT count(*) FROM staging.stg_crm__{entity}") == expected


def _dirty_cases():
    from datagen.dirty import DIRTY_CLASSES

    return sorted(
        {(e, code) for e, classes in DIRTY_CLASSES.items() for _, code in classes if code}
    )


@pytest.mark.parametrize(("entity", "reason"), _dirty_cases())
def test_each_class_of_bad_row_is_quarantined_with_its_reason(pipeline, entity, reason):
    expected = pipeline["manifest"]["dirty"][entity]["quarantine"][reason]
    got = scalar(
        pipeline["home"],
        f"SELECT count(*) FROM audit.quarantine "
        f"WHERE entity = '{entity}' AND reason_code = '{reason}'",
    )
    assert got == expected


def test_loaded_plus_quarantined_equals_read_for_every_entity(pipeline):
    manifest = pipeline["manifest"]
    rows = query(
        pipeline["home"],
        "SELECT entity, sum(rows_read), sum(rows_loaded), "
        "sum(rows_quarantined) FROM audit.load_batches GROUP BY 1",
    )
    assert len(rows) == len(ENTITIES)
    for entity, read, loaded, quarantined in rows:
        assert read == manifest["rows"][entity] + sum(
            manifest["dirty"].get(entity, {}).get("quarantine", {}).values()
        ) + manifest["dirty"].get(entity, {}).get("late_updates", 0)
        assert loaded + quarantined == read


def test_later_updates_of_a_key_win_in_staging(pipeline):
    late = pipeline["manifest"]["dirty"]["customers"]["late_updates"]
    home = pipeline["home"]
    assert (
        scalar(home, "SELECT count(*) FROM staging.stg_crm__customers WHERE city = 'Relocated'")
        == late
    )
    assert scalar(home, "SELECT count(*) FROM raw.customers WHERE city = 'Relocated'") == late


def test_running_the_same_date_again_changes_nothing(pipeline, rerun):
    home = rerun["home"]
    first, again, _ = rerun["runs"]
    assert (first["as_of"], again["as_of"]) == (AS_OF.isoformat(), AS_OF.isoformat())
    months = len(pipeline["manifest"]["files"]["transactions"])
    assert again["ingest"]["transactions"]["files_skipped"] == months > 20
    assert all(r["rows_read"] == 0 for r in again["ingest"].values())
    assert f"0/{months}" in rerun["again_stdout"]
    assert {e: scalar(home, f"SELECT count(*) FROM raw.{e}") for e in ENTITIES} == {
        e: rerun["raw_before"][e] for e in ENTITIES
    }
    # every mart identical, row for row (fingerprints: rows and a checksum per mart)
    assert len(first["marts"]) >= 10 and again["marts"] == first["marts"]
    assert "reused" in again["clv"]  # the CLV fit of the same purchases was not redone
    assert scalar(home, "SELECT count(*) FROM audit.quarantine") == sum(
        sum(v["quarantine"].values()) for v in pipeline["manifest"]["dirty"].values()
    )


def test_a_run_for_an_earlier_date_sees_only_what_was_known_then(rerun):
    home = rerun["home"]  # its last run: `crm backfill` of EARLIER, after AS_OF
    assert "Backfill finished: 1 date(s)" in rerun["backfill_stdout"]
    assert rerun["runs"][-1]["as_of"] == EARLIER.isoformat()
    assert rerun["runs"][-1]["marts"] != rerun["runs"][0]["marts"]
    as_of = EARLIER
    cutoff = f"TIMESTAMP '{as_of + timedelta(days=1)} 00:00:00'"
    checks = {
        "transactions": ("occurred_at", "transaction_id"),
        "interactions": ("occurred_at", "interaction_id"),
        "contracts": ("signed_at", "contract_id"),
        "customers": ("created_at", "customer_id"),
        "opportunity_stage_history": ("entered_at", "(opportunity_id, stage, entered_at)"),
    }
    for table, (column, key) in checks.items():
        assert scalar(home, f"SELECT max({column}) < {cutoff} FROM staging.stg_crm__{table}"), table
        known = scalar(
            home, f"SELECT count(DISTINCT {key}) FROM raw.{table} WHERE {column} < {cutoff}"
        )
        assert scalar(home, f"SELECT count(*) FROM staging.stg_crm__{table}") == known, table
    # refunds and closings recorded after the date are rolled back
    assert (
        scalar(
            home,
            f"SELECT count(*) FROM staging.stg_crm__transactions "
            f"WHERE status = 'refunded' AND updated_at >= {cutoff}",
        )
        == 0
    )
    open_then = scalar(
        home,
        f"SELECT count(DISTINCT opportunity_id) FROM raw.opportunities WHERE created_at < {cutoff} "
        f"AND (closed_at IS NULL OR closed_at >= {cutoff})",
    )
    assert open_then > 0
    assert (
        scalar(
            home,
            "SELECT count(*) FROM staging.stg_crm__opportunities "
            "WHERE status = 'open' AND closed_at IS NULL",
        )
        == open_then
    )
    running_then = query(
        home,
        f"SELECT campaign_id FROM raw.campaigns WHERE actual_start <= DATE '{as_of}' "
        f"AND actual_end > DATE '{as_of}' ORDER BY 1",
    )
    assert running_then, "the demo has a campaign running on that date"
    assert (
        query(
            home,
            "SELECT campaign_id FROM staging.stg_crm__campaigns "
            "WHERE status = 'running' ORDER BY 1",
        )
        == running_then
    )
