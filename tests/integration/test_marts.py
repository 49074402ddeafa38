"""The marts after real pipeline runs: contents, reconciliations, the planted truth, point in
time through incremental runs, personal data, the BI snapshot and its readers."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from crm.bi_snapshot import PUBLISHED_ACTIVATION
from datagen import planted
from tests.conftest import run_crm
from tests.conftest import warehouse_query as query
from tests.integration.conftest import AS_OF, EARLIER, copy_home

pytestmark = [pytest.mark.integration, pytest.mark.shared_home("pipeline")]

MARTS = (
    "dim_customers",
    "dim_products",
    "fct_transactions",
    "fct_interactions",
    "fct_opportunities",
    "fct_opportunity_stages",
    "fct_funnel_stage_conversion",
    "fct_pipeline_forecast",
    "fct_forecast_by_period",
    "fct_pipeline_snapshots",
    "fct_win_loss",
    "fct_deal_outcomes",
    "fct_stage_reach",
    "fct_sales_performance_quarterly",
    "fct_campaign_performance",
    "fct_campaign_roi_rollup",
    "fct_campaign_attribution",
    "fct_campaign_lift",
    "fct_campaign_verdicts",
    "fct_campaign_members",
    "fct_offer_adoptions",
)


def scalar(home: Path, sql: str):
    return query(home, sql)[0][0]


def test_every_mart_is_built(pipeline):
    home = pipeline["home"]
    for mart in MARTS:
        assert scalar(home, f"SELECT count(*) FROM marts.{mart}") > 0, mart


@pytest.mark.parametrize(
    ("mart", "staging"),
    [
        ("dim_customers", "stg_crm__customers"),
        ("fct_transactions", "stg_crm__transactions"),
        ("fct_interactions", "stg_crm__interactions"),
        ("fct_opportunities", "stg_crm__opportunities"),
        ("fct_campaign_performance", "stg_crm__campaigns"),
    ],
)
def test_one_row_per_key_of_the_entity(pipeline, mart, staging):
    home = pipeline["home"]
    assert scalar(home, f"SELECT count(*) FROM marts.{mart}") == scalar(
        home, f"SELECT count(*) FROM staging.{staging}"
    )


def test_lifetime_revenue_reconciles_with_completed_transactions(pipeline):
    home = pipeline["home"]
    assert scalar(home, "SELECT sum(lifetime_revenue) FROM marts.dim_customers") == scalar(
        home, "SELECT sum(amount) FROM marts.fct_transactions WHERE is_completed"
    )


def test_campaign_revenue_reconciles_with_attributed_contracts(pipeline):
    home = pipeline["home"]
    # credited revenue is share x amount, summed to the cent
    assert float(scalar(home, "SELECT sum(revenue) FROM marts.fct_campaign_performance")) == (
        pytest.approx(
            float(
                scalar(
                    home,
                    "SELECT sum(amount) FROM intermediate.int_contracts_attributed "
                    "WHERE campaign_id IS NOT NULL",
                )
            ),
            abs=0.005 * scalar(home, "SELECT count(*) FROM marts.fct_campaign_performance"),
        )
    )
    rules = dict(
        query(
            home,
            "SELECT attribution_rule, count(*) FROM "
            "intermediate.int_contracts_attributed GROUP BY 1",
        )
    )
    assert rules.get("source_campaign", 0) > 0


def test_every_attribution_model_shares_out_all_contract_revenue(pipeline):
    home = pipeline["home"]
    total = float(scalar(home, "SELECT sum(amount) FROM staging.stg_crm__contracts"))
    rows = query(
        home,
        "SELECT attribution_model, sum(revenue), sum(revenue) FILTER (WHERE campaign_id IS "
        "NULL), sum(margin), sum(revenue_without_margin), count(*) FILTER (WHERE "
        "is_default_model), count(*) FROM marts.fct_campaign_attribution GROUP BY 1",
    )
    models = {model: rest for model, *rest in rows}
    assert set(models) == {
        "source_campaign",
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position_based",
    }
    for model, (revenue, _, margin, without_margin, default_rows, n) in models.items():
        # each row's revenue is rounded to the cent
        assert float(revenue) == pytest.approx(total, abs=0.005 * n + 1e-6), model
        # margin is below the revenue whose product, hence margin rate, is known (the
        # demo's deals mostly carry no product)
        assert 0 < margin < revenue - without_margin, model
        assert (default_rows > 0) == (model == "source_campaign"), model
    # the touch models share out the same touched contracts, whoever gets them; the source
    # campaign rule also credits sourced contracts no touch reached
    touch_models = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
    unattributed = {model: models[model][1] for model in touch_models}
    assert max(unattributed.values()) - min(unattributed.values()) < 0.01
    assert models["source_campaign"][1] < unattributed["last_touch"]
    # a campaign's shares never exceed the contracts it touched (the shares themselves
    # are checked by the dbt unit test contract_credits_share_each_contract_by_model)
    assert not query(
        home,
        "SELECT * FROM marts.fct_campaign_attribution WHERE contracts > contracts_touched + 1e-9",
    )


def test_key_customers_carry_80_percent_of_revenue(pipeline):
    share, key_share_of_buyers = query(
        pipeline["home"],
        "SELECT sum(lifetime_revenue) FILTER (WHERE is_key_customer) / sum(lifetime_revenue), "
        "avg(CAST(is_key_customer AS INT)) FILTER (WHERE orders > 0) FROM marts.dim_customers",
    )[0]
    assert 0.8 <= share < 0.81
    assert key_share_of_buyers < 0.5  # a minority of buyers: revenue is skewed
    # the RFM code is three digits, as its documentation says ('545', not '5.04.05.0')
    assert query(
        pipeline["home"],
        "SELECT count(*) FROM marts.dim_customers WHERE recency_score IS NOT NULL "
        "AND NOT regexp_full_match(rfm_code, '[1-5]{3}')",
    ) == [(0,)]


def test_the_funnel_measures_the_planted_conversion_rates(pipeline):
    rates = dict(
        query(
            pipeline["home"],
            "SELECT stage, conversion_rate FROM "
            "marts.fct_funnel_stage_conversion WHERE dimension = 'all'",
        )
    )
    for stage, planted_rate in planted.STAGE_CONVERSION.items():
        assert rates[stage] == pytest.approx(planted_rate, abs=0.15), stage


def test_the_forecast_weights_open_deals_by_measured_rates(pipeline):
    home = pipeline["home"]
    rows = query(
        home,
        "SELECT current_stage, min(stage_win_probability), max(stage_win_probability) "
        "FROM marts.fct_pipeline_forecast GROUP BY 1",
    )
    assert rows
    rates = dict(
        query(
            home,
            "SELECT stage, conversion_rate FROM marts.fct_funnel_stage_conversion "
            "WHERE dimension = 'all'",
        )
    )
    order = ["lead", "qualified", "proposal", "negotiation"]
    for stage, low, high in rows:
        assert low == pytest.approx(high)  # the same stage gets the same probability
        product = 1.0
        for later in order[order.index(stage) :]:
            product *= rates[later]
        assert low == pytest.approx(product), stage
    assert scalar(home, "SELECT count(*) FROM marts.fct_pipeline_forecast") == scalar(
        home, "SELECT count(*) FROM marts.fct_opportunities WHERE status = 'open'"
    )
    # a deal is weighted by the stage rates, or, stalled beyond its stage's 80th
    # percentile with enough stalled stays ended, by their measured rate
    assert query(
        home,
        "SELECT count(*) FROM marts.fct_pipeline_forecast WHERE win_probability "
        "IS DISTINCT FROM CASE win_probability_basis WHEN 'stalled rate' "
        "THEN stalled_win_rate ELSE stage_win_probability END "
        "OR (win_probability_basis = 'stalled rate') <> (is_stalled AND "
        "stalled_stays_ended >= 10 AND stalled_win_rate IS NOT NULL) "
        "OR is_stalled <> (days_in_current_stage > p80_days_in_stage)",
    ) == [(0,)]
    assert scalar(home, "SELECT count(*) FROM marts.fct_pipeline_forecast WHERE is_stalled") > 0
    # the demo plants it: a deal stalled in a stage advances at 0.6 x the stage's rate, so
    # stalled deals are won about 0.6 times as often as the stage rates say
    measured = scalar(
        home,
        "SELECT sum(stalled_stays_ended * stalled_win_rate) "
        "/ sum(stalled_stays_ended * stage_win_probability) FROM (SELECT DISTINCT "
        "current_stage, stalled_stays_ended, stalled_win_rate, stage_win_probability "
        "FROM marts.fct_pipeline_forecast)",
    )
    assert measured == pytest.approx(planted.STALLED_ADVANCE_FACTOR, abs=0.2)


def test_campaign_target_groups_respond_more_than_control_groups(pipeline):
    target, control = query(
        pipeline["home"],
        "SELECT sum(responders_target) / sum(members_target), "
        "sum(responders_control) / sum(members_control) FROM marts.fct_campaign_performance",
    )[0]
    assert target > control  # about 8% against 4% on this small demo


def test_every_campaign_gets_one_verdict_from_its_own_figures(pipeline):
    """fct_campaign_verdicts carries the gross ROI of campaign performance and the
    incremental figures of the lift unchanged, and no verdict outruns its interval."""
    home = pipeline["home"]
    assert scalar(home, "SELECT count(*) FROM marts.fct_campaign_verdicts") == scalar(
        home, "SELECT count(*) FROM marts.fct_campaign_performance"
    )
    mismatched = query(
        home,
        "SELECT v.campaign_id FROM marts.fct_campaign_verdicts AS v "
        "JOIN marts.fct_campaign_performance AS p USING (campaign_id) "
        "LEFT JOIN marts.fct_campaign_lift AS l USING (campaign_id) "
        "WHERE v.roi IS DISTINCT FROM p.roi "
        "OR v.incremental_revenue_low IS DISTINCT FROM l.incremental_revenue_low "
        "OR NOT coalesce(l.incremental_revenue_low <= l.incremental_revenue "
        "AND l.incremental_revenue <= l.incremental_revenue_high, true) "
        "OR (v.verdict = 'paid back') IS DISTINCT FROM "
        "coalesce(l.is_window_closed AND l.incremental_revenue_low > p.actual_cost, false)",
    )
    assert mismatched == []
    verdicts = dict(
        query(home, "SELECT verdict, count(*) FROM marts.fct_campaign_verdicts GROUP BY 1")
    )
    # every campaign gets one; the finished ones are judged on their holdout
    assert sum(verdicts.values()) >= 20 and "not started" in verdicts
    judged = {"paid back", "inconclusive", "gross only", "lift below cost", "not paid back"}
    assert sum(n for v, n in verdicts.items() if v in judged) >= 10


def test_quotas_come_per_quarter_and_fall_back_to_the_reps_quota(pipeline):
    """The demo's sales_quotas leaves out R001's first quarters: those use the rep's
    sales_reps.quarterly_quota, every other rep-quarter its own row; attainment is
    bookings over that quota."""
    home = pipeline["home"]
    rows = query(
        home,
        "SELECT p.owner_id, p.quarter_start, p.quota_source, p.quarterly_quota, "
        "q.quota, r.quarterly_quota, p.attainment, p.bookings "
        "FROM marts.fct_sales_performance_quarterly AS p "
        "JOIN staging.stg_crm__sales_reps AS r USING (owner_id) "
        "LEFT JOIN staging.stg_crm__sales_quotas AS q USING (owner_id, quarter_start) "
        "WHERE p.level = 'rep' ORDER BY p.owner_id, p.quarter_start",
    )
    fallback = [r for r in rows if r[2] == "sales_reps"]
    assert {r[0] for r in fallback} == {"R001"}
    assert len(fallback) == planted.QUOTA_FALLBACK_QUARTERS
    assert all(r[3] == r[5] for r in fallback)
    assert all(r[2] == "sales_quotas" and r[3] == r[4] for r in rows if r not in fallback)
    # quotas differ by quarter (the fourth is higher), not one figure for every quarter
    assert len({r[3] for r in rows if r[0] == "R002"}) > 3
    for r in rows:
        assert r[6] == pytest.approx(float(r[7]) / float(r[3]))


def test_customer_lifetime_values_are_fitted_for_buyers(pipeline):
    home = pipeline["home"]
    assert scalar(home, "SELECT status FROM ml.clv_fits") == "fitted"
    buyers, valued = query(
        home, "SELECT count(*) FILTER (WHERE orders > 0), count(clv_12m) FROM marts.dim_customers"
    )[0]
    assert valued == buyers > 0


def _personal_values(home: Path) -> set[str]:
    rows = query(home, "SELECT full_name, email, phone FROM staging.stg_crm__customers")
    return {v for row in rows for v in row if v}


def _text_values(db: Path) -> list[str]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema IN ('marts', 'activation') AND data_type = 'VARCHAR'"
        ).fetchall()
        values = []
        for schema, table, column in columns:
            values += [
                r[0]
                for r in con.execute(
                    f'SELECT DISTINCT "{column}" FROM {schema}."{table}" '
                    f'WHERE "{column}" IS NOT NULL'
                ).fetchall()
            ]
        return values
    finally:
        con.close()


def test_no_raw_personal_data_in_the_marts_or_the_bi_snapshot(pipeline):
    import hashlib

    import duckdb

    home = pipeline["home"]
    personal = _personal_values(home)
    assert len(personal) > 1000
    # an unkeyed SHA-256 of an address is reversed by hashing a list of addresses
    emails = [r[0] for r in query(home, "SELECT email FROM staging.stg_crm__customers") if r[0]]
    personal |= {hashlib.sha256(e.encode()).hexdigest() for e in emails}
    for db in (home / "warehouse" / "crm.duckdb", home / "warehouse" / "bi" / "crm_marts.duckdb"):
        leaked = personal & set(_text_values(db))
        assert not leaked, f"{db.name}: {sorted(leaked)[:5]}"
        con = duckdb.connect(str(db), read_only=True)
        try:  # exact quasi-identifiers stay out unless bi_exact_quasi_identifiers is set
            exact = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'marts' AND column_name IN ('birth_date', 'city')"
            ).fetchall()
        finally:
            con.close()
        assert not exact, f"{db.name}: {exact}"


def test_the_bi_snapshot_holds_the_runs_marts(pipeline):
    import duckdb

    home = pipeline["home"]
    con = duckdb.connect(str(home / "warehouse" / "bi" / "crm_marts.duckdb"), read_only=True)
    try:
        run_id, as_of, counts = con.execute(
            "SELECT run_id, as_of_date, table_rows FROM marts._snapshot"
        ).fetchone()
        for mart in MARTS:
            assert con.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0] == scalar(
                home, f"SELECT count(*) FROM marts.{mart}"
            )
    finally:
        con.close()
    assert str(as_of) == AS_OF.isoformat()
    assert run_id == scalar(home, "SELECT run_id FROM audit.pipeline_runs")
    # the marts (the forecast accuracy empty: one date has no past to judge), and
    # activation's release tables (empty: this home ran no ML)
    assert set(json.loads(counts)) == set(MARTS) | {"fct_forecast_accuracy"} | {
        f"activation.{t}" for t in PUBLISHED_ACTIVATION
    }


def test_the_dbt_unit_tests_pass(pipeline, tmp_path, monkeypatch):
    """The models' logic on fixed rows (funnel order, attribution, RFM, point in time):
    runs leave them out, since a run's data cannot change their result."""
    home = copy_home(pipeline, tmp_path)
    monkeypatch.setenv("CRM_HOME", str(home))
    from crm.dbt import unit_tests

    result = unit_tests(AS_OF)
    assert result.tests_passed >= 8 and result.tests_failed == 0


