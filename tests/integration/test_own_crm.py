"""A team's own CRM: its funnel in the pipelines file (here in Chinese), its values mapped
onto the contract's, and a deal export with one row per deal and names for keys. Loaded by
the real loader and built by real dbt on DuckDB on a new home, checked against counts made
here with pandas from the files themselves (the Airflow wiring around the same calls is
exercised by the other integration tests)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import warehouse_query as query

pytestmark = pytest.mark.integration

AS_OF = date(2026, 6, 1)

CHINESE_PIPELINES = """\
# the CRM marketing method's funnel: lead tracking, qualification, bidding, negotiation;
# a signed contract wins the deal
default_pipeline: 销售
pipelines:
  销售:
    name: 销售漏斗
    stages: [潜在客户跟踪, 资格确认, {项目投标: 0.4}, 商务洽谈]
    closing: {won: 签订合同, lost: 丢单}
"""
IN_CHINESE = {
    "lead": "潜在客户跟踪",
    "qualified": "资格确认",
    "proposal": "项目投标",
    "negotiation": "商务洽谈",
    "won": "签订合同",
    "lost": "丢单",
}


def _build(home: Path, monkeypatch, docs: bool = False) -> None:
    """What the pipeline DAG's tasks do, in its order, up to the funnel marts."""
    monkeypatch.setenv("CRM_HOME", str(home))
    from crm.dbt import CUSTOMER_360, ML_MARTS, build, generate_docs
    from ingest.contract import LOAD_ORDER
    from ingest.load import load_entity

    for entity in LOAD_ORDER:
        load_entity(entity)
    build(AS_OF, exclude=f"{CUSTOMER_360} {ML_MARTS}")
    if docs:
        generate_docs(AS_OF)


def test_a_funnel_with_chinese_stage_names_runs_end_to_end(tmp_path, monkeypatch):
    from datagen.generator import generate
    from datagen.spec import GenerationSpec
    from datagen.writer import write_landing

    home = tmp_path / "home"
    landing = home / "landing"
    crm = generate(GenerationSpec(customers=400, seed=5, end=AS_OF))
    write_landing(crm, landing)
    # the stage history comes in Chinese, as UTF-8 CSV
    history = crm.tables["opportunity_stage_history"].to_pandas()
    history["stage"] = history["stage"].map(IN_CHINESE)
    for old in (landing / "opportunity_stage_history").iterdir():
        old.unlink()
    history.to_csv(landing / "opportunity_stage_history" / "history.csv", index=False)
    (landing / "pipelines.yml").write_text(CHINESE_PIPELINES, encoding="utf-8")
    # the deals keep the CRM's English values: the mapping turns them into the pipeline's
    stage_map = "".join(f"      {k.upper()}: {v}\n" for k, v in IN_CHINESE.items())
    (landing / "mapping.yml").write_text(
        "opportunities:\n  values_match: loose\n  values:\n    pipeline_id: {sales: 销售}\n"
        f"    stage:\n{stage_map}",
        encoding="utf-8",
    )
    _build(home, monkeypatch, docs=True)

    assert query(home, "SELECT count(*) FROM audit.quarantine") == [(0,)]
    entered = dict(
        query(
            home,
            "SELECT stage, entered FROM marts.fct_funnel_stage_conversion "
            "WHERE dimension = 'all' ORDER BY stage_order",
        )
    )
    counted = history[history["stage"].isin(list(IN_CHINESE.values())[:4])].groupby("stage").size()
    assert list(entered) == ["潜在客户跟踪", "资格确认", "项目投标", "商务洽谈"]
    assert entered == counted.to_dict()
    deals = crm.tables["opportunities"].to_pandas()
    reach = query(
        home,
        "SELECT stage, stage_kind, deals_reached FROM marts.fct_stage_reach ORDER BY stage_order",
    )
    assert reach[-1] == ("签订合同", "won", int((deals["status"] == "won").sum()))
    assert reach[0] == ("潜在客户跟踪", "open", len(deals))
    assert query(home, "SELECT DISTINCT pipeline_id FROM marts.fct_opportunities") == [("销售",)]
    forecast = query(
        home,
        "SELECT DISTINCT current_stage, crm_probability FROM marts.fct_pipeline_forecast "
        "WHERE current_stage = '项目投标'",
    )
    assert forecast == [("项目投标", 0.4)]  # the pipelines file's probability, beside ours

    # the docs page carries the project as JSON in the page, non-ASCII text \u-escaped
    page = (home / "reports" / "dbt_docs" / "index.html").read_text(encoding="utf-8")
    assert (
        json.dumps("销售漏斗 (销售): 潜在客户跟踪 → 资格确认 → 项目投标 → 商务洽谈")[1:-1] in page
    )

    from activation.report import write_report

    report = write_report(AS_OF, "chinese-funnel", {}).read_text(encoding="utf-8")
    assert '<section id="funnel">' in report
    for stage in ("潜在客户跟踪", "资格确认", "项目投标", "商务洽谈", "签订合同"):
        assert f"<td>{stage}</td>" in report


