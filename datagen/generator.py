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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen import names, planted
from ingest.contract import CHANNELS, INTERACTION_TYPES

DAY_S = 86_400


@dataclass(frozen=True)
class GenerationSpec:
    customers: int
    seed: int = 42
    end: date = field(default_factory=lambda: datetime.now(UTC).date())
    history_days: int = 730

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.history_days)


@dataclass
class GeneratedCRM:
    spec: GenerationSpec
    tables: dict[str, pa.Table]
    facts: dict
    #: For entities written as monthly files: each row's month (months since 1970-01).
    partitions: dict[str, np.ndarray] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers


class Calendar:
    """Seasonal intensity over the history; samples event days proportional to it."""

    def __init__(self, start: date, days: int):
        self.start = start
        self.days = days
        ordinal = np.arange(days) + start.toordinal()
        dates = [date.fromordinal(int(o)) for o in ordinal]
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        month = np.array([d.month for d in dates])
        dom = np.array([d.day for d in dates])
        weekday = np.array([d.weekday() for d in dates])
        weight = 1.0 + 0.15 * np.sin(2 * np.pi * (doy - 100) / 365.25)
        weight += 0.55 * (((month == 11) & (dom >= 20)) | ((month == 12) & (dom <= 24)))
        weight *= np.array([0.95, 0.95, 0.97, 1.0, 1.08, 1.25, 0.9])[weekday]
        weight /= weight.mean()
        self.cum = np.concatenate([[0.0], np.cumsum(weight)])
        self.grid = np.arange(days + 1, dtype=float)

    def mass(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.interp(b, self.grid, self.cum) - np.interp(a, self.grid, self.cum)

    def sample(self, a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Days in [a, b) drawn with the seasonal intensity (u uniform in [0, 1))."""
        ca = np.interp(a, self.grid, self.cum)
        cb = np.interp(b, self.grid, self.cum)
        return np.interp(ca + u * (cb - ca), self.cum, self.grid)


_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 6, 7, 6.5, 5.5, 5, 5.5, 6.5, 8, 8.5, 8, 6, 4, 2],
    dtype=float,
)


def _with_time_of_day(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Keep the day, draw a realistic hour and minute within it."""
    hours = rng.choice(24, size=days.size, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    seconds = hours * 3600 + rng.integers(0, 3600, size=days.size)
    return np.floor(days) + seconds / DAY_S


def _ids(prefix: str, count: int, width: int, start: int = 1) -> pa.Array:
    numbers = pa.array(np.arange(start, start + count, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width, "0"), "")


def _pick(rng: np.random.Generator, options, weights, size: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.asarray(options, dtype=object)[rng.choice(len(options), size=size, p=w / w.sum())]


class _Clock:
    """Converts float days since the start of the history to timestamps and dates."""

    def __init__(self, start: date):
        self.origin_us = (
            int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 10**6
        )
        self.start = start

    def ts(self, days: np.ndarray) -> pa.Array:
        days = np.asarray(days, dtype=float)
        mask = np.isnan(days)
        micros = self.origin_us + np.round(np.nan_to_num(days) * DAY_S).astype(np.int64) * 10**6
        return pa.array(micros, type=pa.timestamp("us"), mask=mask)

    def dates(self, days: np.ndarray) -> pa.Array:
        days = np.asarray(days, dtype=float)
        mask = np.isnan(days)
        ordinal = (self.start - date(1970, 1, 1)).days + np.floor(np.nan_to_num(days)).astype(
            np.int32
        )
        return pa.array(ordinal, type=pa.date32(), mask=mask)

    def months(self, days: np.ndarray) -> np.ndarray:
        """Calendar month of each day as an int (months since 1970-01), for partitioning."""
        stamps = np.datetime64(self.start.isoformat(), "D") + np.floor(days).astype(
            "timedelta64[D]"
        )
        return stamps.astype("datetime64[M]").astype(np.int64)


# ----------------------------------------------------------------------------- entities


def _customers(n: int, rng: np.random.Generator, spec: GenerationSpec) -> dict[str, np.ndarray]:
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
    created = _with_time_of_day(rng, created)
    created = np.minimum(created, days - 1.0 / DAY_S)

    occupation = _pick(rng, names.OCCUPATIONS, names.OCCUPATION_WEIGHTS, n)
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
        marital[mask] = _pick(rng, ("single", "married", "divorced", "widowed"), probs, mask.sum())

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
    gender = _pick(rng, ("female", "male", "other", None), (0.49, 0.48, 0.01, 0.02), n)
    channel = _pick(rng, names.ACQUISITION_CHANNELS, names.ACQUISITION_WEIGHTS, n)

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


def _products() -> dict[str, list]:
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


def _sales_reps(n_customers: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = int(np.clip(n_customers // 1500, 6, 300))
    region_names = list(names.REGIONS)
    region = np.array([region_names[i % len(region_names)] for i in range(n)], dtype=object)
    team_no = np.arange(n) // (len(region_names) * 4) + 1
    return {
        "owner_id": np.array([f"R{i + 1:03d}" for i in range(n)], dtype=object),
        "name": np.array(
            [
                f"{names.FIRST_NAMES[(i * 7) % 60]} {names.LAST_NAMES[(i * 11 + 3) % 60]}"
                for i in range(n)
            ],
            dtype=object,
        ),
        "team": np.array([f"{r} {t}" for r, t in zip(region, team_no, strict=True)], dtype=object),
        "region": region,
        "quarterly_quota": np.round(rng.uniform(40_000, 120_000, n), -3),
    }


@dataclass
class _Events:
    """Transactions accumulated from several behaviours before ids are assigned."""

    customer: list = field(default_factory=list)
    product: list = field(default_factory=list)
    day: list = field(default_factory=list)
    quantity: list = field(default_factory=list)
    amount: list = field(default_factory=list)
    status: list = field(default_factory=list)
    updated: list = field(default_factory=list)

    def add(self, customer, product, day, quantity, amount, status, updated):
        self.customer.append(np.asarray(customer, dtype=np.int64))
        self.product.append(np.asarray(product, dtype=np.int64))
        self.day.append(np.asarray(day, dtype=float))
        self.quantity.append(np.asarray(quantity, dtype=np.int64))
        self.amount.append(np.asarray(amount, dtype=float))
        self.status.append(np.asarray(status, dtype=np.int8))
        self.updated.append(np.asarray(updated, dtype=float))

    def concat(self) -> dict[str, np.ndarray]:
        return {
            k: np.concatenate(getattr(self, k))
            for k in ("customer", "product", "day", "quantity", "amount", "status", "updated")
        }


STATUS_NAMES = ("completed", "refunded", "cancelled")


def _regular_purchases(c, rng, cal: Calendar, n_regular: int, events: _Events) -> None:
    n = c["rate"].size
    mass = cal.mass(c["active_from"], c["active_to"])
    counts = rng.poisson(c["rate"] * np.maximum(mass, 0.0))
    cust = np.repeat(np.arange(n), counts)
    day = cal.sample(c["active_from"][cust], c["active_to"][cust], rng.random(cust.size))
    day = np.minimum(_with_time_of_day(rng, day), cal.days - 1.0 / DAY_S)
    # the hour drawn on the day the customer was created may fall before the creation
    day = np.maximum(day, np.minimum(c["created"][cust] + 60.0 / DAY_S, cal.days - 1.0 / DAY_S))
    value = rng.gamma(4.0, c["spend_level"][cust] / 4.0)
    quantity = rng.choice([1, 2, 3], size=cust.size, p=[0.72, 0.20, 0.08])
    prices = np.asarray(names.PRICE_LADDER)
    product = np.clip(np.searchsorted(prices, value / quantity), 0, n_regular - 1)
    product = np.clip(product - (rng.random(cust.size) < 0.5), 0, n_regular - 1)
    discount = np.where(rng.random(cust.size) < 0.8, 1.0, rng.choice([0.9, 0.8], size=cust.size))
    amount = np.round(prices[product] * quantity * discount, 2)
    u = rng.random(cust.size)
    status = np.where(u < 0.03, 1, np.where(u < 0.05, 2, 0)).astype(np.int8)
    delay = np.where(
        status == 1,
        rng.uniform(1, 30, cust.size),
        np.where(status == 2, rng.uniform(0, 2, cust.size), rng.uniform(0, 0.08, cust.size)),
    )
    updated = day + delay
    late = updated >= cal.days
    status[late] = 0  # the refund or cancellation has not happened yet
    updated = np.where(late, day, updated)
    events.add(cust, product, day, quantity, amount, status, updated)


def _offer_events(events: _Events, cust, product_idx, day, price) -> None:
    k = len(cust)
    events.add(
        cust, np.full(k, product_idx), day, np.ones(k), np.full(k, price), np.zeros(k), day + 0.01
    )


# ----------------------------------------------------------------------------- campaigns


CHANNEL_RESPONSE = {
    "email": 0.06,
    "sms": 0.04,
    "phone": 0.15,
    "social": 0.03,
    "event": 0.25,
    "web": 0.05,
    "app": 0.05,
}
CHANNEL_COST = {  # (cost per contact, fixed cost)
    "email": (0.15, 2000),
    "sms": (0.25, 1000),
    "phone": (6.0, 5000),
    "social": (1.0, 5000),
    "event": (40.0, 10000),
    "web": (0.5, 3000),
    "app": (0.3, 2000),
}
OBJECTIVES = ("cross_sell", "retention", "upsell", "acquisition")


def _campaigns(c, rng, spec: GenerationSpec, offer_index: dict[str, int], events: _Events):
    """Campaigns, their members and responses, and the adoptions they cause."""
    days = spec.history_days
    n = c["rate"].size
    channels = list(CHANNEL_RESPONSE)
    channel_w = [0.35, 0.15, 0.10, 0.15, 0.05, 0.10, 0.10]
    region_names = list(names.REGIONS)
    offers = list(planted.CAMPAIGN_OFFERS)
    n_past = max(4, days // 30 - 1)
    camp, members = [], []
    adopted: dict[str, np.ndarray] = {o: np.zeros(n, dtype=bool) for o in offers}
    cancelled_k = int(rng.integers(3, n_past))
    for k in range(n_past + 2):
        future = k >= n_past
        start = 20 + k * 29 + rng.integers(-5, 6)
        if future:
            start = days + 10 + (k - n_past) * 25
        length = int(rng.integers(14, 46))
        channel = str(_pick(rng, channels, channel_w, 1)[0])
        region = "National" if rng.random() < 0.3 else region_names[int(rng.integers(0, 5))]
        offer = offers[k % len(offers)]
        objective = OBJECTIVES[int(rng.integers(0, 4))] if k % 3 else "cross_sell"
        row = {
            "campaign_id": f"CMP{k + 1:04d}",
            "channel": channel,
            "region": region,
            "offer_product_id": offer,
            "objective": objective,
            "planned_start": float(start),
            "planned_end": float(start + length),
            "actual_start": np.nan,
            "actual_end": np.nan,
            "approved_at": float(start - rng.uniform(7, 21)),
            "actual_cost": 0.0,
        }
        if future:
            row["status"] = "approved" if k == n_past else "draft"
            if row["status"] == "draft":
                row["approved_at"] = np.nan
            row["planned_budget"] = float(np.round(rng.uniform(5_000, 40_000), -2))
            row["updated_at"] = float(days - rng.uniform(0.5, 5))
            camp.append(row)
            continue
        if k == cancelled_k:
            row["status"] = "cancelled"
            row["planned_budget"] = float(np.round(rng.uniform(5_000, 30_000), -2))
            row["actual_cost"] = float(np.round(row["planned_budget"] * 0.05, -1))
            row["updated_at"] = float(row["planned_start"] - 2)
            camp.append(row)
            continue
        actual_start = float(start + rng.integers(-2, 6))
        actual_end = float(row["planned_end"] + rng.integers(-3, 8))
        row["actual_start"] = actual_start
        row["status"] = "completed" if actual_end < days else "running"
        row["actual_end"] = actual_end if actual_end < days else np.nan

        # members are added up to 5 days before the start: they must exist by then
        alive = (c["created"] < actual_start - 5) & (c["death"] > actual_start) & ~adopted[offer]
        if region != "National":
            alive &= c["region"] == region
        share = rng.uniform(0.04, 0.15)
        chosen = np.flatnonzero(alive & (rng.random(n) < share))
        control = rng.random(chosen.size) < planted.CAMPAIGN_CONTROL_SHARE
        p_adopt = np.where(
            control, planted.CAMPAIGN_CONTROL_ADOPTION, planted.CAMPAIGN_TARGET_ADOPTION
        )
        adopts = rng.random(chosen.size) < p_adopt
        r_target = CHANNEL_RESPONSE[channel]
        r_group = np.where(control, r_target * 0.25, r_target)
        q = np.clip((r_group - 0.6 * p_adopt) / (1 - p_adopt), 0.003, None)
        responds = rng.random(chosen.size) < np.where(adopts, 0.6, q)
        responded_at = actual_start + rng.uniform(0.1, 21, chosen.size)
        adopt_at = np.where(
            responds,
            responded_at + rng.uniform(0, 5, chosen.size),
            actual_start + rng.uniform(0, planted.CAMPAIGN_ADOPTION_WINDOW_DAYS, chosen.size),
        )
        adopt_at = np.minimum(adopt_at, actual_start + planted.CAMPAIGN_ADOPTION_WINDOW_DAYS - 0.01)
        responded_at = np.where(responds & (responded_at < days), responded_at, np.nan)
        real_adopt = adopts & (adopt_at < days) & (adopt_at < c["death"][chosen])
        adopted[offer][chosen[real_adopt]] = True
        _offer_events(
            events,
            chosen[real_adopt],
            offer_index[offer],
            _with_time_of_day(rng, adopt_at[real_adopt]),
            planted.OFFER_PRICES[offer],
        )
        added_at = actual_start - rng.uniform(1, 5, chosen.size)
        members.append(
            {
                "campaign": np.full(chosen.size, k),
                "customer": chosen,
                "control": control,
                "added_at": added_at,
                "responded_at": responded_at,
                "source": _pick(
                    rng,
                    ("segment_rule", "model_score", "purchase_history", "manual_list"),
                    (0.4, 0.25, 0.25, 0.1),
                    chosen.size,
                ),
            }
        )
        per_contact, fixed = CHANNEL_COST[channel]
        budget = float(np.round((chosen.size * per_contact + fixed) * rng.uniform(0.9, 1.2), -2))
        row["planned_budget"] = budget
        progress = 1.0 if row["status"] == "completed" else min(1.0, (days - actual_start) / length)
        row["actual_cost"] = float(np.round(budget * rng.uniform(0.85, 1.25) * progress, -1))
        row["updated_at"] = float(
            min(days - 0.01, (actual_end if actual_end < days else days - 0.5) + 1)
        )
        camp.append(row)

    # Organic adoption of the campaign offers, about 1% a year among living customers.
    for offer in offers:
        cand = np.flatnonzero(~adopted[offer])
        span = c["active_to"][cand] - c["active_from"][cand]
        takes = rng.random(cand.size) < 1 - np.exp(-0.01 * np.maximum(span, 0) / 365)
        who = cand[takes]
        when = c["active_from"][who] + rng.random(who.size) * (
            c["active_to"][who] - c["active_from"][who]
        )
        when = np.minimum(_with_time_of_day(rng, when), days - 1.0 / DAY_S)
        adopted[offer][who] = True
        _offer_events(events, who, offer_index[offer], when, planted.OFFER_PRICES[offer])
    return camp, members


# ----------------------------------------------------------------------------- planted offers


def _planted_adoption(c, rng, spec: GenerationSpec, events: _Events, offer_index) -> dict:
    """Adopt OFFER-PREM and OFFER-INS by their planted rules, window by window.

    At the start T of each adoption window, the rule is evaluated on that day's attributes
    (age, 6-month spend, tenure) for the customers known then who have not adopted yet;
    they adopt within the next `ADOPTION_WINDOW_DAYS` at the segment rate or the base rate.
    A model trained on one window can so be evaluated on the next.
    """
    days = spec.history_days
    n = c["rate"].size
    adopted = {offer.product_id: np.zeros(n, dtype=bool) for offer in planted.PLANTED_OFFERS}
    facts: dict = {"windows": []}
    for window in range(planted.ADOPTION_WINDOWS):
        as_of_day = (
            days - planted.OFFER_LAUNCH_DAYS_BEFORE_END + window * planted.ADOPTION_WINDOW_DAYS
        )
        cutoff = float(as_of_day + 1)  # events before 00:00 after T are known on T
        window_end = min(cutoff + planted.ADOPTION_WINDOW_DAYS, float(days))
        ev = events.concat()  # includes the adoptions of earlier windows
        in_spend_window = (ev["day"] >= cutoff - planted.SPEND_WINDOW_DAYS) & (ev["day"] < cutoff)
        completed_as_of = (ev["status"] == 0) | ((ev["status"] > 0) & (ev["updated"] >= cutoff))
        keep = in_spend_window & completed_as_of
        spend = np.bincount(ev["customer"][keep], weights=ev["amount"][keep], minlength=n)
        spend = np.round(spend, 2) / planted.SPEND_WINDOW_MONTHS

        birth_day = np.floor(c["birth"])  # birth_date is a date: whole days
        age = np.floor((as_of_day - birth_day) / 365.25)
        tenure = as_of_day - np.floor(c["created"])
        known = c["created"] < cutoff
        active = known & (c["death"] > cutoff)

        lo_age, hi_age = planted.PREMIUM_AGE
        lo_sp, hi_sp = planted.PREMIUM_SPEND
        segments = {
            planted.PREMIUM.product_id: (
                (age >= lo_age)
                & (age <= hi_age)
                & (c["occupation"] == planted.PREMIUM_OCCUPATION)
                & (spend >= lo_sp)
                & (spend < hi_sp)
            ),
            planted.INSURANCE.product_id: (
                (c["marital"] == "married")
                & (c["income"] >= planted.INSURANCE_MIN_INCOME)
                & (tenure >= planted.INSURANCE_MIN_TENURE_DAYS)
            ),
        }
        window_facts = {
            "as_of_date": (spec.start + timedelta(days=as_of_day)).isoformat(),
            "offers": {},
        }
        for offer in planted.PLANTED_OFFERS:
            eligible = known & ~adopted[offer.product_id]
            segment = eligible & segments[offer.product_id]
            rate = np.where(
                segment,
                offer.segment_rate,
                np.where(active, offer.base_rate, offer.base_rate * planted.CHURNED_RATE_FACTOR),
            )
            adopts = eligible & (rng.random(n) < rate)
            who = np.flatnonzero(adopts)
            when = np.minimum(
                _with_time_of_day(rng, rng.uniform(cutoff, window_end, who.size)),
                days - 1.0 / DAY_S,
            )
            adopted[offer.product_id][who] = True
            _offer_events(
                events,
                who,
                offer_index[offer.product_id],
                when,
                planted.OFFER_PRICES[offer.product_id],
            )
            window_facts["offers"][offer.product_id] = {
                "rule": offer.rule,
                "eligible_customers": int(eligible.sum()),
                "segment_customers": int(segment.sum()),
                "segment_adopters": int((adopts & segment).sum()),
                "other_adopters": int((adopts & ~segment).sum()),
            }
        facts["windows"].append(window_facts)
    return facts


# ----------------------------------------------------------------------------- interactions


_CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
_KIND = {name: i for i, name in enumerate(INTERACTION_TYPES)}


def _labels(codes: np.ndarray, vocabulary) -> pa.Array:
    """Small integer codes to an Arrow string column, without Python strings per row."""
    dictionary = pa.array(list(vocabulary), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())


@dataclass
class _Contacts:
    customer: list = field(default_factory=list)
    day: list = field(default_factory=list)
    channel: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    campaign: list = field(default_factory=list)

    def add(self, customer, day, channel, kind, campaign=None):
        """`channel` and `kind` are a name or an array of codes (`_CHANNEL`, `_KIND`)."""
        customer = np.asarray(customer, dtype=np.int64)
        k = customer.size
        self.customer.append(customer)
        self.day.append(np.asarray(day, dtype=float))
        for target, value, codes in ((self.channel, channel, _CHANNEL), (self.kind, kind, _KIND)):
            code = codes[value] if isinstance(value, str) else np.asarray(value, dtype=np.int8)
            target.append(np.broadcast_to(np.asarray(code, dtype=np.int8), (k,)).copy())
        camp = (
            np.full(k, -1, dtype=np.int64) if campaign is None else np.broadcast_to(campaign, (k,))
        )
        self.campaign.append(np.asarray(camp, dtype=np.int64))


def _interactions(
    c, rng, cal: Calendar, ev, campaigns, members, days: int
) -> dict[str, np.ndarray]:
    n = c["rate"].size
    out = _Contacts()
    # Browsing goes with buying: web and app visits at a rate tied to the purchase rate.
    mass = cal.mass(c["active_from"], c["active_to"])
    counts = rng.poisson(0.7 * c["rate"] * np.maximum(mass, 0))
    cust = np.repeat(np.arange(n), counts)
    day = _with_time_of_day(
        rng, cal.sample(c["active_from"][cust], c["active_to"][cust], rng.random(cust.size))
    )
    day = np.maximum(day, c["created"][cust])
    web_or_app = np.where(rng.random(cust.size) < 0.65, _CHANNEL["web"], _CHANNEL["app"])
    out.add(cust, day, web_or_app, "visit")
    # Store visits around a third of purchases.
    store = rng.random(ev["day"].size) < 0.3
    out.add(
        ev["customer"][store],
        np.maximum(ev["day"][store] - rng.uniform(0, 0.04, store.sum()), 0),
        "store",
        "visit",
    )
    # Service calls and requests, about one a year while active.
    span = np.maximum(c["active_to"] - c["active_from"], 0)
    counts = rng.poisson(span / 365.0)
    cust = np.repeat(np.arange(n), counts)
    day = c["active_from"][cust] + rng.random(cust.size) * span[cust]
    out.add(
        cust,
        _with_time_of_day(rng, day),
        "phone",
        np.where(rng.random(cust.size) < 0.6, _KIND["call"], _KIND["service_request"]),
    )
    # Complaints: a low base rate, and often one in the two months before a customer leaves.
    counts = rng.poisson(0.1 * span / 365.0)
    cust = np.repeat(np.arange(n), counts)
    day = c["active_from"][cust] + rng.random(cust.size) * span[cust]
    churners = np.flatnonzero((c["death"] < days) & (rng.random(n) < 0.35))
    churn_day = np.maximum(
        c["death"][churners] - rng.uniform(0, 60, churners.size), c["active_from"][churners]
    )
    cust = np.concatenate([cust, churners])
    day = np.concatenate([day, churn_day])
    out.add(
        cust,
        _with_time_of_day(rng, day),
        rng.choice(
            [_CHANNEL[c] for c in ("phone", "email", "web", "store")],
            size=cust.size,
            p=[0.4, 0.3, 0.2, 0.1],
        ),
        "complaint",
    )
    # Opt-outs: 5% of customers unsubscribe once.
    unsub = np.flatnonzero((rng.random(n) < 0.05) & (span > 0))
    day = c["active_from"][unsub] + rng.random(unsub.size) * span[unsub]
    out.add(unsub, _with_time_of_day(rng, day), "email", "unsubscribe")

    # Campaign contacts for target members; responses for every responder.
    for m in members:
        k = int(m["campaign"][0]) if m["campaign"].size else None
        if k is None:
            continue
        camp = campaigns[k]
        channel = camp["channel"]
        target = ~m["control"]
        who = m["customer"][target]
        responded = ~np.isnan(m["responded_at"][target])
        t0 = camp["actual_start"] + rng.uniform(0, 1.5, who.size)
        contact_kind = {"phone": "call", "event": "impression"}.get(channel, "impression")
        out.add(who, t0, channel, contact_kind, k)
        if channel == "email":
            opened = responded | (rng.random(who.size) < 0.3)
            out.add(who[opened], t0[opened] + rng.uniform(0, 2, opened.sum()), "email", "open", k)
        clicked = responded | (rng.random(who.size) < 0.01)
        if channel not in ("phone", "event"):
            out.add(
                who[clicked], t0[clicked] + rng.uniform(0, 3, clicked.sum()), channel, "click", k
            )
        if channel == "event":
            out.add(who[responded], m["responded_at"][target][responded], "event", "visit", k)
        resp = ~np.isnan(m["responded_at"])
        inquiry_channel = np.where(rng.random(resp.sum()) < 0.5, _CHANNEL["phone"], _CHANNEL["web"])
        camp_ids = np.where(m["control"][resp], -1, k)
        out.add(
            m["customer"][resp],
            m["responded_at"][resp] + 0.001,
            inquiry_channel,
            "inquiry",
            camp_ids,
        )

    result = {
        k: np.concatenate(getattr(out, k))
        for k in ("customer", "day", "channel", "kind", "campaign")
    }
    result["day"] = np.maximum(
        result["day"], c["created"][result["customer"]]
    )  # not before they exist
    keep = (result["day"] >= 0) & (result["day"] < days)
    result = {k: v[keep] for k, v in result.items()}
    result["day"] = np.minimum(result["day"], days - 1.0 / DAY_S)
    return result


# ----------------------------------------------------------------------------- funnel


STAGE_ORDER = ("lead", "qualified", "proposal", "negotiation")


def _opportunities(c, rng, spec: GenerationSpec, reps, campaigns, members):
    days = spec.history_days
    n = c["rate"].size
    # From campaign responses (the opportunity's source campaign) ...
    src_cust, src_day, src_camp = [], [], []
    for m in members:
        resp = ~np.isnan(m["responded_at"]) & ~m["control"]
        take = resp & (rng.random(resp.size) < 0.3)
        src_cust.append(m["customer"][take])
        src_day.append(m["responded_at"][take] + rng.uniform(0, 7, take.sum()))
        src_camp.append(m["campaign"][take])
    # ... and organic ones, weighted towards customers who spend more.
    n_organic = max(1, int(round(n * 0.04)))
    weight = c["spend_level"] * (c["active_to"] > c["active_from"])
    organic = rng.choice(n, size=n_organic, p=weight / weight.sum())
    src_cust.append(organic)
    src_day.append(
        c["active_from"][organic]
        + rng.random(n_organic) * (c["active_to"][organic] - c["active_from"][organic])
    )
    src_camp.append(np.full(n_organic, -1))
    cust = np.concatenate(src_cust).astype(np.int64)
    created = np.maximum(
        _with_time_of_day(rng, np.concatenate(src_day)), c["created"][np.concatenate(src_cust)]
    )
    camp = np.concatenate(src_camp).astype(np.int64)
    keep = created < days
    cust, created, camp = cust[keep], created[keep], camp[keep]
    order = np.argsort(created, kind="stable")
    cust, created, camp = cust[order], created[order], camp[order]
    k = cust.size

    rep_region = reps["region"]
    owner = np.empty(k, dtype=np.int64)
    for r in np.unique(rep_region):
        rep_idx = np.flatnonzero(rep_region == r)
        mask = c["region"][cust] == r
        owner[mask] = rep_idx[rng.integers(0, rep_idx.size, mask.sum())]
    amount = np.round(
        np.exp(rng.normal(np.log(4000) + 0.3 * np.log(c["income"][cust] / 4000), 0.7)), -1
    )

    stage_rows_opp, stage_rows_stage, stage_rows_day = [], [], []
    t = created.copy()
    alive = np.ones(k, dtype=bool)  # still moving through the funnel
    status = np.full(k, "open", dtype=object)
    closed = np.full(k, np.nan)
    current = np.full(k, "lead", dtype=object)
    for i, stage in enumerate(STAGE_ORDER):
        entered = alive & (t < days)
        stage_rows_opp.append(np.flatnonzero(entered))
        stage_rows_stage.append(np.full(entered.sum(), stage, dtype=object))
        stage_rows_day.append(t[entered])
        current[entered] = stage
        alive &= t < days
        duration = rng.lognormal(np.log(planted.STAGE_MEDIAN_DAYS[stage]), 0.55, k)
        exit_t = t + duration
        advance = rng.random(k) < planted.STAGE_CONVERSION[stage]
        done = alive & (exit_t < days)
        fail = done & ~advance
        u = rng.random(k)
        outcome = np.where(u < 0.06, "suspended", np.where(u < 0.10, "terminated", "lost"))
        status[fail] = outcome[fail]
        closed[fail] = exit_t[fail]
        lost = fail & (outcome == "lost")
        stage_rows_opp.append(np.flatnonzero(lost))
        stage_rows_stage.append(np.full(lost.sum(), "lost", dtype=object))
        stage_rows_day.append(exit_t[lost])
        alive &= ~fail & done  # those still in this stage at the end stay open
        if i == len(STAGE_ORDER) - 1:
            won = alive
            status[won] = "won"
            closed[won] = exit_t[won]
            stage_rows_opp.append(np.flatnonzero(won))
            stage_rows_stage.append(np.full(won.sum(), "won", dtype=object))
            stage_rows_day.append(exit_t[won])
        t = exit_t
    lost_to = np.full(k, None, dtype=object)
    lost_mask = (status == "lost") & (rng.random(k) < 0.55)
    lost_to[lost_mask] = _pick(
        rng, planted.COMPETITORS, (0.3, 0.25, 0.2, 0.15, 0.1), lost_mask.sum()
    )

    hist_opp = np.concatenate(stage_rows_opp)
    hist_day = np.concatenate(stage_rows_day)
    last_event = np.full(k, -np.inf)
    np.maximum.at(last_event, hist_opp, hist_day)
    updated = np.fmax(np.where(np.isnan(closed), last_event, closed), created)

    # Contracts: one per won opportunity, plus yearly renewals without an opportunity.
    won_idx = np.flatnonzero(status == "won")
    signed = closed[won_idx] + rng.uniform(0, 3, won_idx.size)
    signed = np.where(signed < days, signed, closed[won_idx])
    factor = np.where(rng.random(won_idx.size) < 0.8, 1.0, rng.uniform(0.9, 1.0, won_idx.size))
    c_amount = np.round(amount[won_idx] * factor, 2)
    renew = (signed + 365 < days) & (rng.random(won_idx.size) < 0.5)
    r_signed = signed[renew] + 365 + rng.uniform(-10, 10, renew.sum())
    r_signed = np.minimum(r_signed, days - 0.01)
    contracts = {
        "opportunity": np.concatenate([won_idx, np.full(renew.sum(), -1)]),
        "customer": np.concatenate([cust[won_idx], cust[won_idx][renew]]),
        "signed": np.concatenate([signed, r_signed]),
        "amount": np.concatenate(
            [c_amount, np.round(c_amount[renew] * rng.uniform(0.95, 1.1, renew.sum()), 2)]
        ),
    }
    order = np.argsort(contracts["signed"], kind="stable")
    contracts = {key: v[order] for key, v in contracts.items()}
    return {
        "customer": cust,
        "created": created,
        "campaign": camp,
        "owner": owner,
        "amount": amount,
        "status": status,
        "closed": closed,
        "lost_to": lost_to,
        "updated": updated,
        "current": current,
        "hist_opp": hist_opp,
        "hist_stage": np.concatenate(stage_rows_stage),
        "hist_day": hist_day,
    }, contracts


# ----------------------------------------------------------------------------- assembly


def generate(spec: GenerationSpec, progress: Callable[[str], None] | None = None) -> GeneratedCRM:
    """Generate every entity of the source contract as Arrow tables."""
    step = progress or (lambda _msg: None)
    seeds = np.random.SeedSequence(spec.seed).spawn(8)
    rngs = [np.random.default_rng(s) for s in seeds]
    cal = Calendar(spec.start, spec.history_days)
    clock = _Clock(spec.start)
    days = spec.history_days
    n = spec.customers
    width = max(7, len(str(n)))

    step("customers")
    c = _customers(n, rngs[0], spec)
    customer_ids = _ids("C", n, width)

    step("products and sales reps")
    prod = _products()
    n_regular = len(names.PRICE_LADDER)
    offer_index = {pid: i for i, pid in enumerate(prod["product_id"]) if i >= n_regular}
    reps = _sales_reps(n, rngs[1])

    step("purchases")
    events = _Events()
    _regular_purchases(c, rngs[2], cal, n_regular, events)
    step("campaigns")
    campaigns, members = _campaigns(c, rngs[3], spec, offer_index, events)
    step("planted offers")
    facts = _planted_adoption(c, rngs[4], spec, events, offer_index)
    ev = events.concat()
    order = np.argsort(ev["day"], kind="stable")
    ev = {k: v[order] for k, v in ev.items()}

    step("interactions")
    inter = _interactions(c, rngs[5], cal, ev, campaigns, members, days)
    order = np.argsort(inter["day"], kind="stable")
    inter = {k: v[order] for k, v in inter.items()}

    step("opportunities and contracts")
    opp, contracts = _opportunities(c, rngs[6], spec, reps, campaigns, members)

    step("tables")
    rng = rngs[7]
    first = _pick(rng, names.FIRST_NAMES, np.ones(60), n)
    last = _pick(rng, names.LAST_NAMES, np.ones(60), n)
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
    tables: dict[str, pa.Table] = {}
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

    product_ids = pa.array(prod["product_id"], pa.string())
    n_tx = ev["day"].size
    tables["transactions"] = pa.table(
        {
            "transaction_id": _ids("T", n_tx, 10),
            "customer_id": customer_ids.take(pa.array(ev["customer"])),
            "product_id": product_ids.take(pa.array(ev["product"])),
            "occurred_at": clock.ts(ev["day"]),
            "quantity": pa.array(ev["quantity"]),
            "amount": pa.array(ev["amount"]),
            "status": _labels(ev["status"], STATUS_NAMES),
            "updated_at": clock.ts(np.minimum(ev["updated"], days - 1.0 / DAY_S)),
        }
    )

    campaign_ids = pa.array([row["campaign_id"] for row in campaigns], pa.string())
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
            "interaction_id": _ids("I", n_int, 11),
            "customer_id": customer_ids.take(pa.array(inter["customer"])),
            "occurred_at": clock.ts(inter["day"]),
            "channel": _labels(inter["channel"], CHANNELS),
            "interaction_type": _labels(inter["kind"], INTERACTION_TYPES),
            "campaign_id": campaign_ids.take(
                pa.array(np.where(camp_idx < 0, 0, camp_idx), mask=camp_idx < 0)
            ),
            "updated_at": clock.ts(inter["day"]),
        }
    )

    n_opp = opp["customer"].size
    opp_ids = _ids("O", n_opp, 8)
    owner_ids = pa.array(reps["owner_id"], pa.string())
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
            "created_at": clock.ts(opp["created"]),
            "amount": pa.array(opp["amount"]),
            "status": pa.array(opp["status"], pa.string()),
            "closed_at": clock.ts(opp["closed"]),
            "lost_to_competitor": pa.array(opp["lost_to"], pa.string()),
            "updated_at": clock.ts(np.minimum(opp["updated"], days - 1.0 / DAY_S)),
        }
    )
    order = np.lexsort((opp["hist_day"], opp["hist_opp"]))
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
            "contract_id": _ids("K", n_con, 8),
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
        "planted_offers": facts,
        "campaign_adoption": {
            "target": planted.CAMPAIGN_TARGET_ADOPTION,
            "control": planted.CAMPAIGN_CONTROL_ADOPTION,
            "window_days": planted.CAMPAIGN_ADOPTION_WINDOW_DAYS,
        },
        "stage_conversion": planted.STAGE_CONVERSION,
        "stage_median_days": planted.STAGE_MEDIAN_DAYS,
    }
    partitions = {
        "transactions": clock.months(ev["day"]),
        "interactions": clock.months(inter["day"]),
    }
    return GeneratedCRM(spec=spec, tables=tables, facts=facts, partitions=partitions)
