"""The contact policy: one offer per customer by expected value, offers held in the window
keep their place, channel capacity counts the customers contacted, exclusions are on no
list; the answer does not depend on row order, and every offer's holdout stays valid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from activation.arbitration import arbitrate, losses, recent_offers
from activation.config import ContactPolicy, load_config
from activation.holdout import HOLDOUT, TARGET
from activation.publish import publish_audiences
from crm.warehouse import session

from .conftest import AS_OF, add_scored


def rows(*triples) -> pd.DataFrame:
    return pd.DataFrame(triples, columns=["customer_id", "offer_id", "expected_value"])


def targets(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(TARGET, index=frame.index, dtype=object)


def test_each_customer_gets_the_offer_worth_most_and_the_loser_knows_to_whom():
    frame = rows(
        ("C1", "OFFER-A", 5.0),
        ("C1", "OFFER-B", 8.0),
        ("C2", "OFFER-A", 3.0),
        ("C2", "OFFER-B", 1.0),
        ("C3", "OFFER-B", 2.0),
    )
    decided = arbitrate(frame, ContactPolicy(), targets(frame))
    kept = set(decided.loc[decided.kept, ["customer_id", "offer_id"]].itertuples(index=False))
    assert kept == {("C1", "OFFER-B"), ("C2", "OFFER-A"), ("C3", "OFFER-B")}
    assert losses(decided, "OFFER-A")["lost_to"] == {"OFFER-B": 1}
    assert losses(decided, "OFFER-B")["by_reason"]["lost_to_other_offer"] == 1
    # two offers a customer may get: nobody loses
    assert arbitrate(frame, ContactPolicy(max_offers=2), targets(frame)).kept.all()
    # the same rows in another order: the same answer (ties broken by offer id)
    shuffled = frame.sample(frac=1, random_state=3)
    again = arbitrate(shuffled, ContactPolicy(), targets(shuffled))
    assert again.sort_index().equals(decided.sort_index())
    tie = rows(("C9", "OFFER-B", 4.0), ("C9", "OFFER-A", 4.0))
    assert arbitrate(tie, ContactPolicy(), targets(tie)).query("kept").offer_id.tolist() == [
        "OFFER-A"
    ]


def test_an_offer_held_in_the_window_keeps_its_place_in_either_group(home):
    with session(settings=home) as con:
        con.execute(
            "INSERT INTO activation.campaign_audiences (release_id, customer_id, offer_id, "
            "campaign_id, \"group\", as_of_date) VALUES ('r', 'C1', 'OFFER-B', 'OFFER-B', "
            "'holdout', ?)",
            [AS_OF - pd.Timedelta(days=3)],
        )
        recent = recent_offers(con, AS_OF, 7)
    assert recent.to_dict("records") == [{"customer_id": "C1", "offer_id": "OFFER-B"}]


def test_an_offer_held_in_the_window_keeps_its_place():
    frame = rows(("C1", "OFFER-A", 9.0), ("C1", "OFFER-B", 1.0))
    recent = pd.DataFrame({"customer_id": ["C1"], "offer_id": ["OFFER-B"]})
    decided = arbitrate(frame, ContactPolicy(), targets(frame), recent)
    assert decided.set_index("offer_id").kept.to_dict() == {"OFFER-A": False, "OFFER-B": True}
    # an offer held in the window that is not on today's lists still takes the place
    other = pd.DataFrame({"customer_id": ["C1"], "offer_id": ["OFFER-Z"]})
    assert not arbitrate(frame, ContactPolicy(), targets(frame), other).kept.any()


def test_channel_capacity_counts_customers_contacted_not_holdouts():
    frame = rows(*[(f"C{i}", "OFFER-A", 10.0 - i) for i in range(8)])
    groups = pd.Series([TARGET, HOLDOUT, TARGET, TARGET, HOLDOUT, TARGET, TARGET, TARGET])
    policy = ContactPolicy(offer_channels={"OFFER-A": "phone"}, capacity_per_day={"phone": 3})
    decided = arbitrate(frame, policy, groups)
    # the best three targets (C0, C2, C3) and the holdouts among them (C1) are kept
    assert decided.query("kept").customer_id.tolist() == ["C0", "C1", "C2", "C3"]
    assert set(decided.query("not kept").reason) == {"over_channel_capacity"}
    assert (decided.channel == "phone").all()
    # another channel has no limit
    assert arbitrate(frame, ContactPolicy(capacity_per_day={"phone": 3}), groups).kept.all()
    # a customer a full channel has no room for keeps the place for another channel's offer
    both = rows(("C0", "OFFER-A", 9.0), ("C1", "OFFER-A", 5.0), ("C1", "OFFER-B", 3.0))
    one_call = replace(policy, capacity_per_day={"phone": 1})
    decided = arbitrate(both, one_call, targets(both))
    kept = set(decided.loc[decided.kept, ["customer_id", "offer_id"]].itertuples(index=False))
    assert kept == {("C0", "OFFER-A"), ("C1", "OFFER-B")}
    assert losses(decided, "OFFER-B")["lost_to"] == {}


def test_excluded_customers_are_on_no_list():
    frame = rows(("C1", "OFFER-A", 5.0), ("C1", "OFFER-B", 1.0), ("C2", "OFFER-A", 1.0))
    exclusions = pd.DataFrame({"customer_id": ["C1"], "reason": ["legal hold"]})
    decided = arbitrate(frame, ContactPolicy(), targets(frame), exclusions=exclusions)
    assert decided.query("kept").customer_id.tolist() == ["C2"]
    assert set(decided.query("not kept").reason) == {"excluded"}


def test_released_lists_share_no_customer_and_keep_their_holdouts_valid(home):
    customers = [f"C{i:03d}" for i in range(1, 201)]
    with session(settings=home) as con:
        # OFFER-B's scores run the other way: the two lists want the same customers
        add_scored(con, "OFFER-A", customers)
        add_scored(con, "OFFER-B", customers[::-1])
    (home.landing / "exclusions.csv").write_text("customer_id,reason\nC007,complaint open\n")
    config = replace(load_config(), holdout_share=0.3, destinations=())
    summary = publish_audiences(AS_OF, settings=home, config=config)
    lists = {
        offer: pd.read_parquet(home.audiences / offer / "latest" / "audience.parquet")
        for offer in ("OFFER-A", "OFFER-B")
    }
    a, b = lists["OFFER-A"], lists["OFFER-B"]
    assert not set(a.customer_id) & set(b.customer_id)
    assert len(a) + len(b) == 199 and "C007" not in set(a.customer_id) | set(b.customer_id)
    # each customer went where the expected value was higher: A's best are A's
    assert {"C001", "C002"} <= set(a.customer_id) and {"C200", "C199"} <= set(b.customer_id)
    for offer, frame in lists.items():
        manifest = summary["offers"][offer]["manifest"]
        arbitration = manifest["arbitration"]
        other = "OFFER-B" if offer == "OFFER-A" else "OFFER-A"
        assert arbitration["lost_to"] == {
            other: 200 - len(frame) - arbitration["by_reason"]["excluded"]
        }
        assert manifest["suppressed"]["lost_to_other_offer"] == arbitration["lost_to"][other]
        # the holdout is the hash's share of the list the policy kept
        share = (frame.group == HOLDOUT).mean()
        assert 0.15 < share < 0.45
    # and the day's holdouts are drawn from the kept lists only
    with session(read_only=True, settings=home) as con:
        held = con.execute(
            "SELECT offer_id, customer_id FROM activation.same_day_holdouts WHERE as_of_date = ?",
            [AS_OF],
        ).fetchall()
    for offer, customer in held:
        assert customer in set(lists[offer].customer_id)
    assert np.isclose(len(held), sum((f.group == HOLDOUT).sum() for f in lists.values()))
