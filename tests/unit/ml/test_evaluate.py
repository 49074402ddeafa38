import numpy as np
import pytest

from ml.evaluate import gains_table, lift_and_capture, metrics
from ml.score import band, select_audience


def test_lift_and_capture_at_the_top():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 10)
    scores = np.where(y == 1, 0.9, 0.1)
    lift, capture = lift_and_capture(y, scores, 0.2)
    assert lift == pytest.approx(5.0) and capture == pytest.approx(1.0)
    lift, capture = lift_and_capture(y, scores, 0.1)
    assert lift == pytest.approx(5.0) and capture == pytest.approx(0.5)


def test_ties_are_split_fairly_not_by_row_order():
    y = np.array([1] * 50 + [0] * 950)
    scores = np.full(1000, 0.05)  # one leaf for everyone: no information
    lift, _ = lift_and_capture(y, scores, 0.1)
    assert lift == pytest.approx(1.0, abs=0.5)  # not 10, which taking the first rows would give


def test_gains_table_adds_up():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.1).astype(int)
    table = gains_table(y, rng.random(1000))
    assert list(table.decile) == list(range(1, 11))
    assert table.customers.sum() == 1000 and table.adopters.sum() == y.sum()
    assert table.cumulative_capture.iloc[-1] == pytest.approx(1.0)


def test_metrics_of_one_class_are_not_numbers():
    out = metrics(np.zeros(10), np.linspace(0, 1, 10))
    assert np.isnan(out["roc_auc"]) and out["positives"] == 0


def test_bands():
    assert list(band(np.array([0.95, 0.6, 0.1, 0.01]))) == [">=90%", "50%-90%", "5%-50%", "<5%"]


def test_audience_by_expected_value_keeps_profitable_contacts_only():
    import pandas as pd

    scored = pd.DataFrame({"customer_id": list("abcd"), "score": [0.9, 0.5, 0.05, 0.01]})
    chosen = select_audience(scored, {"selection": "expected_value", "contact_cost": 2.0}, 10.0)
    assert list(chosen.customer_id) == ["a", "b"]  # 0.05 x 10 - 2 < 0
    top = select_audience(scored, {"selection": "top_n", "top_n": 3}, None)
    assert list(top.customer_id) == ["a", "b", "c"] and list(top.list_rank) == [1, 2, 3]


def test_a_list_is_cut_at_the_smallest_of_value_budget_and_size():
    import pandas as pd

    scores = np.linspace(0.9, 0.01, 100)
    scored = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(100)], "score": scores})
    by_value = {"selection": "expected_value", "contact_cost": 2.0}
    positive = int((scores * 10.0 - 2.0 > 0).sum())
    assert len(select_audience(scored, by_value, 10.0)) == positive
    # a budget of 60 buys 30 contacts at 2 each: fewer than the positive-value ones
    cut = select_audience(scored, {**by_value, "budget": 60}, 10.0, "OFFER-A")
    assert len(cut) == 30 and cut.selected_by.iloc[0] == "expected_value, cut by budget"
    assert list(cut.customer_id) == [f"C{i:03d}" for i in range(30)]  # the best 30
    # a per-offer budget wins over the default; the maximum size when it is smaller
    per_offer = {**by_value, "budget": 60, "budgets": {"OFFER-A": 1000}, "max_size": 12}
    assert len(select_audience(scored, per_offer, 10.0, "OFFER-A")) == 12
    assert len(select_audience(scored, per_offer, 10.0, "OFFER-B")) == 12
    loose = {**by_value, "budgets": {"OFFER-A": 1000}}
    assert select_audience(scored, loose, 10.0, "OFFER-A").selected_by.iloc[0] == "expected_value"


def test_the_cost_curve_adds_scores_and_costs_and_marks_the_cut():
    import pandas as pd

    from ml.score import CURVE_POINTS, cost_curve

    scored = pd.DataFrame({"score": [0.1, 0.5, 0.3, 0.9] * 25})
    curve = cost_curve(scored, margin=10.0, contact_cost=2.0, cut=7)
    assert curve.list_size.iloc[0] == 0 and curve.list_size.iloc[-1] == 100
    assert len(curve) <= CURVE_POINTS + 2 and curve.is_cut.sum() == 1
    at_cut = curve[curve.is_cut].iloc[0]
    # the 7 best: 25 customers score 0.9, so all seven are 0.9
    assert at_cut.list_size == 7 and at_cut.expected_responders == pytest.approx(6.3)
    assert at_cut.cost == 14 and at_cut.expected_return == pytest.approx(63 - 14)
    everyone = curve.iloc[-1]
    assert everyone.expected_responders == pytest.approx(45.0)
    assert (np.diff(curve.expected_responders) >= 0).all()
