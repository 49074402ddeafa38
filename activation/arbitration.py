"""The contact policy: which offer each customer gets when several lists want them.

Every offer's scored list is cut on its own (`ml.score.select_audience`). Across offers,
before anything is released, the policy in activation/config.yml (`contact_policy`)
decides, deterministically:

1. global exclusions: customers in `CRM_HOME/landing/exclusions.csv` (customer_id, reason)
   are on no list;
2. at most `max_offers` offers per customer per `window_days`: offers released to them in
   the window before the date (target or holdout) keep their place (a list refreshed
   daily is the same offer, not a new one); the remaining places go to the day's offers
   with the highest expected value (calibrated score x margin - contact cost), ties by
   offer id; an offer without a margin (no list price) has no expected value and gives
   way to any offer that has one;
3. channel capacity per day, in the same pass: each offer goes out on a channel
   (`offer_channels`, default `default_channel`); where a channel has a
   `capacity_per_day`, it takes rows by expected value until that many customers to
   contact (target group) are reached, and a customer it has no room for keeps their
   place for an offer on another channel.

It runs on customers the suppression rule left, before the holdout split of the day's
lists is drawn, and uses nothing the split depends on, so every offer's holdout stays a
random share of its list. A customer an offer lost is counted per winning offer, and
reported in the manifest (`arbitration`) and the run report.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from activation.config import ContactPolicy
from activation.holdout import HOLDOUT

#: The global exclusion list, in the landing folder.
EXCLUSIONS_FILE = "exclusions.csv"

#: Why the policy leaves a customer off an offer's list (suppression reasons after the rule's).
POLICY_REASONS = ("excluded", "lost_to_other_offer", "over_channel_capacity")


def read_exclusions(path: Path) -> pd.DataFrame:
    """customer_id, reason of the global exclusion list (empty when there is no file)."""
    from crm.errors import BadInputError

    if not Path(path).exists():
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "reason": []})
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "customer_id" not in frame.columns:
        raise BadInputError(f"{path}: needs a customer_id column (and optionally reason)")
    if "reason" not in frame.columns:
        frame["reason"] = "excluded"
    return frame[["customer_id", "reason"]].drop_duplicates("customer_id")


def recent_offers(con, as_of: date, window_days: int) -> pd.DataFrame:
    """customer_id, offer_id of every offer released to a customer in the `window_days`
    before the date, in either group (whether a customer keeps a place must not depend on
    the holdout hash; the date's own releases are excluded: they are decided again)."""
    start = as_of - timedelta(days=window_days)
    return con.execute(
        """
        SELECT DISTINCT customer_id, offer_id FROM activation.campaign_audiences
        WHERE as_of_date >= ? AND as_of_date < ?
        """,
        [start, as_of],
    ).df()


def arbitrate(
    candidates: pd.DataFrame,
    policy: ContactPolicy,
    groups: pd.Series,
    recent: pd.DataFrame | None = None,
    exclusions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Decide every candidate row (customer_id, offer_id, expected_value; those the
    suppression rule kept). Returns the rows with `kept` and, when not kept, `reason`
    (one of POLICY_REASONS) and `lost_to` (the offer that took the place). `groups` is
    each row's holdout group (indexed like `candidates`): capacity counts targets only.
    Pure and deterministic: the same rows give the same answer in any order."""
    rows = candidates[["customer_id", "offer_id", "expected_value"]].copy()
    rows["group"] = groups.to_numpy()
    rows["value"] = rows["expected_value"].astype(float).fillna(-np.inf)
    rows = rows.sort_values(
        ["value", "offer_id", "customer_id"], ascending=[False, True, True], kind="stable"
    )
    rows["kept"] = np.ones(len(rows), dtype=bool)
    rows["reason"] = pd.Series([None] * len(rows), index=rows.index, dtype=object)
    rows["lost_to"] = pd.Series([None] * len(rows), index=rows.index, dtype=object)

    if exclusions is not None and len(exclusions):
        excluded = rows["customer_id"].isin(set(exclusions["customer_id"]))
        rows.loc[excluded, ["kept", "reason"]] = [False, "excluded"]

    # places per customer: offers held in the window keep theirs, the rest by value
    held: dict[str, set[str]] = {}
    if recent is not None:
        for customer, offer in zip(recent["customer_id"], recent["offer_id"], strict=True):
            held.setdefault(customer, set()).add(offer)
    taken: dict[str, list[str]] = {c: sorted(o) for c, o in held.items()}
    holding = np.array(
        [o in held.get(c, ()) for c, o in zip(rows["customer_id"], rows["offer_id"], strict=True)],
        dtype=bool,
    )
    # first the offers a customer already holds, then the rest, each by value
    order = np.r_[np.flatnonzero(holding), np.flatnonzero(~holding)]
    kept = rows["kept"].to_numpy(dtype=bool).copy()
    reason = rows["reason"].to_numpy().copy()
    lost_to = rows["lost_to"].to_numpy().copy()
    customers, offers = rows["customer_id"].to_numpy(), rows["offer_id"].to_numpy()
    channels = np.array([policy.channel(o) for o in offers], dtype=object)
    is_target = rows["group"].to_numpy() != HOLDOUT
    capacity = {c: int(n) for c, n in policy.capacity_per_day.items() if n is not None}
    contacted = dict.fromkeys(capacity, 0)
    for i in order:
        if not kept[i]:
            continue
        channel = channels[i]
        if channel in capacity and contacted[channel] >= capacity[channel]:
            # the channel is full: its list ends with its last customer contacted, and the
            # customer's place stays free for an offer on another channel
            kept[i], reason[i] = False, "over_channel_capacity"
            continue
        places = taken.setdefault(customers[i], [])
        if offers[i] not in places:  # else: holds this offer from an earlier release
            if len(places) >= policy.max_offers:
                kept[i], reason[i], lost_to[i] = False, "lost_to_other_offer", places[0]
                continue
            places.append(offers[i])
        if channel in capacity and is_target[i]:
            contacted[channel] += 1

    rows["kept"], rows["reason"], rows["lost_to"] = kept, reason, lost_to
    rows["channel"] = channels
    return rows.drop(columns=["value", "group"]).sort_index()


def losses(decided: pd.DataFrame, offer: str) -> dict:
    """What the policy took from one offer's list: counts per reason, and per winning
    offer for `lost_to_other_offer`."""
    mine = decided[(decided["offer_id"] == offer) & ~decided["kept"]]
    return {
        "by_reason": {r: int((mine["reason"] == r).sum()) for r in POLICY_REASONS},
        "lost_to": {str(k): int(v) for k, v in mine["lost_to"].dropna().value_counts().items()},
        "channel": decided.loc[decided["offer_id"] == offer, "channel"].iloc[0]
        if (decided["offer_id"] == offer).any()
        else None,
    }


def decide_day(con, as_of: date, config, exclusions_path: Path) -> pd.DataFrame:
    """Apply the contact policy to the day's lists: the suppression rule's verdict first
    (with no same-day holdout drawn yet), then `arbitrate` on the customers it kept, with
    each row's holdout group from the hash; then the day's holdouts are drawn from the
    lists the policy kept (`write_rule_inputs`). Returns the decided rows."""
    from activation.holdout import assign_groups, known_groups
    from activation.suppression import candidates, write_rule_inputs

    write_rule_inputs(con, as_of, config, _NO_LISTS)
    frame = candidates(con, None, as_of)
    frame = frame[frame["suppressed_because"].isna()].reset_index(drop=True)
    groups = pd.Series(index=frame.index, dtype=object)
    for offer, rows in frame.groupby("offer_id"):
        campaign = config.campaign_for(str(offer))
        groups[rows.index] = assign_groups(
            campaign, rows["customer_id"], config.holdout_share, known_groups(con, campaign)
        )
    policy = config.contact_policy
    decided = arbitrate(
        frame,
        policy,
        groups,
        recent_offers(con, as_of, policy.window_days),
        read_exclusions(exclusions_path),
    )
    write_rule_inputs(con, as_of, config, decided.loc[decided["kept"], ["offer_id", "customer_id"]])
    return decided


_NO_LISTS = pd.DataFrame({"offer_id": [], "customer_id": []})
