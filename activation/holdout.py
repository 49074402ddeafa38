"""Holdout groups: a deterministic share of every list is kept back to measure the campaign.

A customer's group comes from a hash of the campaign id and the customer id, so a re-run or
a re-score puts everyone in the same group without any state; the warehouse still keeps
each assignment (`activation.campaign_audience_groups`) so that a later change of the share
never moves a customer who was already assigned.
"""

from __future__ import annotations

import hashlib

import numpy as np

TARGET, HOLDOUT = "target", "holdout"


def unit_hash(campaign_id: str, customer_id: str) -> float:
    """A number in [0, 1) fixed by the pair, uniform over customers."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def known_groups(con, campaign_id: str) -> dict[str, str]:
    """The campaign's persisted assignments (customer -> group), which win over the hash."""
    return dict(
        con.execute(
            'SELECT customer_id, "group" FROM activation.campaign_audience_groups '
            "WHERE campaign_id = ?",
            [campaign_id],
        ).fetchall()
    )


def assign_groups(
    campaign_id: str, customer_ids, share: float, known: dict[str, str] | None = None
) -> np.ndarray:
    """The group of each customer: a known (persisted) assignment wins, else the hash."""
    known = known or {}
    return np.array(
        [
            known.get(c) or (HOLDOUT if unit_hash(campaign_id, c) < share else TARGET)
            for c in customer_ids
        ],
        dtype=object,
    )