def test_an_unknown_attribution_model_stops_the_build_and_names_the_models(
    pipeline, tmp_path, monkeypatch
):
    home = copy_home(pipeline, tmp_path)
    monkeypatch.setenv("CRM_HOME", str(home))
    from crm.dbt import DbtBuildError, build

    with pytest.raises(DbtBuildError, match="must be one of source_campaign, first_touch"):
        build(AS_OF, select="int_contract_credits", extra_vars={"attribution_model": "u_shaped"})


def test_the_dbt_docs_page_is_a_run_output(pipeline):
    page = pipeline["home"] / "reports" / "dbt_docs" / "index.html"
    text = page.read_text()
    assert "fct_pipeline_forecast" in text and "dim_customers" in text
    assert "dbt docs" in pipeline["stdout"]


def _late_files(landing: Path, customers: list[str], late_day) -> None:
    """Rows for an old date delivered late, and a product's corrected cost (the margin of
    its past transactions must follow)."""
    lines = ["transaction_id,customer_id,occurred_at,amount,status"] + [
        f"LATE{i:04d},{c},{late_day} 12:00:00,{10 + i}.00,completed"
        for i, c in enumerate(customers)
    ]
    (landing / "transactions" / "late_arrivals.csv").write_text("\n".join(lines) + "\n")
    (landing / "products" / "products_fix.csv").write_text(
        "product_id,name,category,list_price,unit_cost,is_offer\nP010,Fixed,home,39.99,1.00,false\n"
    )