# --- a deal export: one row per deal, names for keys, a mess of its own ---------------

AGENTS = {  # agent: (manager, office)
    "Anna Berg": ("Dana Cole", "West"),
    "Bo Ek": ("Dana Cole", "West"),
    "Cai Lin": ("Dana Cole", "West"),
    "Dev Rao": ("Eli Moss", "Central"),
    "Eva Nyström": ("Eli Moss", "Central"),
    "Femi Ade": ("Eli Moss", "Central"),
}
PRODUCTS = {"GTX Pro": ("GTX", 4821), "GTX Basic": ("GTX", 550), "MG Special": ("MG", 55)}
SECTORS = ["retail", "software", "medical", "finance"]


def _deal_export(landing: Path, seed: int = 7) -> pd.DataFrame:
    """Teams, accounts, products and deals files as a CRM exports them, with the mess:
    agent names with other case and spacing, a product spelled differently in the deals
    than in the products file, open deals without an account, lost deals with a close
    value of 0. Returns the deals as written."""
    rng = np.random.default_rng(seed)
    for folder in ("sales_reps", "customers", "products", "opportunities"):
        (landing / folder).mkdir(parents=True)
    pd.DataFrame(
        {
            "sales_agent": list(AGENTS),
            "manager": [m for m, _ in AGENTS.values()],
            "regional_office": [o for _, o in AGENTS.values()],
        }
    ).to_csv(landing / "sales_reps" / "sales_teams.csv", index=False)
    accounts = pd.DataFrame(
        {
            "account": [f"Account {i:02d}" for i in range(12)],
            "sector": [SECTORS[i % len(SECTORS)] for i in range(12)],
            "year_established": rng.integers(1980, 2015, 12),
            "employees": rng.integers(10, 5000, 12),
            "office_location": ["United States"] * 12,
        }
    )
    accounts.to_csv(landing / "customers" / "accounts.csv", index=False)
    pd.DataFrame(
        {
            "product": list(PRODUCTS),
            "series": [s for s, _ in PRODUCTS.values()],
            "sales_price": [p for _, p in PRODUCTS.values()],
        }
    ).to_csv(landing / "products" / "products.csv", index=False)

    n = 400
    agents = rng.choice(list(AGENTS), n)
    products = rng.choice(list(PRODUCTS), n, p=[0.3, 0.5, 0.2])
    # an agent's skill and a product's ease make the win rates differ
    skill = {a: 0.35 + 0.08 * i for i, a in enumerate(AGENTS)}
    ease = {"GTX Pro": -0.1, "GTX Basic": 0.05, "MG Special": 0.1}
    p_win = np.array([skill[a] + ease[p] for a, p in zip(agents, products, strict=True)])
    state = rng.random(n)
    stage = np.where(
        state < 0.1,
        "Prospecting",
        np.where(state < 0.25, "Engaging", np.where(rng.random(n) < p_win, "Won", "Lost")),
    )
    engage = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D")
    cycle = pd.to_timedelta(rng.integers(5, 120, n), "D")
    closed = np.isin(stage, ["Won", "Lost"])
    list_price = np.array([PRODUCTS[p][1] for p in products])
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"{i:06X}" for i in range(n)],
            # the deals file writes some names in other case and spacing
            "sales_agent": [
                a.upper() if i % 7 == 0 else a.replace(" ", "  ") if i % 11 == 0 else a
                for i, a in enumerate(agents)
            ],
            "product": ["GTXPro" if p == "GTX Pro" else p for p in products],
            "account": rng.choice(accounts["account"], n),
            "deal_stage": stage,
            "engage_date": np.where(stage == "Prospecting", None, engage.strftime("%Y-%m-%d")),
            "close_date": np.where(closed, (engage + cycle).strftime("%Y-%m-%d"), None),
            "close_value": np.where(
                stage == "Won", np.round(list_price * rng.uniform(0.9, 1.1, n)), 0
            ).astype(int),
        }
    )
    deals.loc[
        (deals["deal_stage"] == "Prospecting").to_numpy() & (np.arange(n) % 2 == 0), "account"
    ] = None
    deals.loc[~closed, "close_value"] = None
    deals.to_csv(landing / "opportunities" / "sales_pipeline.csv", index=False)
    return deals


