"""Generate a realistic CRM, vectorised, deterministic for a seed.

The behaviour is modelled, not decorated: each customer has a purchase rate (gamma
distributed) and a lifetime (exponential), so purchases follow the Pareto/NBD story that
customer-lifetime-value models assume, spend is skewed (a fifth of the customers carry
most of the revenue) and customers churn. Purchases follow a calendar with a yearly wave,
a pre-Christmas peak and busier weekends. Campaigns lift response and adoption in their
target group over their control group, opportunities move through the funnel with the
planted stage conversion rates, and two offers are adopted by a planted rule
(`datagen.planted`). Time is handled as float days since the start of the history.

The history covers the `history_days` days before `end` (the end date itself is not
included, so a default of today gives whole days up to yesterday and nothing lies in the
future of the moment the files are read).

This module runs the steps in order and shapes their arrays into the source contract's
tables; each step is its own module: `spec` (the spec, calendar, clock and random building
blocks), `master_data` (customers, products, sales reps), `purchases` (regular buying and
the planted offer adoption), `campaigns`, `interactions` and `sales` (the funnel).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import names, planted
from datagen.campaigns import draw_campaigns
from datagen.interactions import draw_interactions
from datagen.master_data import (
    draw_customers,
    draw_sales_reps,
    product_catalogue,
    sales_quotas,
)
from datagen.purchases import STATUS_NAMES, Events, planted_adoption, regular_purchases
from datagen.sales import draw_opportunities
from datagen.spec import DAY_S, Calendar, Clock, GeneratedCRM, GenerationSpec, ids, labels, pick
from ingest.contract import CHANNELS, INTERACTION_TYPES

__all__ = ["GeneratedCRM", "GenerationSpec", "generate"]


def generate(spec: GenerationSpec, progress: Callable[[str], None] | None = None) -> GeneratedCRM:
    """Generate every entity of the source contract as Arrow tables."""
    step = progress or (lambda _msg: None)
    seeds = np.random.SeedSequence(spec.seed).spawn(8)
    rngs = [np.random.default_rng(s) for s in seeds]
    cal = Calendar(spec.start, spec.history_days)
    clock = Clock(spec.start)
    days = spec.history_days
    n = spec.customers
    width = max(7, len(str(n)))

    step("customers")
    c = draw_customers(n, rngs[0], spec)
    customer_ids = ids("C", n, width)

    step("products and sales reps")
    prod = product_catalogue()
    n_regular = len(names.PRICE_LADDER)
    offer_index = {pid: i for i, pid in enumerate(prod["product_id"]) if i >= n_regular}
    reps = draw_sales_reps(n, rngs[1])

    step("purchases")
    events = Events()
    regular_purchases(c, rngs[2], cal, n_regular, events)
    step("campaigns")
    campaigns, members = draw_campaigns(c, rngs[3], spec, offer_index, events)
    step("planted offers")
    facts = planted_adoption(c, rngs[4], spec, events, offer_index)
    ev = events.concat()
    order = np.argsort(ev["day"], kind="stable")
    ev = {k: v[order] for k, v in ev.items()}

    step("interactions")
    inter = draw_interactions(c, rngs[5], cal, ev, campaigns, members, days)
    order = np.argsort(inter["day"], kind="stable")
    inter = {k: v[order] for k, v in inter.items()}

    step("opportunities and contracts")
    opp, contracts = draw_opportunities(c, rngs[6], spec, reps, campaigns, members)

    step("tables")
    campaign_ids = pa.array([row["campaign_id"] for row in campaigns], pa.string())
    tables = {
        **_master_tables(spec, clock, rngs[7], c, prod, reps, customer_ids),
        **_event_tables(
            spec, clock, customer_ids, campaign_ids, prod, ev, campaigns, members, inter
        ),
        **_funnel_tables(spec, clock, customer_ids, campaign_ids, campaigns, reps, opp, contracts),
    }
    partitions = {
        "transactions": clock.months(ev["day"]),
        "interactions": clock.months(inter["day"]),
    }
    return GeneratedCRM(
        spec=spec, tables=tables, facts=_facts(spec, tables, ev, facts), partitions=partitions
    )


def _master_tables(spec, clock: Clock, rng, c, prod, reps, customer_ids) -> dict[str, pa.Table]:
    """customers (with names and contact fields drawn here), products, sales_reps and
    their quotas per quarter."""
    n, days = spec.customers, spec.history_days
    tables: dict[str, pa.Table] = {}
    first = pick(rng, names.FIRST_NAMES, np.ones(60), n)
    last = pick(rng, names.LAST_NAMES, np.ones(60), n)
    full_name = pc.binary_join_element_wise(
        pa.array(first, pa.string()), pa.array(last, pa.string()), " "
    )
    email = pc.utf8_lower(
        pc.binary_join_element_wise(
            pa.array(first, pa.string()),
            ".",
            pa.array(last, pa.string()),
            pc.cast(pa.array(np.arange(1, n + 1)), pa.string()),
            "@example.com",
            "",
        )
    )
    phone = pc.binary_join_element_wise(
        "+1-555-",
        pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10**7, n)), pa.string()), 7, "0"),
        "",
    )
    cust_updated = np.minimum(
        c["created"] + rng.uniform(0, 1, n) * (days - c["created"]), days - 1.0 / DAY_S
    )
    cust_updated = np.maximum(cust_updated, c["created"])
    tables["customers"] = pa.table(
        {
            "customer_id": customer_ids,
            "created_at": clock.ts(c["created"]),
            "updated_at": clock.ts(cust_updated),
            "full_name": full_name,
            "email": email,
            "phone": phone,
            "birth_date": clock.dates(c["birth"]),
            "gender": pa.array(c["gender"], pa.string()),
            "marital_status": pa.array(c["marital"], pa.string()),
            "occupation": pa.array(c["occupation"], pa.string()),
            "industry": pa.array(c["industry"], pa.string()),
            "monthly_income": pa.array(c["income"]),
            "region": pa.array(c["region"], pa.string()),
            "city": pa.array(c["city"], pa.string()),
            "acquisition_channel": pa.array(c["channel"], pa.string()),
        }
    )
    tables["products"] = pa.table(
        {
            "product_id": pa.array(prod["product_id"], pa.string()),
            "name": pa.array(prod["name"], pa.string()),
            "category": pa.array(prod["category"], pa.string()),
            "list_price": pa.array(prod["list_price"], pa.float64()),
            "unit_cost": pa.array(prod["unit_cost"], pa.float64()),
            "is_offer": pa.array(prod["is_offer"], pa.bool_()),
        }
    )
    tables["sales_reps"] = pa.table({k: pa.array(v) for k, v in reps.items()})
    quotas = sales_quotas(reps, spec.start, spec.end)
    tables["sales_quotas"] = pa.table(
        {
            "owner_id": pa.array(quotas["owner_id"], pa.string()),
            "quarter_start": pa.array(quotas["quarter_start"], pa.date32()),
            "quota": pa.array(quotas["quota"], pa.float64()),
            "updated_at": pa.array(quotas["updated_at"], pa.timestamp("us")),
        }
    )
    return tables


def _event_tables(
    spec, clock: Clock, customer_ids, campaign_ids, prod, ev, campaigns, members, inter
) -> dict[str, pa.Table]:
    """transactions, campaigns, campaign_members and interactions."""
    days = spec.history_days
    tables: dict[str, pa.Table] = {}
    product_ids = pa.array(prod["product_id"], pa.string())
    n_tx = ev["day"].size
    tables["transactions"] = pa.table(
        {
            "transaction_id": ids("T", n_tx, 10),
            "customer_id": customer_ids.take(pa.array(ev["customer"])),
            "product_id": product_ids.take(pa.array(ev["product"])),
            "occurred_at": clock.ts(ev["day"]),
            "quantity": pa.array(ev["quantity"]),
            "amount": pa.array(ev["amount"]),
            "status": labels(ev["status"], STATUS_NAMES),
            "updated_at": clock.ts(np.minimum(ev["updated"], days - 1.0 / DAY_S)),
        }
    )

    month_name = [
        (spec.start + timedelta(days=int(max(row["planned_start"], 0)))).strftime("%b %Y")
        for row in campaigns
    ]
    tables["campaigns"] = pa.table(
        {
            "campaign_id": campaign_ids,
            "name": pa.array(
                [
                    f"{m} {row['objective'].replace('_', '-')} "
                    f"{planted.CAMPAIGN_OFFERS[row['offer_product_id']][0]} "
                    f"({row['channel']}, {row['region']})"
                    for m, row in zip(month_name, campaigns, strict=True)
                ]
            ),
            "channel": pa.array([row["channel"] for row in campaigns]),
            "region": pa.array([row["region"] for row in campaigns]),
            "offer_product_id": pa.array([row["offer_product_id"] for row in campaigns]),
            "objective": pa.array([row["objective"] for row in campaigns]),
            "planned_budget": pa.array([row["planned_budget"] for row in campaigns]),
            "actual_cost": pa.array([row["actual_cost"] for row in campaigns]),
            "planned_start": clock.dates(np.array([row["planned_start"] for row in campaigns])),
            "planned_end": clock.dates(np.array([row["planned_end"] for row in campaigns])),
            "actual_start": clock.dates(np.array([row["actual_start"] for row in campaigns])),
            "actual_end": clock.dates(np.array([row["actual_end"] for row in campaigns])),
            "status": pa.array([row["status"] for row in campaigns]),
            "approved_at": clock.ts(
                np.array(
                    [
                        row["approved_at"] if row["approved_at"] < days else np.nan
                        for row in campaigns
                    ]
                )
            ),
            "updated_at": clock.ts(np.array([row["updated_at"] for row in campaigns])),
        }
    )

    m_camp = np.concatenate([m["campaign"] for m in members]) if members else np.zeros(0, np.int64)
    m_cust = np.concatenate([m["customer"] for m in members]) if members else np.zeros(0, np.int64)
    tables["campaign_members"] = pa.table(
        {
            "campaign_id": campaign_ids.take(pa.array(m_camp, pa.int64())),
            "customer_id": customer_ids.take(pa.array(m_cust, pa.int64())),
            "added_at": clock.ts(np.concatenate([m["added_at"] for m in members])),
            "member_group": pa.array(
                np.where(np.concatenate([m["control"] for m in members]), "control", "target")
            ),
            "source": pa.array(np.concatenate([m["source"] for m in members]), pa.string()),
            "responded_at": clock.ts(np.concatenate([m["responded_at"] for m in members])),
        }
    )

    n_int = inter["day"].size
    camp_idx = inter["campaign"]
    tables["interactions"] = pa.table(
        {
            "interaction_id": ids("I", n_int, 11),
            "customer_id": customer_ids.take(pa.array(inter["customer"])),
            "occurred_at": clock.ts(inter["day"]),
            "channel": labels(inter["channel"], CHANNELS),
            "interaction_type": labels(inter["kind"], INTERACTION_TYPES),
            "campaign_id": campaign_ids.take(
                pa.array(np.where(camp_idx < 0, 0, camp_idx), mask=camp_idx < 0)
            ),
            "updated_at": clock.ts(inter["day"]),
        }
    )
    return tables


def _funnel_tables(
    spec, clock: Clock, customer_ids, campaign_ids, campaigns, reps, opp, contracts
) -> dict[str, pa.Table]:
    """opportunities, opportunity_stage_history and contracts."""
    days = spec.history_days
    tables: dict[str, pa.Table] = {}
    n_opp = opp["customer"].size
    opp_ids = ids("O", n_opp, 8)
    owner_ids = pa.array(reps["owner_id"], pa.string())
    order = np.lexsort((opp["hist_day"], opp["hist_opp"]))
    # the stage each deal is in at the end, as a CRM reports it beside the history
    last = np.r_[opp["hist_opp"][order][1:] != opp["hist_opp"][order][:-1], True]
    current_stage = np.full(n_opp, None, dtype=object)
    current_stage[opp["hist_opp"][order][last]] = opp["hist_stage"][order][last]
    offers = [row["offer_product_id"] for row in campaigns] or [None]
    tables["opportunities"] = pa.table(
        {
            "opportunity_id": opp_ids,
            "customer_id": customer_ids.take(pa.array(opp["customer"])),
            "campaign_id": campaign_ids.take(
                pa.array(
                    np.where(opp["campaign"] < 0, 0, opp["campaign"]), mask=opp["campaign"] < 0
                )
            ),
            "owner_id": owner_ids.take(pa.array(opp["owner"])),
            # what a campaign's deal sells is the campaign's offer
            "product_id": pa.array(offers, pa.string()).take(
                pa.array(
                    np.where(opp["campaign"] < 0, 0, opp["campaign"]), mask=opp["campaign"] < 0
                )
            ),
            "pipeline_id": pa.array(np.full(n_opp, "sales", dtype=object), pa.string()),
            "stage": pa.array(current_stage, pa.string()),
            "created_at": clock.ts(opp["created"]),
            "amount": pa.array(opp["amount"]),
            "status": pa.array(opp["status"], pa.string()),
            "closed_at": clock.ts(opp["closed"]),
            "lost_to_competitor": pa.array(opp["lost_to"], pa.string()),
            "updated_at": clock.ts(np.minimum(opp["updated"], days - 1.0 / DAY_S)),
        }
    )
    tables["opportunity_stage_history"] = pa.table(
        {
            "opportunity_id": opp_ids.take(pa.array(opp["hist_opp"][order])),
            "stage": pa.array(opp["hist_stage"][order], pa.string()),
            "entered_at": clock.ts(opp["hist_day"][order]),
        }
    )
    n_con = contracts["signed"].size
    tables["contracts"] = pa.table(
        {
            "contract_id": ids("K", n_con, 8),
            "opportunity_id": opp_ids.take(
                pa.array(
                    np.where(contracts["opportunity"] < 0, 0, contracts["opportunity"]),
                    mask=contracts["opportunity"] < 0,
                )
            ),
            "customer_id": customer_ids.take(pa.array(contracts["customer"])),
            "signed_at": clock.ts(contracts["signed"]),
            "amount": pa.array(contracts["amount"]),
            "updated_at": clock.ts(contracts["signed"]),
        }
    )
    return tables


def _facts(spec, tables, ev, planted_facts: dict) -> dict:
    """What the generator planted and produced, for the manifest and the tests."""
    n = spec.customers
    revenue = np.bincount(
        ev["customer"][ev["status"] == 0], weights=ev["amount"][ev["status"] == 0], minlength=n
    )
    top = np.sort(revenue)[::-1]
    top_share = float(top[: max(1, n // 5)].sum() / max(top.sum(), 1e-9))
    facts = {
        "customers": n,
        "seed": spec.seed,
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "rows": {name: t.num_rows for name, t in tables.items()},
        "revenue_share_top_20pct_customers": round(top_share, 4),
        "planted_offers": planted_facts,
        "campaign_adoption": {
            "target": planted.CAMPAIGN_TARGET_ADOPTION,
            "control": planted.CAMPAIGN_CONTROL_ADOPTION,
            "window_days": planted.CAMPAIGN_ADOPTION_WINDOW_DAYS,
        },
        "stage_conversion": planted.STAGE_CONVERSION,
        "stage_median_days": planted.STAGE_MEDIAN_DAYS,
    }
    return facts