def test_incremental_runs_in_any_order_give_what_a_first_full_run_gives(pipeline, rerun, tmp_path):
    """AS_OF, AS_OF again, EARLIER, then late rows and AS_OF once more (incremental facts,
    the CLV refitted): every mart equals the first, full run of AS_OF on a new warehouse
    that had the late rows from the start."""
    home = tmp_path / "home"
    shutil.copytree(rerun["home"], home)
    # the rerun home ran an earlier date after a later one: that rebuilt the facts for the
    # earlier date, and did not replace the BI snapshot of the later date
    from crm.bi_snapshot import published_as_of

    assert published_as_of(home / "warehouse" / "bi" / "crm_marts.duckdb") == AS_OF.isoformat()
    cutoff = f"TIMESTAMP '{EARLIER + timedelta(days=1)} 00:00:00'"
    assert scalar(home, f"SELECT max(occurred_at) < {cutoff} FROM marts.fct_transactions")
    assert scalar(home, "SELECT count(*) FROM marts.fct_transactions") == scalar(
        home, "SELECT count(*) FROM staging.stg_crm__transactions"
    )
    customers = [
        r[0]
        for r in query(
            home, "SELECT customer_id FROM staging.stg_crm__customers ORDER BY customer_id LIMIT 40"
        )
    ]
    _late_files(home / "landing", customers, EARLIER - timedelta(days=15))
    run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=home)
    assert scalar(home, "SELECT count(*) FROM marts.fct_transactions") == scalar(
        home, "SELECT count(*) FROM staging.stg_crm__transactions"
    )
    assert (
        scalar(
            home, "SELECT count(*) FROM marts.fct_transactions WHERE transaction_id LIKE 'LATE%'"
        )
        == 40
    )
    incremental = json.loads((home / "reports" / "last_run.json").read_text())["marts"]

    # a new warehouse (Airflow's metadata and dbt's parse state come along: no data in
    # them; and the home's personal-data key, which the e-mail hashes depend on)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for part in ("landing", "airflow", "dbt", "secrets"):
        shutil.copytree(pipeline["home"] / part, fresh / part, symlinks=True)
    _late_files(fresh / "landing", customers, EARLIER - timedelta(days=15))
    run_crm("run", "--as-of", AS_OF.isoformat(), "--no-ml", home=fresh)
    full = json.loads((fresh / "reports" / "last_run.json").read_text())["marts"]
    # the history marts keep every date run (here EARLIER too), which a first run has not
    # seen: compare the AS_OF pipeline snapshot alone, and the accuracy below
    history = ("fct_pipeline_snapshots", "fct_forecast_accuracy")
    assert len(full) >= 10 and _without(incremental, history) == _without(full, history)
    assert full != rerun["runs"][0]["marts"]  # the late rows did change the marts
    snapshot = f"as_of_date = DATE '{AS_OF}'"
    assert _fingerprint(home, "marts.fct_pipeline_snapshots", snapshot) == _fingerprint(
        fresh, "marts.fct_pipeline_snapshots", snapshot
    )
    _check_forecast_accuracy(home)


