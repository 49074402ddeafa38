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
