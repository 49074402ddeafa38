"""The demo CRM: deterministic, consistent, realistic, and carrying its planted structure."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from datagen import planted
from datagen.dirty import DIRTY_CLASSES, inject
from datagen.generator import GenerationSpec, generate

END = date(2026, 6, 1)


@pytest.fixture(scope="module")
def crm():
    return generate(GenerationSpec(customers=20_000, seed=11, end=END))


def frame(crm, entity: str) -> pd.DataFrame:
    return crm.tables[entity].to_pandas()


def test_same_seed_gives_identical_tables():
    a = generate(GenerationSpec(customers=1_500, seed=5, end=END))
    b = generate(GenerationSpec(customers=1_500, seed=5, end=END))
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name


def test_another_seed_gives_other_data():
    a = generate(GenerationSpec(customers=1_500, seed=5, end=END))
    b = generate(GenerationSpec(customers=1_500, seed=6, end=END))
    assert not a.tables["transactions"].equals(b.tables["transactions"])


def test_every_entity_of_the_contract_is_generated(crm):
    from ingest.contract import DELETED_AT, ENTITIES

    assert set(crm.tables) == set(ENTITIES)
    for name, entity in ENTITIES.items():
        # the demo deletes nothing: no soft-delete column
        assert set(crm.tables[name].column_names) == set(entity.column_names) - {DELETED_AT}
        assert crm.tables[name].num_rows > 0, name


def test_history_is_two_years_and_ends_before_the_end_date(crm):
    tx = frame(crm, "transactions")
    assert tx.occurred_at.max() < pd.Timestamp(END)
    assert tx.occurred_at.min() >= pd.Timestamp(END) - pd.Timedelta(days=730)
    for entity, column in [
        ("interactions", "occurred_at"),
        ("contracts", "signed_at"),
        ("opportunity_stage_history", "entered_at"),
        ("customers", "created_at"),
    ]:
        assert frame(crm, entity)[column].max() < pd.Timestamp(END), entity


def test_keys_are_unique_and_references_resolve(crm):
    from ingest.contract import ENTITIES

    for name, entity in ENTITIES.items():
        df = frame(crm, name)
        assert not df.duplicated(list(entity.key)).any(), name
        for ref in entity.references:
            values = df[ref.column].dropna()
            parents = set(frame(crm, ref.parent)[ref.parent_column])
            assert values.isin(parents).all(), f"{name}.{ref.column}"


def test_revenue_is_skewed_towards_few_customers(crm):
    tx = frame(crm, "transactions")
    revenue = (
        tx[tx.status == "completed"]
        .groupby("customer_id")
        .amount.sum()
        .sort_values(ascending=False)
    )
    revenue = revenue.reindex(frame(crm, "customers").customer_id, fill_value=0).sort_values(
        ascending=False
    )
    top_fifth = revenue.iloc[: len(revenue) // 5].sum() / revenue.sum()
    assert top_fifth > 0.6


def test_sales_peak_before_christmas(crm):
    tx = frame(crm, "transactions")
    daily = tx.groupby(tx.occurred_at.dt.date).size()
    dates = pd.to_datetime(pd.Series(daily.index))
    peak = daily.values[((dates.dt.month == 12) & (dates.dt.day <= 20)).values].mean()
    spring = daily.values[(dates.dt.month.isin([3, 4])).values].mean()
    assert peak > 1.15 * spring


def test_customers_churn(crm):
    tx = frame(crm, "transactions")
    last = tx.groupby("customer_id").occurred_at.max()
    lapsed = (last < pd.Timestamp(END) - pd.Timedelta(days=180)).mean()
    assert 0.1 < lapsed < 0.6


def _feature_frame(crm, as_of: date) -> pd.DataFrame:
    """Age, occupation, 6-month monthly spend, income, marital status and tenure on `as_of`,
    computed from the generated tables with the definitions in datagen.planted, and whether
    each customer adopts the planted offers in the 90 days after it. Customers who adopted
    before are left out, as the label design says."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    horizon_end = cutoff + pd.Timedelta(days=planted.ADOPTION_WINDOW_DAYS)
    customers = frame(crm, "customers")
    customers = customers[customers.created_at < cutoff].copy()
    tx = frame(crm, "transactions")
    in_window = (tx.occurred_at >= cutoff - pd.Timedelta(days=180)) & (tx.occurred_at < cutoff)
    completed = (tx.status == "completed") | (
        (tx.status != "completed") & (tx.updated_at >= cutoff)
    )
    spend = tx[in_window & completed].groupby("customer_id").amount.sum() / 6
    customers["spend"] = customers.customer_id.map(spend).fillna(0)
    birth = pd.to_datetime(customers.birth_date)
    customers["age"] = np.floor((pd.Timestamp(as_of) - birth).dt.days / 365.25)
    customers["tenure"] = (pd.Timestamp(as_of) - customers.created_at.dt.normalize()).dt.days
    for offer, column in ((planted.PREMIUM, "adopt_prem"), (planted.INSURANCE, "adopt_ins")):
        t = tx[(tx.product_id == offer.product_id) & (tx.status == "completed")]
        before = set(t[t.occurred_at < cutoff].customer_id)
        during = set(t[(t.occurred_at >= cutoff) & (t.occurred_at < horizon_end)].customer_id)
        customers[column] = customers.customer_id.isin(during)
        customers[column + "_before"] = customers.customer_id.isin(before)
    return customers