def _without(fingerprints: dict, names) -> dict:
    return {k: v for k, v in fingerprints.items() if k not in names}


def _fingerprint(home: Path, relation: str, where: str) -> str:
    import duckdb

    from crm.warehouse import table_fingerprint

    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"), read_only=True)
    try:
        return table_fingerprint(con, relation, where)
    finally:
        con.close()


def _check_forecast_accuracy(home: Path) -> None:
    """The home ran AS_OF, EARLIER, then AS_OF: the pipeline history holds both dates, and
    the accuracy of EARLIER's forecast is known for its month and quarter and the next."""
    dates = [
        r[0]
        for r in query(
            home, "SELECT DISTINCT as_of_date FROM marts.fct_pipeline_snapshots ORDER BY 1"
        )
    ]
    assert dates == [EARLIER, AS_OF]
    rows = query(
        home,
        "SELECT period_type, horizon, period_start, forecast_category, deals, amount, "
        "forecast_amount, actual_amount, eventually_won_amount "
        f"FROM marts.fct_forecast_accuracy WHERE as_of_date = DATE '{EARLIER}' ORDER BY 1, 2, 4",
    )
    periods = {(r[0], r[1]) for r in rows}
    assert periods == {("month", 0), ("month", 1), ("quarter", 0), ("quarter", 1)}
    assert query(
        home, f"SELECT count(*) FROM marts.fct_forecast_accuracy WHERE as_of_date >= DATE '{AS_OF}'"
    ) == [(0,)]
    for period_type, horizon, start, *_ in {(r[0], r[1], r[2]) for r in rows}:
        by = {r[3]: r for r in rows if (r[0], r[1]) == (period_type, horizon)}
        total, opened = by["total"], [r for c, r in by.items() if c not in ("total", "closed")]
        # total = what was won by the snapshot date plus the open deals' forecast
        assert total[6] == by["closed"][6] + sum(r[6] for r in opened)
        assert total[4] == by["closed"][4] + sum(r[4] for r in opened)
        # against everything won in the period
        end = "INTERVAL 3 MONTH" if period_type == "quarter" else "INTERVAL 1 MONTH"
        won = scalar(
            home,
            "SELECT coalesce(sum(amount), 0) FROM marts.fct_opportunities WHERE is_won "
            f"AND closed_at >= DATE '{start}' AND closed_at < DATE '{start}' + {end}",
        )
        assert total[7] == won
        for r in opened:
            assert 0 <= r[7] <= r[8] <= r[5]  # won in the period <= won ever <= amount
    # every open deal of the snapshot expected to close in EARLIER's quarter or the next
    opened_deals = sum(r[4] for r in rows if r[0] == "quarter" and r[3] not in ("total", "closed"))
    assert opened_deals > 0


