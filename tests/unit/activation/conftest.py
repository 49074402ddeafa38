"""A tiny warehouse (a real DuckDB file) with just the tables activation reads and the
suppression rule dbt builds on them (the view audiences.audience_candidates), so each
suppression reason and each publication step can be set up row by row."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

AS_OF = date(2026, 6, 1)


def _seed(con) -> None:
    for schema in ("ml", "marts", "audiences", "features"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        """
        CREATE TABLE ml.offer_audiences (
            customer_id VARCHAR, offer_id VARCHAR, score DOUBLE, band VARCHAR, decile INTEGER,
            rule_id VARCHAR, rule VARCHAR, model_version VARCHAR, list_rank BIGINT,
            expected_value DOUBLE, selected_by VARCHAR, as_of_date DATE, run_id VARCHAR)
        """
    )
    con.execute(
        "CREATE TABLE ml.customer_scores (customer_id VARCHAR, offer_id VARCHAR, score DOUBLE, "
        "as_of_date DATE)"
    )
    con.execute(
        "CREATE TABLE marts.fct_offer_adoptions (customer_id VARCHAR, "
        "offer_id VARCHAR, adopted_at TIMESTAMP, amount DOUBLE, campaign_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE features.customer_features (customer_id VARCHAR, as_of_date DATE, "
        "is_opted_out BOOLEAN)"
    )
    con.execute(
        "CREATE TABLE marts.fct_campaign_members (campaign_id VARCHAR, customer_id VARCHAR, "
        "member_group VARCHAR, campaign_status VARCHAR)"
    )
    con.execute(
        "CREATE TABLE marts.fct_interactions (customer_id VARCHAR, occurred_at TIMESTAMP, "
        "is_campaign_touch BOOLEAN, campaign_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE audiences.audience_contacts (customer_id VARCHAR, full_name VARCHAR, "
        "email VARCHAR, phone VARCHAR, has_valid_contact BOOLEAN)"
    )
    con.execute(
        "CREATE TABLE marts.dim_customers (customer_id VARCHAR, email_masked VARCHAR, "
        "phone_masked VARCHAR, is_opted_out BOOLEAN)"
    )


def add_scored(con, offer: str, customers: list[str], as_of: date = AS_OF, score0=0.9):
    """Scored list rows for `customers`, best first, with a contactable customer record."""
    for rank, customer in enumerate(customers, start=1):
        score = max(score0 - rank * 0.001, 0.01)
        con.execute(
            "INSERT INTO ml.offer_audiences VALUES (?, ?, ?, '50%-90%', 1, 'R1', 'age <= 30', "
            "'v1', ?, ?, 'expected_value', ?, 'run')",
            [customer, offer, score, rank, score * 10, as_of],
        )
        con.execute(
            "INSERT INTO ml.customer_scores VALUES (?, ?, ?, ?)", [customer, offer, score, as_of]
        )
        known = con.execute(
            "SELECT count(*) FROM audiences.audience_contacts WHERE customer_id = ?", [customer]
        ).fetchall()[0][0]
        if not known:
            con.execute(
                "INSERT INTO audiences.audience_contacts "
                "VALUES (?, ?, ?, '+44 20 7946 0000', true)",
                [customer, f"Name {customer}", f"{customer.lower()}@example.com"],
            )
            con.execute(
                "INSERT INTO marts.dim_customers VALUES (?, 'x***@example.com', '***000', false)",
                [customer],
            )
        con.execute(
            "INSERT INTO features.customer_features VALUES (?, ?, false)", [customer, as_of]
        )


def _environment(monkeypatch, home) -> None:
    monkeypatch.setenv("CRM_HOME", str(home))
    monkeypatch.delenv("CRM_DB_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_CRM_DB", raising=False)
    monkeypatch.delenv("CRM_DBT_TARGET", raising=False)


@pytest.fixture(scope="session")
def seeded_warehouse(tmp_path_factory):
    """The seeded tables with the real suppression rule built on them by dbt, once per
    session (a dbt build takes seconds); each test gets a copy of the file."""
    from crm.dbt import build
    from crm.settings import get_settings
    from crm.warehouse import session

    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch, tmp_path_factory.mktemp("seeded") / "home")
        settings = get_settings()
        settings.ensure_dirs()
        with session(settings=settings) as con:
            _seed(con)
        build(AS_OF, select="audience_candidates", settings=settings)
    return settings.warehouse_path


@pytest.fixture
def home(tmp_path, monkeypatch, seeded_warehouse):
    """A CRM_HOME whose warehouse holds the seeded tables; yields the settings."""
    _environment(monkeypatch, tmp_path / "home")
    from crm.settings import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    shutil.copyfile(seeded_warehouse, settings.warehouse_path)
    return settings