def _window_starts() -> list[date]:
    first = pd.Timestamp(END) - pd.Timedelta(days=planted.OFFER_LAUNCH_DAYS_BEFORE_END)
    return [
        (first + pd.Timedelta(days=w * planted.ADOPTION_WINDOW_DAYS)).date()
        for w in range(planted.ADOPTION_WINDOWS)
    ]


def test_the_planted_offers_launch_at_the_first_window(crm):
    tx = frame(crm, "transactions")
    launch = pd.Timestamp(_window_starts()[0]) + pd.Timedelta(days=1)
    for offer in planted.PLANTED_OFFERS:
        assert tx[tx.product_id == offer.product_id].occurred_at.min() >= launch


@pytest.mark.parametrize("window", range(planted.ADOPTION_WINDOWS))
def test_the_planted_premium_rule_holds_in_each_window(crm, window):
    df = _feature_frame(crm, _window_starts()[window])
    df = df[~df.adopt_prem_before]
    segment = (
        df.age.between(20, 30) & (df.occupation == "sales") & (df.spend >= 150) & (df.spend < 200)
    )
    assert segment.sum() >= 150, "the segment must be big enough to learn from"
    assert df.adopt_prem[segment].mean() == pytest.approx(0.9, abs=0.06)  # about 3 SE at n = 200
    active = df.spend > 0
    assert df.adopt_prem[~segment & active].mean() == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("window", range(planted.ADOPTION_WINDOWS))
def test_the_planted_insurance_rule_holds_in_each_window(crm, window):
    df = _feature_frame(crm, _window_starts()[window])
    df = df[~df.adopt_ins_before]
    segment = (df.marital_status == "married") & (df.monthly_income >= 5000) & (df.tenure >= 365)
    assert df.adopt_ins[segment].mean() == pytest.approx(0.6, abs=0.06)
    assert df.adopt_ins[~segment & (df.spend > 0)].mean() == pytest.approx(0.04, abs=0.015)


