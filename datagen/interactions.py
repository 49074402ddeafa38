"""Interactions: browsing with buying, store visits, campaign contacts and responses,
service requests, complaints and opt-outs, on the channels of the source contract."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datagen.spec import DAY_S, Calendar, with_time_of_day
from ingest.contract import CHANNELS, INTERACTION_TYPES

_CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
_KIND = {name: i for i, name in enumerate(INTERACTION_TYPES)}


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


def draw_interactions(
    c, rng, cal: Calendar, ev, campaigns, members, days: int
) -> dict[str, np.ndarray]:
    n = c["rate"].size
    out = _Contacts()
    # Browsing goes with buying: web and app visits at a rate tied to the purchase rate.
    mass = cal.mass(c["active_from"], c["active_to"])
    counts = rng.poisson(0.7 * c["rate"] * np.maximum(mass, 0))
    cust = np.repeat(np.arange(n), counts)
    day = with_time_of_day(
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
        with_time_of_day(rng, day),
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
        with_time_of_day(rng, day),
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
    out.add(unsub, with_time_of_day(rng, day), "email", "unsubscribe")

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
