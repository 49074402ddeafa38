"""Who may be contacted: the suppression rule that takes a scored list to release candidates
(opted out, complained, already an adopter, in another campaign's recent holdout, contacted
too recently), as one query per offer, and the holdouts already drawn for the same day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from activation.config import ActivationConfig
from activation.holdout import HOLDOUT, assign_groups

#: Why a scored customer is left out of a release, in the order they are checked: a
#: customer is counted under the first reason that applies.
SUPPRESSION_REASONS = (
    "already_adopted",
    "opted_out",
    "other_campaign_holdout",
    "cooling_off",
    "invalid_contact",
)


def _cutoff(as_of: date) -> datetime:
    return datetime.combine(as_of + timedelta(days=1), datetime.min.time())


def same_day_holdouts(con, offer: str, as_of: date, config: ActivationConfig) -> pd.DataFrame:
    """Customers in the holdout other offers' lists of the same day would draw for them
    (persisted assignment or hash): kept out of this offer's list, whatever order the
    offers are released in, so no holdout is contacted by another campaign that day."""
    others = con.execute(
        "SELECT offer_id, customer_id FROM ml.offer_audiences "
        "WHERE as_of_date = ? AND offer_id <> ?",
        [as_of, offer],
    ).df()
    held = []
    for other, members in others.groupby("offer_id"):
        campaign = config.campaign_for(str(other))
        known = dict(
            con.execute(
                'SELECT customer_id, "group" FROM activation.campaign_audience_groups '
                "WHERE campaign_id = ?",
                [campaign],
            ).fetchall()
        )
        groups = assign_groups(campaign, members["customer_id"], config.holdout_share, known)
        held.append(members["customer_id"][groups == HOLDOUT])
    ids = pd.concat(held, ignore_index=True) if held else pd.Series([], dtype=object)
    return pd.DataFrame({"customer_id": ids.astype(object)})


def candidates(con, offer: str, campaign_id: str, as_of: date, config: ActivationConfig):
    """The offer's scored list for the date with contact fields and, per customer, the
    first suppression reason that applies (NULL: keep).

    Opt-outs are read from the newest customer 360 (an unsubscribe known now counts even
    for an earlier as-of date); the campaign's own control group and its own touches never
    suppress its members."""
    cutoff = _cutoff(as_of)
    con.register("same_day_holdouts", same_day_holdouts(con, offer, as_of, config))
    try:
        frame = con.execute(
            f"""
            WITH audience AS (
                SELECT * FROM ml.offer_audiences WHERE as_of_date = $as_of AND offer_id = $offer
            ),
            adopted AS (
                SELECT DISTINCT customer_id FROM marts.fct_offer_adoptions
                WHERE offer_id = $offer AND adopted_at < $cutoff
            ),
            opted_out AS (
                SELECT customer_id FROM marts.dim_customers WHERE is_opted_out
            ),
            other_holdouts AS (
                -- control groups of other campaigns running in the CRM ...
                SELECT customer_id FROM marts.fct_campaign_members
                WHERE member_group = 'control' AND campaign_status = 'running'
                  AND campaign_id <> $campaign
                UNION
                -- ... holdouts of our earlier releases of other campaigns, still protected
                SELECT customer_id FROM activation.campaign_audiences
                WHERE "group" = '{HOLDOUT}' AND campaign_id <> $campaign
                  AND as_of_date < $as_of AND as_of_date >= $protect_from
                UNION
                -- ... and the holdouts other offers' lists draw today
                SELECT customer_id FROM same_day_holdouts
            ),
            touched AS (
                SELECT DISTINCT customer_id FROM marts.fct_interactions
                WHERE is_campaign_touch AND occurred_at >= $cool_from AND occurred_at < $cutoff
                  AND campaign_id IS DISTINCT FROM $campaign
            ),
            contacts AS (
                SELECT customer_id, full_name, email, phone, has_valid_contact
                FROM audiences.audience_contacts
            )
            SELECT
                a.customer_id, a.offer_id, a.score, a.band, a.decile, a.rule_id, a.rule,
                a.list_rank, a.expected_value, a.model_version, a.selected_by,
                c.full_name, c.email, c.phone,
                CASE
                    WHEN a.customer_id IN (SELECT customer_id FROM adopted) THEN 'already_adopted'
                    WHEN a.customer_id IN (SELECT customer_id FROM opted_out) THEN 'opted_out'
                    WHEN a.customer_id IN (SELECT customer_id FROM other_holdouts)
                        THEN 'other_campaign_holdout'
                    WHEN a.customer_id IN (SELECT customer_id FROM touched) THEN 'cooling_off'
                    WHEN NOT coalesce(c.has_valid_contact, false) THEN 'invalid_contact'
                END AS suppressed_because
            FROM audience AS a
            LEFT JOIN contacts AS c USING (customer_id)
            ORDER BY a.list_rank
            """,
            {
                "as_of": as_of,
                "offer": offer,
                "campaign": campaign_id,
                "cutoff": cutoff,
                "cool_from": cutoff - timedelta(days=config.cooling_off_days),
                "protect_from": as_of - timedelta(days=config.holdout_protect_days),
            },
        ).df()
    finally:
        con.unregister("same_day_holdouts")
    return frame
