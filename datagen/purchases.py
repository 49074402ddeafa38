"""Purchases: the regular buying that follows each customer's rate and lifetime through
the seasonal calendar, and the planted adoption of the offers (`datagen.planted`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from datagen import names, planted
from datagen.spec import DAY_S, Calendar, GenerationSpec, with_time_of_day


@dataclass
class Events:
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


def regular_purchases(c, rng, cal: Calendar, n_regular: int, events: Events) -> None:
    n = c["rate"].size
    mass = cal.mass(c["active_from"], c["active_to"])
    counts = rng.poisson(c["rate"] * np.maximum(mass, 0.0))
    cust = np.repeat(np.arange(n), counts)
    day = cal.sample(c["active_from"][cust], c["active_to"][cust], rng.random(cust.size))
    day = np.minimum(with_time_of_day(rng, day), cal.days - 1.0 / DAY_S)
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


def offer_events(events: Events, cust, product_idx, day, price) -> None:
    k = len(cust)
    events.add(
        cust, np.full(k, product_idx), day, np.ones(k), np.full(k, price), np.zeros(k), day + 0.01
    )


# ----------------------------------------------------------------------------- campaigns


def planted_adoption(c, rng, spec: GenerationSpec, events: Events, offer_index) -> dict:
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
                with_time_of_day(rng, rng.uniform(cutoff, window_end, who.size)),
                days - 1.0 / DAY_S,
            )
            adopted[offer.product_id][who] = True
            offer_events(
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
