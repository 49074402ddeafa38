"""Campaigns: plan and actual dates and costs, members in target and control groups, and
the responses and adoptions the contact adds in the target group."""

from __future__ import annotations

import numpy as np

from datagen import names, planted
from datagen.purchases import Events, offer_events
from datagen.spec import DAY_S, GenerationSpec, pick, with_time_of_day

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


def draw_campaigns(c, rng, spec: GenerationSpec, offer_index: dict[str, int], events: Events):
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
        channel = str(pick(rng, channels, channel_w, 1)[0])
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
        offer_events(
            events,
            chosen[real_adopt],
            offer_index[offer],
            with_time_of_day(rng, adopt_at[real_adopt]),
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
                "source": pick(
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
        when = np.minimum(with_time_of_day(rng, when), days - 1.0 / DAY_S)
        adopted[offer][who] = True
        offer_events(events, who, offer_index[offer], when, planted.OFFER_PRICES[offer])
    return camp, members


# ----------------------------------------------------------------------------- planted offers