def test_readers_never_see_partial_data_during_a_run(rerun):
    """A BI tool on the snapshot and an analyst on the warehouse, while the date runs again
    (the readers run beside the first run of the shared `rerun` home)."""
    poll, hold, analyst = (rerun["readers"][k] for k in ("poll", "hold", "analyst"))
    assert poll["errors"] == [] and hold["errors"] == []
    assert poll["checks"] > 50 and hold["checks"] > 50
    assert len(poll["seen"]) == 2  # the old snapshot, then the new one, each whole
    assert len(hold["seen"]) == 1  # the open connection kept its snapshot to the end
    runs = {r["run_id"] for r in rerun["runs"]}
    assert set(poll["seen"]) <= runs and hold["seen"][0] in poll["seen"]
    assert analyst["errors"] == [] and analyst["checks"] >= 5


def _canonical(value) -> str:
    """One value as text both engines agree on: numbers to 9 significant digits (sums
    add up in another order), dates in ISO form."""
    from datetime import date
    from decimal import Decimal

    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return f"{float(value):.9g}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _rows(cursor, table: str) -> tuple[list[str], list[tuple]]:
    cursor.execute(f"SELECT * FROM marts.{table}")
    columns = [d[0] for d in cursor.description]
    return columns, sorted(tuple(_canonical(v) for v in row) for row in cursor.fetchall())


