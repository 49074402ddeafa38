"""Who may be contacted: the release candidates of a scored list, as the suppression rule
gives them (the dbt view `audiences.audience_candidates`: already an adopter, opted out, in
another campaign's holdout, contacted too recently, no valid contact), and what activation
writes for the rule to read first (the campaign settings, the holdouts drawn that day).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from activation.config import ActivationConfig
from activation.holdout import HOLDOUT, assign_groups, known_groups

#: Why a scored customer is left out of a release, in the order the rule checks them
#: (audience_candidates.sql): a customer is counted under the first reason that applies.
SUPPRESSION_REASONS = (
    "already_adopted",
    "opted_out",
    "other_campaign_holdout",
    "cooling_off",
    "invalid_contact",
)

#: What a release takes from the rule's rows.
CANDIDATE_COLUMNS = (
    "customer_id",
    "offer_id",
    "score",
    "band",
    "decile",
    "rule_id",
    "rule",
    "list_rank",
    "expected_value",
    "model_version",
    "selected_by",
    "full_name",
    "email",
    "phone",
    "suppressed_because",
)


def write_rule_inputs(con, as_of: date, config: ActivationConfig, lists: pd.DataFrame) -> None:
    """What the suppression rule (the dbt view `audiences.audience_candidates`) reads from
    activation, for every offer scored on the date: which campaign it goes out as with the
    two windows (`activation.campaign_settings`), and the holdouts drawn from `lists`
    (offer_id, customer_id: the day's lists after the contact policy; persisted
    assignment or hash) into `activation.same_day_holdouts`, which the other offers' lists
    of the day leave out, whatever order the offers are released in. Empty `lists`: no
    holdout is drawn yet (the policy reads the rule before deciding)."""
    scored = con.execute(
        "SELECT DISTINCT offer_id FROM ml.offer_audiences WHERE as_of_date = ? ORDER BY 1",
        [as_of],
    ).df()
    settings = pd.DataFrame({"offer_id": scored["offer_id"].astype(str)})
    settings["campaign_id"] = [config.campaign_for(str(o)) for o in settings["offer_id"]]
    settings["cooling_off_days"] = config.cooling_off_days
    settings["holdout_protect_days"] = config.holdout_protect_days
    held = [
        pd.DataFrame({"offer_id": [], "campaign_id": [], "customer_id": pd.Series(dtype=object)})
    ]
    for offer, members in lists.groupby("offer_id"):
        campaign = config.campaign_for(str(offer))
        known = known_groups(con, campaign)
        groups = assign_groups(campaign, members["customer_id"], config.holdout_share, known)
        held.append(
            pd.DataFrame(
                {
                    "offer_id": offer,
                    "campaign_id": campaign,
                    "customer_id": members["customer_id"][groups == HOLDOUT].astype(object),
                }
            )
        )
    holdouts = pd.concat(held, ignore_index=True)
    con.register("new_settings", settings)
    con.register("new_holdouts", holdouts)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "DELETE FROM activation.campaign_settings "
            "WHERE offer_id IN (SELECT offer_id FROM new_settings)"
        )
        con.execute(
            "INSERT INTO activation.campaign_settings SELECT offer_id, campaign_id, "
            "cooling_off_days, holdout_protect_days FROM new_settings"
        )
        con.execute("DELETE FROM activation.same_day_holdouts WHERE as_of_date = ?", [as_of])
        con.execute(
            "INSERT INTO activation.same_day_holdouts SELECT ?, offer_id, campaign_id, "
            "customer_id FROM new_holdouts",
            [as_of],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("new_settings")
        con.unregister("new_holdouts")


def candidates(con, offer: str | None, as_of: date) -> pd.DataFrame:
    """The offer's (None: every offer's) scored list for the date with contact fields and,
    per customer, the first suppression reason that applies (NULL: keep), as the rule gives
    it (`audiences.audience_candidates`, after `write_rule_inputs`)."""
    from crm.errors import CrmError
    from crm.warehouse import table_exists

    if not table_exists(con, "audiences", "audience_candidates"):
        raise CrmError(
            "the suppression rule (audiences.audience_candidates) is not built in this "
            "warehouse yet: run the pipeline (crm run) before publishing audiences"
        )
    return con.execute(
        f"""
        SELECT {", ".join(CANDIDATE_COLUMNS)}
        FROM audiences.audience_candidates
        WHERE as_of_date = ? AND (offer_id = ? OR ? IS NULL)
        ORDER BY offer_id, list_rank
        """,
        [as_of, offer, offer],
    ).df()