def test_campaigns_lift_adoption_in_the_target_group_over_control(crm):
    members = frame(crm, "campaign_members")
    campaigns = frame(crm, "campaigns").set_index("campaign_id")
    tx = frame(crm, "transactions")
    members = members.join(campaigns[["offer_product_id", "actual_start"]], on="campaign_id")
    members = members[members.actual_start.notna()]
    window_end = pd.to_datetime(members.actual_start) + pd.Timedelta(days=30)
    adopt = tx[tx.status == "completed"][["customer_id", "product_id", "occurred_at"]]
    merged = members.merge(
        adopt,
        left_on=["customer_id", "offer_product_id"],
        right_on=["customer_id", "product_id"],
        how="left",
    )
    merged["adopted"] = (merged.occurred_at >= pd.to_datetime(merged.actual_start)) & (
        merged.occurred_at < window_end.reindex(merged.index).values
    )
    rates = merged.groupby("member_group").adopted.mean()
    assert rates["target"] == pytest.approx(planted.CAMPAIGN_TARGET_ADOPTION, abs=0.02)
    assert rates["control"] < rates["target"] / 2
    responded = members.groupby("member_group").responded_at.apply(lambda s: s.notna().mean())
    assert responded["target"] > 2 * responded["control"]


def test_the_funnel_converts_at_the_planted_rates(crm):
    history = frame(crm, "opportunity_stage_history")
    opps = frame(crm, "opportunities").set_index("opportunity_id")
    entered = history.groupby("stage").opportunity_id.apply(set)
    order = ["lead", "qualified", "proposal", "negotiation", "won"]
    closed = set(opps[opps.status != "open"].index)
    # Conversion among opportunities that left the stage: moved on, or closed while in it.
    rates = {}
    for stage, nxt in zip(order, order[1:], strict=False):
        advanced = entered[stage] & entered[nxt]
        stuck = (entered[stage] - entered[nxt]) & closed
        rates[stage] = len(advanced) / (len(advanced) + len(stuck))
    for stage, rate in planted.STAGE_CONVERSION.items():
        assert rates[stage] == pytest.approx(rate, abs=0.06), stage
    assert rates["lead"] * rates["qualified"] == pytest.approx(0.5, abs=0.06)
    assert len(entered["lead"]) == len(opps)
    won = opps[opps.status == "won"]
    assert len(frame(crm, "contracts").dropna(subset=["opportunity_id"])) == len(won)
    assert opps[opps.status == "lost"].lost_to_competitor.notna().mean() == pytest.approx(
        0.55, abs=0.1
    )


def test_dirty_rows_are_added_beside_the_clean_ones_with_expected_counts():
    crm = generate(GenerationSpec(customers=2_000, seed=3, end=END))
    clean = {name: t.num_rows for name, t in crm.tables.items()}
    expected = inject(crm, 0.02, seed=3)
    for entity, outcome in expected.items():
        added = crm.tables[entity].num_rows - clean[entity]
        assert outcome["clean_rows"] == clean[entity]
        assert added == outcome["late_updates"] + sum(outcome["quarantine"].values())
        codes = {code for _, code in DIRTY_CLASSES[entity] if code}
        assert set(outcome["quarantine"]) == codes
    tx = crm.tables["transactions"]
    assert pc.sum(pc.is_null(tx["amount"])).as_py() >= 1


def test_nothing_happens_to_a_customer_before_they_exist(crm):
    created = frame(crm, "customers").set_index("customer_id")[["created_at"]]
    created = created.rename(columns={"created_at": "customer_created_at"})
    for entity, column in [
        ("transactions", "occurred_at"),
        ("interactions", "occurred_at"),
        ("opportunities", "created_at"),
        ("contracts", "signed_at"),
        ("campaign_members", "added_at"),
    ]:
        joined = frame(crm, entity).join(created, on="customer_id")
        assert (joined[column] >= joined.customer_created_at).all(), entity


def test_the_demo_funnel_is_the_built_in_pipelines_file(crm):
    """The demo writes its deals in the built-in pipeline's stages: the two must agree."""
    from crm import sales_pipelines
    from crm.settings import PACKAGE_PIPELINES_FILE
    from datagen.sales import STAGE_ORDER

    (sales,) = sales_pipelines.load(PACKAGE_PIPELINES_FILE).pipelines
    assert tuple(s.name for s in sales.open_stages) == STAGE_ORDER
    written = set(frame(crm, "opportunity_stage_history")["stage"])
    assert written <= {s.name for s in sales.stages}
    assert set(frame(crm, "opportunities")["pipeline_id"]) == {sales.pipeline_id}
