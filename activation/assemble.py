"""Assemble one offer's release for a date: the scored list through the suppression rule
and the contact policy, split into target and holdout (holdouts already drawn that day
kept), compared with the previous release; the same list as the date's newest release is
that release again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from activation.arbitration import POLICY_REASONS, losses
from activation.config import ActivationConfig
from activation.fairness import fairness_report
from activation.holdout import HOLDOUT, TARGET, assign_groups, known_groups
from activation.release import (
    DIFF_CHANGES,
    DIFF_COLUMNS,
    Release,
    content_checksum,
    diff_releases,
)
from activation.release_files import folder_key, offer_folder, releases
from activation.suppression import SUPPRESSION_REASONS, candidates
from ml.config import load_config


def build_release(
    con,
    offer: str,
    as_of: date,
    run_id: str | None,
    config: ActivationConfig,
    root: Path,
    decided: pd.DataFrame,
) -> Release:
    """Select, suppress, split and diff one offer's list (reads the warehouse, and keeps the
    new holdout assignments in `activation.campaign_audience_groups`). `decided` is the
    contact policy's verdict on the day's lists (`activation.arbitration.decide_day`)."""
    campaign_id = config.campaign_for(offer)
    frame = candidates(con, offer, as_of)
    # the contact policy decided on the customers the rule kept before the day's holdouts
    # were drawn; its verdict stands first (the same-day holdout the rule may now name for
    # a customer the policy gave to another offer follows from that verdict)
    mine = decided.loc[(decided["offer_id"] == offer) & ~decided["kept"]]
    policy_reason = frame["customer_id"].map(
        dict(zip(mine["customer_id"], mine["reason"], strict=True))
    )
    frame["suppressed_because"] = policy_reason.fillna(frame["suppressed_because"])
    suppressed = frame["suppressed_because"].notna()
    counts = {
        reason: int((frame["suppressed_because"] == reason).sum())
        for reason in (*SUPPRESSION_REASONS, *POLICY_REASONS)
    }
    rows = frame[~suppressed].drop(columns=["suppressed_because"]).reset_index(drop=True)
    known = known_groups(con, campaign_id)
    rows["group"] = assign_groups(campaign_id, rows["customer_id"], config.holdout_share, known)
    rows["campaign_id"] = campaign_id
    rows["as_of_date"] = as_of
    rows["list_rank"] = np.arange(1, len(rows) + 1)
    checksum = content_checksum(rows)

    existing = releases(root, offer) if offer_folder(root, offer).exists() else []
    same_date = [(f, m) for f, m in existing if m["as_of_date"] == as_of.isoformat()]
    # the same list as the date's newest revision is that release; a list that goes back to
    # an older revision's content is a new revision (latest only moves forward)
    newest = same_date[-1] if same_date else None
    reused = newest if newest and newest[1]["content_checksum"] == checksum else None
    if reused is not None:
        # the same list again: the release that exists is the answer, nothing new is made
        diff = pd.read_parquet(reused[0] / "diff.parquet")[list(DIFF_COLUMNS)]
        return Release(offer, campaign_id, as_of, rows, diff, reused[1])
    revision = 1 + max((int(m["revision"]) for _, m in same_date), default=0)
    # the previous release: the newest one before this date (so backfills diff correctly)
    earlier = [(f, m) for f, m in existing if folder_key(f.name) < (as_of.isoformat(), revision)]
    previous = earlier[-1] if earlier else None
    previous_rows = pd.read_parquet(previous[0] / "audience.parquet") if previous else None
    diff = diff_releases(previous_rows, rows)
    group_counts = rows["group"].value_counts()
    contacted = set(rows.loc[rows["group"] == TARGET, "customer_id"])
    fairness = fairness_report(con, offer, as_of, contacted, load_config().protected_attributes)
    manifest = {
        "release_id": f"{campaign_id}:{as_of.isoformat()}:{checksum[:12]}",
        "offer_id": offer,
        "campaign_id": campaign_id,
        "as_of_date": as_of.isoformat(),
        "revision": revision,
        "folder": as_of.isoformat() if revision == 1 else f"{as_of.isoformat()}.r{revision}",
        "run_id": run_id,
        "model_versions": sorted(rows["model_version"].dropna().unique().tolist())
        or sorted(frame["model_version"].dropna().unique().tolist()),
        "selection_rule": frame["selected_by"].iloc[0] if len(frame) else None,
        "scored_list": int(len(frame)),
        "row_count": int(len(rows)),
        "target": int(group_counts.get(TARGET, 0)),
        "holdout": int(group_counts.get(HOLDOUT, 0)),
        "holdout_share": config.holdout_share,
        "suppressed": counts,
        "suppressed_total": int(suppressed.sum()),
        "contact_fields": list(config.contact_fields["files"]),
        "content_checksum": checksum,
        "previous_release_id": previous[1]["release_id"] if previous else None,
        "diff": {change: int((diff["change"] == change).sum()) for change in DIFF_CHANGES},
        # what the contact policy took from the list, and for which offers
        "arbitration": {
            **losses(decided, offer),
            "max_offers": config.contact_policy.max_offers,
            "window_days": config.contact_policy.window_days,
        },
        # selection rate (target / scored) per group of each protected attribute
        "fairness": fairness,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return Release(offer, campaign_id, as_of, rows, diff, manifest)


def remember_groups(con, release: Release) -> int:
    """Persist the group of every customer seen for the first time in this campaign."""
    new = release.rows[["customer_id", "group"]].copy()
    new["campaign_id"] = release.campaign_id
    con.register("release_groups", new)
    try:
        before = con.execute("SELECT count(*) FROM activation.campaign_audience_groups").fetchall()[
            0
        ][0]
        con.execute(
            """
            INSERT INTO activation.campaign_audience_groups
            SELECT n.campaign_id, n.customer_id, n."group", ?, ?
            FROM release_groups AS n
            ANTI JOIN activation.campaign_audience_groups AS g
                ON g.campaign_id = n.campaign_id AND g.customer_id = n.customer_id
            """,
            [release.as_of, release.release_id],
        )
        after = con.execute("SELECT count(*) FROM activation.campaign_audience_groups").fetchall()[
            0
        ][0]
    finally:
        con.unregister("release_groups")
    return int(after - before)