@pytest.fixture(scope="module")
def postgres_warehouse(pipeline, tmp_path_factory):
    """The pipeline home's marts built again on a new PostgreSQL database (once for the
    tests that read it: a build takes half a minute)."""
    import uuid

    import psycopg2

    database = f"crm_marts_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    home = copy_home(pipeline, tmp_path_factory.mktemp("postgres_warehouse"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRM_HOME", str(home))
        env.setenv("CRM_PG_DATABASE", database)
        from crm.pg_warehouse import build_marts

        result = build_marts(AS_OF)
        yield {
            "home": home,
            "result": result,
            "url": f"postgresql://postgres@127.0.0.1/{database}",
        }
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    admin.close()


def test_the_marts_on_postgresql_equal_the_marts_on_duckdb(postgres_warehouse):
    """The same dbt project on PostgreSQL: every model and test passes, and every mart
    holds the same rows as on DuckDB (which found DuckDB printing RFM codes as '4.05.03.0')."""
    import duckdb
    import psycopg2

    dbt = postgres_warehouse["result"]["dbt"]
    assert dbt["tests_failed"] == dbt["errors"] == 0 and dbt["tests_passed"] > 100
    assert dbt["models"] >= len(MARTS) + 10  # staging, intermediate and marts
    duck = duckdb.connect(
        str(postgres_warehouse["home"] / "warehouse" / "crm.duckdb"), read_only=True
    )
    pg = psycopg2.connect(postgres_warehouse["url"])
    try:
        for table in MARTS:
            on_duckdb, on_postgres = _rows(duck.cursor(), table), _rows(pg.cursor(), table)
            assert on_postgres[0] == on_duckdb[0], table  # the same columns, in order
            assert len(on_postgres[1]) == len(on_duckdb[1]) > 0, table
            assert on_postgres[1] == on_duckdb[1], table
        # the key figures, spelled out
        figures = (
            "SELECT count(*), sum(lifetime_revenue), sum(CASE WHEN is_key_customer THEN 1 END) "
            "FROM marts.dim_customers",
            "SELECT sum(revenue), sum(actual_cost), avg(roi) FROM marts.fct_campaign_performance",
            "SELECT stage, conversion_rate FROM marts.fct_funnel_stage_conversion "
            "WHERE dimension = 'all' ORDER BY stage_order",
        )
        for sql in figures:
            d, p = duck.execute(sql).fetchall(), pg.cursor()
            p.execute(sql)
            assert [tuple(map(_canonical, r)) for r in p.fetchall()] == [
                tuple(map(_canonical, r)) for r in d
            ], sql
    finally:
        duck.close()
        pg.close()


def test_the_bi_role_reads_the_marts_and_nothing_else(postgres_warehouse):
    import psycopg2

    from crm.pg_warehouse import BI_ROLE

    bi = psycopg2.connect(postgres_warehouse["url"].replace("postgres@", f"{BI_ROLE}@"))
    try:
        with bi.cursor() as cur:
            cur.execute("SELECT count(*), count(email_hash) FROM marts.dim_customers")
            customers, hashed = cur.fetchall()[0]
            assert customers > 0 and hashed > 0
        for statement in (
            "SELECT email, phone FROM raw.customers LIMIT 1",
            "SELECT email FROM staging.stg_crm__customers LIMIT 1",
            "DELETE FROM marts.dim_customers",
            "INSERT INTO marts.fct_win_loss (outcome) VALUES ('x')",
            "CREATE TABLE marts.mine (x int)",
            "CREATE TABLE public.mine (x int)",
        ):
            with bi.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            bi.rollback()
    finally:
        bi.close()
