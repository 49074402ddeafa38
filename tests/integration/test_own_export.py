"""A user's own export with other column names, loaded through the mapping file by the
real loader and built by real dbt on DuckDB, on a new home (the Airflow wiring around the
same calls is exercised by every other integration test)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.conftest import warehouse_query as query

pytestmark = pytest.mark.integration


def scalar(home: Path, sql: str):
    return query(home, sql)[0][0]


def test_a_users_own_export_loads_through_the_mapping_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    landing = home / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "transactions").mkdir()
    (landing / "customers" / "clients.csv").write_text(
        "Client Ref;Joined;Town\nK-1;2025-01-10;Oslo\nK-2;2025-02-11;Bergen\n"
    )
    (landing / "transactions" / "orders.csv").write_text(
        "order_no,client_ref,order_time,total\n"
        "O-1,K-1,2025-03-01 10:00,19.90\nO-2,K-2,2025-03-02 11:00,5.00\nO-3,K-9,2025-03-02,1.00\n"
    )
    (landing / "mapping.yml").write_text(
        "customers:\n  columns: {client ref: customer_id, joined: created_at, town: city}\n"
        "  csv: {delimiter: ';'}\n"
        "transactions:\n  columns: {order_no: transaction_id, client_ref: customer_id,"
        " order_time: occurred_at, total: amount}\n"
    )
    monkeypatch.setenv("CRM_HOME", str(home))
    from crm.dbt import CUSTOMER_360, ML_MARTS, build
    from ingest.contract import LOAD_ORDER
    from ingest.load import load_entity
    from ml.clv import update_customer_lifetime_values

    as_of = date(2025, 3, 31)
    for entity in LOAD_ORDER:  # what the pipeline DAG's tasks do, in its order
        load_entity(entity)
    build(as_of, exclude=f"{CUSTOMER_360} {ML_MARTS}")
    assert update_customer_lifetime_values(as_of)["status"] == "skipped"  # two buyers
    build(as_of, select=CUSTOMER_360)
    assert query(home, "SELECT customer_id, city FROM staging.stg_crm__customers ORDER BY 1") == [
        ("K-1", "Oslo"),
        ("K-2", "Bergen"),
    ]
    assert query(
        home, "SELECT transaction_id, status FROM staging.stg_crm__transactions ORDER BY 1"
    ) == [("O-1", "completed"), ("O-2", "completed")]
    assert query(home, "SELECT reason FROM audit.quarantine") == [("unknown customer_id K-9",)]
    # entities that were never delivered exist and are empty
    assert scalar(home, "SELECT count(*) FROM staging.stg_crm__opportunities") == 0
    assert scalar(home, "SELECT count(*) FROM marts.fct_interactions") == 0
    # an entity delivered for the first time later fills its incremental fact (the load
    # and the dbt build the next run would do, without a whole second run)
    (landing / "interactions").mkdir()
    (landing / "interactions" / "contacts.csv").write_text(
        "interaction_id,customer_id,occurred_at,channel,interaction_type\n"
        "I1,K-1,2025-03-03 09:00,email,open\nI2,K-2,2025-03-04 09:00,web,visit\n"
    )
    load_entity("interactions")
    build(as_of, select="int_interactions_flagged")  # the table behind the fct view
    assert scalar(home, "SELECT count(*) FROM marts.fct_interactions") == 2
