"""The customers (demographics, purchase rate and lifetime), the product catalogue and
the sales reps of the demo CRM."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from datagen import names, planted
from datagen.spec import DAY_S, GenerationSpec, pick, with_time_of_day


def draw_customers(n: int, rng: np.random.Generator, spec: GenerationSpec) -> dict[str, np.ndarray]:
    days = spec.history_days
    ages = np.arange(18, 86)
    age_weights = np.select(
        [ages < 20, ages <= 30, ages <= 45, ages <= 60, ages <= 75], [1.0, 2.6, 2.0, 1.4, 0.9], 0.3
    )
    age_at_end = rng.choice(ages, size=n, p=age_weights / age_weights.sum())
    birth = days - age_at_end * 365.25 - rng.uniform(0, 365, n)
    before = rng.random(n) < 0.45
    created = np.where(before, -rng.uniform(0, 6 * 365, n), days * np.sqrt(rng.random(n)))
    adult = birth + 18 * 365.25
    created = np.maximum(created, adult + rng.uniform(0, 200, n))
    created = np.minimum(created, days - 1e-3)
    created = with_time_of_day(rng, created)
    created = np.minimum(created, days - 1.0 / DAY_S)

    occupation = pick(rng, names.OCCUPATIONS, names.OCCUPATION_WEIGHTS, n)
    young = age_at_end <= 24
    occupation[young & (rng.random(n) < 0.35)] = "student"
    occupation[(age_at_end >= 63) & (rng.random(n) < 0.8)] = "retired"
    # Young sales staff are common in retail: lift the share of sales among 20-32 year olds.
    occupation[
        (age_at_end >= 20) & (age_at_end <= 32) & (occupation != "student") & (rng.random(n) < 0.25)
    ] = "sales"

    marital = np.empty(n, dtype=object)
    bands = [
        (0, 24, (0.85, 0.13, 0.02, 0.0)),
        (25, 34, (0.45, 0.48, 0.07, 0.0)),
        (35, 54, (0.20, 0.62, 0.15, 0.03)),
        (55, 200, (0.12, 0.58, 0.15, 0.15)),
    ]
    for lo, hi, probs in bands:
        mask = (age_at_end >= lo) & (age_at_end <= hi)
        marital[mask] = pick(rng, ("single", "married", "divorced", "widowed"), probs, mask.sum())

    base_income = np.array([names.OCCUPATION_INCOME[o] for o in occupation], dtype=float)
    age_factor = np.clip(0.75 + (age_at_end - 20) * 0.015, 0.75, 1.3)
    income = np.round(base_income * age_factor * rng.lognormal(0, 0.35, n), -1)

    industry = np.array(
        [
            opts[i % len(opts)]
            for opts, i in zip(
                (names.OCCUPATION_INDUSTRY[o] for o in occupation),
                rng.integers(0, 60, n),
                strict=True,
            )
        ],
        dtype=object,
    )
    region_names = list(names.REGIONS)
    region_idx = rng.choice(
        len(region_names), size=n, p=np.array(names.REGION_WEIGHTS) / sum(names.REGION_WEIGHTS)
    )
    region = np.asarray(region_names, dtype=object)[region_idx]
    city = np.array(
        [names.REGIONS[r][i] for r, i in zip(region, rng.integers(0, 3, n), strict=True)],
        dtype=object,
    )
    gender = pick(rng, ("female", "male", "other", None), (0.49, 0.48, 0.01, 0.02), n)
    channel = pick(rng, names.ACQUISITION_CHANNELS, names.ACQUISITION_WEIGHTS, n)

    # Behaviour: purchase rate per day, mean order value, lifetime.
    rate = rng.gamma(0.9, 0.07 / 0.9, n)
    spend_level = np.exp(rng.normal(np.log(60), 0.5, n)) * (income / 4000.0) ** 0.3
    # Young sales staff are steady mid-level spenders (about 170 a month, little spread),
    # which makes the planted OFFER-PREM segment big enough to learn from a small demo.
    steady = (occupation == "sales") & (age_at_end >= 20) & (age_at_end <= 31)
    rate[steady] = rng.gamma(8.0, 0.11 / 8.0, steady.sum())
    spend_level[steady] = np.exp(rng.normal(np.log(62), 0.2, steady.sum()))
    active_from = np.maximum(created, 0.0)
    death = active_from + rng.exponential(1500.0, n)
    active_to = np.minimum(death, days)
    return {
        "age_at_end": age_at_end,
        "birth": birth,
        "created": created,
        "occupation": occupation,
        "marital": marital,
        "income": income,
        "industry": industry,
        "region": region,
        "region_idx": region_idx,
        "city": city,
        "gender": gender,
        "channel": channel,
        "rate": rate,
        "spend_level": spend_level,
        "active_from": active_from,
        "death": death,
        "active_to": active_to,
    }


def product_catalogue() -> dict[str, list]:
    rows = {
        "product_id": [],
        "name": [],
        "category": [],
        "list_price": [],
        "unit_cost": [],
        "is_offer": [],
    }
    stems = {
        "grocery": "Pantry box",
        "beauty": "Care set",
        "fashion": "Apparel",
        "home": "Home item",
        "sports": "Sports gear",
        "electronics": "Device",
    }
    for i, price in enumerate(names.PRICE_LADDER):
        category = names.CATEGORIES[min(i // 5, len(names.CATEGORIES) - 1)]
        rows["product_id"].append(f"P{i + 1:03d}")
        rows["name"].append(f"{stems[category]} {i + 1}")
        rows["category"].append(category)
        rows["list_price"].append(price)
        rows["unit_cost"].append(round(price * (0.45 + 0.25 * ((i * 7) % 10) / 10), 2))
        rows["is_offer"].append(False)
    for offer in planted.PLANTED_OFFERS:
        price = planted.OFFER_PRICES[offer.product_id]
        rows["product_id"].append(offer.product_id)
        rows["name"].append(offer.name)
        rows["category"].append("services")
        rows["list_price"].append(price)
        rows["unit_cost"].append(round(price * 0.3, 2))
        rows["is_offer"].append(True)
    for product_id, (name, price) in planted.CAMPAIGN_OFFERS.items():
        rows["product_id"].append(product_id)
        rows["name"].append(name)
        rows["category"].append("services")
        rows["list_price"].append(price)
        rows["unit_cost"].append(round(price * 0.35, 2))
        rows["is_offer"].append(True)
    return rows


def draw_sales_reps(n_customers: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = int(np.clip(n_customers // 1500, 6, 300))
    region_names = list(names.REGIONS)
    region = np.array([region_names[i % len(region_names)] for i in range(n)], dtype=object)
    team_no = np.arange(n) // (len(region_names) * 4) + 1
    team = np.array([f"{r} {t}" for r, t in zip(region, team_no, strict=True)], dtype=object)
    rep_names = [
        f"{names.FIRST_NAMES[(i * 7) % 60]} {names.LAST_NAMES[(i * 11 + 3) % 60]}" for i in range(n)
    ]
    owner_ids = [f"R{i + 1:03d}" for i in range(n)]
    # the team's first rep leads it; a rep's manager is the lead's id (a name would be
    # personal data, which the marts never carry)
    lead = {}
    for i, t in enumerate(team):
        lead.setdefault(t, owner_ids[i])
    return {
        "owner_id": np.array(owner_ids, dtype=object),
        "name": np.array(rep_names, dtype=object),
        "manager": np.array([lead[t] for t in team], dtype=object),
        "team": team,
        "region": region,
        # about what a rep of the demo books in a quarter once the pipeline has filled
        "quarterly_quota": np.round(rng.uniform(12_000, 36_000, n), -3),
    }


def sales_quotas(reps: dict[str, np.ndarray], first: date, last: date) -> dict[str, list]:
    """One quota per rep and quarter from `first`'s quarter to `last`'s: the rep's
    quarterly quota, 25% higher in the fourth quarter and 3% higher every quarter after
    the first, set two weeks before the quarter. The first rep has no row for the
    history's first two quarters, so the marts fall back to `sales_reps.quarterly_quota`
    there (`planted.QUOTA_FALLBACK_QUARTERS`)."""
    quarters = []
    q = date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    while q <= last:
        quarters.append(q)
        q = date(q.year + (q.month == 10), (q.month + 2) % 12 + 1, 1)
    rows: dict[str, list] = {"owner_id": [], "quarter_start": [], "quota": [], "updated_at": []}
    for i, (owner, base) in enumerate(zip(reps["owner_id"], reps["quarterly_quota"], strict=True)):
        for k, quarter in enumerate(quarters):
            if i == 0 and k < planted.QUOTA_FALLBACK_QUARTERS:
                continue
            season = 1.25 if quarter.month == 10 else 1.0
            rows["owner_id"].append(owner)
            rows["quarter_start"].append(quarter)
            rows["quota"].append(float(round(base * season * 1.03**k, -3)))
            # set two weeks before the quarter starts
            rows["updated_at"].append(
                datetime.combine(quarter - timedelta(days=14), datetime.min.time())
                + timedelta(hours=9)
            )
    return rows
