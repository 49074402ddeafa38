"""The audience checkpoint: every release, before any file or destination is written.

A release must hold each customer once, scores in 0..1, only the target and holdout
groups, the offer it is for, no customer who opted out or already adopted the offer
(read from the warehouse here, not from the release's own suppression step), and a
holdout share within sampling error of the configured share. All of these are critical:
a list that breaks one is not sent.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from expectations.checkpoint import run_suite
from expectations.outcome import CRITICAL, Outcome

CHECKPOINT = "audiences"
#: Slack around the expected holdout share, beyond three binomial standard errors.
HOLDOUT_SLACK = 0.02


def holdout_bounds(
    share: float, rows: int, known: int = 0, known_holdouts: int = 0
) -> tuple[float, float]:
    """Where the list's holdout share must lie. Groups are sticky: the `known` customers
    the campaign has seen before keep their group (`known_holdouts` of them were held
    out), the others are drawn with the configured share."""
    rows = max(rows, 1)
    new = max(rows - known, 0)
    expected = (known_holdouts + share * new) / rows
    spread = 3 * math.sqrt(share * (1 - share) * new) / rows + HOLDOUT_SLACK
    return max(0.0, expected - spread), min(1.0, expected + spread)


def remembered_groups(con, campaign_id: str, customers) -> tuple[int, int]:
    """How many of the customers the campaign has a group for, and how many are holdouts."""
    from crm.warehouse import table_exists

    if not table_exists(con, "activation", "campaign_audience_groups"):
        return 0, 0
    frame = con.execute(
        'SELECT customer_id, "group" FROM activation.campaign_audience_groups '
        "WHERE campaign_id = ?",
        [campaign_id],
    ).df()
    seen = frame[frame["customer_id"].isin(set(customers))]
    return len(seen), int((seen["group"] == "holdout").sum())


def never_contact(con, offer: str, as_of: date) -> list[str]:
    """Customers no list for the offer may hold: opted out, or adopted it by the date."""
    from crm.warehouse import table_exists

    cutoff = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    found: set[str] = set()
    if table_exists(con, "marts", "dim_customers"):
        sql = "SELECT customer_id FROM marts.dim_customers WHERE is_opted_out"
        found.update(r[0] for r in con.execute(sql).fetchall())
    if table_exists(con, "marts", "fct_offer_adoptions"):
        sql = (
            "SELECT customer_id FROM marts.fct_offer_adoptions "
            "WHERE offer_id = ? AND adopted_at < ?"
        )
        found.update(r[0] for r in con.execute(sql, [offer, cutoff]).fetchall())
    return sorted(found)


def release_expectations(
    offer: str, rows: int, holdout_share: float, excluded: list[str], known=(0, 0)
):
    from great_expectations import expectations as gxe

    low, high = holdout_bounds(holdout_share, rows, *known)
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", severity=CRITICAL, description="customer_id always present"
        ),
        gxe.ExpectColumnValuesToBeUnique(
            column="customer_id", severity=CRITICAL, description="one row per customer"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="offer_id", value_set=[offer], severity=CRITICAL, description=f"only {offer}"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="score",
            min_value=0,
            max_value=1,
            severity=CRITICAL,
            description="score between 0 and 1",
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="score", severity=CRITICAL, description="every customer scored"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="group",
            value_set=["target", "holdout"],
            severity=CRITICAL,
            description="group target or holdout",
        ),
        gxe.ExpectColumnValuesToNotBeInSet(
            column="customer_id",
            value_set=excluded or ["-"],
            severity=CRITICAL,
            description="no customer who opted out or already adopted the offer",
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="is_holdout",
            min_value=low,
            max_value=high,
            severity=CRITICAL,
            description=f"holdout share between {low:.3f} and {high:.3f} (configured "
            f"{holdout_share:.2f}; {known[0]:,} of {rows:,} customers keep an earlier group, "
            f"{known[1]:,} of them holdouts)",
        ),
    ]


def validate_release(con, release, holdout_share: float) -> list[Outcome]:
    """The audience suite on one release (nothing to check on an empty list)."""
    rows = release.rows
    if rows.empty:
        return []
    frame = rows[["customer_id", "offer_id", "score", "group", "list_rank"]].copy()
    frame["is_holdout"] = (frame["group"] == "holdout").astype(float)
    excluded = never_contact(con, release.offer, release.as_of)
    known = remembered_groups(con, release.campaign_id, frame["customer_id"])
    return run_suite(
        CHECKPOINT,
        f"audience.{release.offer}",
        f"{release.offer} {release.as_of.isoformat()}",
        release_expectations(release.offer, len(frame), holdout_share, excluded, known),
        frame,
        id_columns=("customer_id", "list_rank"),
    )