DEAL_PIPELINES = """\
pipelines:
  deals:
    stages: [Prospecting, Engaging]
    closing: {won: Won, lost: Lost}
"""
DEAL_MAPPING = """\
sales_reps:
  columns: {sales_agent: [owner_id, name], regional_office: region}
  keys_from_names: [owner_id]
customers:
  columns: {account: [customer_id, full_name], sector: industry, office_location: city}
  keys_from_names: [customer_id]
products:
  columns: {product: [product_id, name], series: category, sales_price: list_price}
  keys_from_names: [product_id]
opportunities:
  columns:
    sales_agent: owner_id
    product: product_id
    account: customer_id
    deal_stage: stage
    engage_date: created_at
    close_date: closed_at
    close_value: amount
  keys_from_names: [owner_id, product_id, customer_id]
  values:
    product_id: {GTXPro: GTX Pro, "*": "*"}
"""


def test_a_deal_export_without_stage_history_fills_the_deal_marts(tmp_path, monkeypatch):
    home = tmp_path / "home"
    landing = home / "landing"
    deals = _deal_export(landing)
    (landing / "pipelines.yml").write_text(DEAL_PIPELINES)
    (landing / "mapping.yml").write_text(DEAL_MAPPING)
    _build(home, monkeypatch)

    assert query(home, "SELECT count(*) FROM audit.quarantine") == [(0,)]
    assert query(home, "SELECT count(*) FROM marts.fct_opportunities") == [(len(deals),)]
    # an open deal without an account is a deal; no deal has a stage history
    assert query(
        home,
        "SELECT count(*) FROM marts.fct_opportunities "
        "WHERE customer_id IS NULL AND status = 'open'",
    ) == [(int(deals["account"].isna().sum()),)]
    assert query(home, "SELECT count(*) FROM marts.fct_opportunity_stages") == [(0,)]
    assert query(
        home, "SELECT count(*) FROM marts.fct_opportunities WHERE days_in_current_stage IS NOT NULL"
    ) == [(0,)]

    # the independent count: from the files, with the names as the export writes them
    counted = deals.assign(
        owner=deals["sales_agent"].str.split().str.join(" ").str.lower(),
        product=deals["product"].replace({"GTXPro": "GTX Pro"}).str.lower(),
        won=deals["deal_stage"] == "Won",
        lost=deals["deal_stage"] == "Lost",
    )
    counted["office"] = counted["owner"].map({a.lower(): o for a, (_, o) in AGENTS.items()})
    counted["won_amount"] = counted["close_value"].where(counted["won"], 0)

    for dimension, column in [("owner", "owner"), ("office", "office"), ("product", "product")]:
        expected = counted.groupby(column).agg(
            won=("won", "sum"), lost=("lost", "sum"), won_amount=("won_amount", "sum")
        )
        expected["win_rate"] = expected["won"] / (expected["won"] + expected["lost"])
        built = pd.DataFrame(
            query(
                home,
                "SELECT dimension_value, won_deals, lost_deals, won_amount, win_rate "
                f"FROM marts.fct_deal_outcomes WHERE dimension = '{dimension}'",
            ),
            columns=[column, "won", "lost", "won_amount", "win_rate"],
        ).set_index(column)
        assert set(built.index) == set(expected.index), dimension
        for key, row in expected.iterrows():
            assert (built.loc[key, "won"], built.loc[key, "lost"]) == (row["won"], row["lost"])
            assert float(built.loc[key, "won_amount"]) == pytest.approx(row["won_amount"])
            assert built.loc[key, "win_rate"] == pytest.approx(row["win_rate"])

    # cycle time from engage to close, and the sector of the account
    won = counted[counted["won"]]
    median_days = (
        pd.to_datetime(won["close_date"]) - pd.to_datetime(won["engage_date"])
    ).dt.days.median()
    assert query(
        home, "SELECT median_days_to_win FROM marts.fct_deal_outcomes WHERE dimension = 'all'"
    ) == [(pytest.approx(median_days),)]
    sectors = dict(
        query(
            home,
            "SELECT dimension_value, deals FROM marts.fct_deal_outcomes WHERE dimension = 'sector'",
        )
    )
    assert sectors.pop("unknown") == int(deals["account"].isna().sum())
    assert set(sectors) == set(SECTORS)

    # reach implied by the stage order: won and engaging deals passed Prospecting
    reach = dict(query(home, "SELECT stage, deals_reached FROM marts.fct_stage_reach"))
    stages = deals["deal_stage"].value_counts()
    assert reach == {
        "Prospecting": len(deals),
        "Engaging": int(stages["Engaging"] + stages["Won"]),
        "Won": int(stages["Won"]),
    }
