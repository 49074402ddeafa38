"""The sales funnel: opportunities from campaign responses and from the sales reps' own
prospecting, moving through the stages at the planted conversion rates, and contracts."""

from __future__ import annotations

import numpy as np

from datagen import planted
from datagen.spec import GenerationSpec, pick, with_time_of_day

STAGE_ORDER = ("lead", "qualified", "proposal", "negotiation")


def draw_opportunities(c, rng, spec: GenerationSpec, reps, campaigns, members):
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
        with_time_of_day(rng, np.concatenate(src_day)), c["created"][np.concatenate(src_cust)]
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
        median = planted.STAGE_MEDIAN_DAYS[stage]
        duration = rng.lognormal(np.log(median), planted.STAGE_DAYS_SIGMA, k)
        exit_t = t + duration
        advance = rng.random(k) < _advance_rate(stage, duration)
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
    lost_to[lost_mask] = pick(
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


def _advance_rate(stage: str, duration: np.ndarray) -> np.ndarray:
    """The chance to move on from `stage` after `duration` days in it: lower for a stalled
    deal (beyond the stage's 80th percentile), higher for the others, so that the stage's
    rate over all deals stays at planted.STAGE_CONVERSION."""
    rate = planted.STAGE_CONVERSION[stage]
    p80 = planted.STAGE_MEDIAN_DAYS[stage] * np.exp(
        planted.STALLED_QUANTILE_Z * planted.STAGE_DAYS_SIGMA
    )
    stalled_rate = rate * planted.STALLED_ADVANCE_FACTOR
    on_time_rate = min((rate - 0.2 * stalled_rate) / 0.8, 1.0)
    return np.where(duration > p80, stalled_rate, on_time_rate)


# ----------------------------------------------------------------------------- assembly
