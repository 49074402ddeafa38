"""crm/tables.py: the warehouse tables Python writes, and the move of activation's release
tables out of `marts` for homes an older version made."""

from __future__ import annotations

import duckdb

from crm.tables import (
    ACTIVATION_TABLES,
    MOVED_OUT_OF_MARTS,
    ensure_activation,
    ensure_audit,
    ensure_dbt_sources,
    ensure_ml,
)


def _tables(con, schema: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
        ).fetchall()
    }


def test_releases_kept_in_marts_move_to_activation_with_their_holdouts(tmp_path):
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    # an older home: activation's tables in marts, with a holdout assignment and a view
    ensure_activation(con)
    con.execute("CREATE SCHEMA marts")
    for name in ACTIVATION_TABLES:
        con.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM activation.{name} LIMIT 0")
        con.execute(f"DROP TABLE activation.{name} CASCADE")
    con.execute("DROP VIEW IF EXISTS activation.campaign_audience_latest")
    con.execute(
        "INSERT INTO marts.campaign_audience_groups VALUES "
        "('CMP1', 'C1', 'holdout', DATE '2026-05-01', 'CMP1-2026-05-01')"
    )
    con.execute(
        "CREATE VIEW marts.campaign_audience_latest AS SELECT * FROM marts.campaign_audiences"
    )

    ensure_activation(con)
    ensure_activation(con)  # a second time changes nothing

    assert _tables(con, "marts") == set()
    assert _tables(con, "activation") == {
        *ACTIVATION_TABLES,
        "campaign_audience_latest",
        "campaign_settings",
        "same_day_holdouts",
    }
    assert con.execute(
        'SELECT customer_id, "group" FROM activation.campaign_audience_groups'
    ).fetchall() == [("C1", "holdout")]
    # the primary key came along: a campaign's assignment cannot be written twice
    try:
        con.execute(
            "INSERT INTO activation.campaign_audience_groups VALUES "
            "('CMP1', 'C1', 'target', DATE '2026-06-01', 'CMP1-2026-06-01')"
        )
        raise AssertionError("a second assignment was accepted")
    except duckdb.ConstraintException:
        pass


def test_every_schema_is_created_once_and_again_without_change(tmp_path):
    con = duckdb.connect(str(tmp_path / "new.duckdb"))
    for _ in range(2):
        ensure_audit(con)
        ensure_ml(con)
        ensure_activation(con)
    assert "pipeline_runs" in _tables(con, "audit")
    assert {"customer_lifetime_values", "customer_scores", "offer_audiences"} <= _tables(con, "ml")


def test_tables_an_older_version_built_in_marts_are_dropped_before_a_build(tmp_path):
    """They would go stale and reach BI (the snapshot copies every table in marts)."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE SCHEMA marts")
    for name in MOVED_OUT_OF_MARTS:
        con.execute(f"CREATE TABLE marts.{name} AS SELECT 'C1' AS customer_id, 'female' AS gender")
    con.execute("CREATE TABLE marts.dim_customers AS SELECT 'C1' AS customer_id")
    ensure_dbt_sources(con)
    assert _tables(con, "marts") == {"dim_customers"}
