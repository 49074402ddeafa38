"""The CLV fit against Fader, Hardie and Lee's published results on the CDNOW sample.

BG/NBD ("Counting Your Customers the Easy Way", 2005): r = 0.243, alpha = 4.414,
a = 0.793, b = 2.426 (weeks). Gamma-Gamma ("RFM and CLV", 2005, spend model): p = 6.25,
q = 3.74, gamma = 15.44. tests/data/cdnow_summary.csv is their public 2,357-customer sample
(x = repeat purchases, t_x = recency, T = age in weeks, zbar = mean repeat spend).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from ml.clv import NotEnoughData, fit, predict

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    raw = pd.read_csv(CDNOW)
    return pd.DataFrame(
        {
            "customer_id": raw["ID"].astype(str),
            "btyd_frequency": raw["x"],
            "btyd_recency_days": raw["t_x"],
            "btyd_t_days": raw["T"],
            "btyd_monetary_value": raw["zbar"].where(raw["x"] > 0),
        }
    )


@pytest.fixture(scope="module")
def models(cdnow):
    return fit(cdnow)


def test_bgnbd_reproduces_the_published_cdnow_parameters(models):
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert models.parameters[name] == pytest.approx(value, rel=0.01), name


def test_gamma_gamma_reproduces_the_published_cdnow_parameters(models):
    published = {"gg_p": 6.25, "gg_q": 3.74, "gg_v": 15.44}
    for name, value in published.items():
        assert models.parameters[name] == pytest.approx(value, rel=0.01), name


def test_predictions_are_point_values_that_behave(models, cdnow):
    out = predict(models, cdnow, date(1998, 6, 30))
    assert len(out) == len(cdnow) and out.customer_id.is_unique
    assert out.probability_alive.between(0, 1).all()
    assert (out.expected_purchases_90d >= 0).all() and (out.clv_12m >= 0).all()
    # a frequent, recent buyer is worth more than a one-off buyer of long ago
    best = out.set_index("customer_id").loc[
        cdnow.sort_values("btyd_frequency").customer_id.iloc[-1]
    ]
    one_off = out.set_index("customer_id").loc[
        cdnow[(cdnow.btyd_frequency == 0)].customer_id.iloc[0]
    ]
    assert best.clv_12m > one_off.clv_12m


def test_the_conditional_expectation_matches_the_paper(models):
    # Fader, Hardie and Lee (2005): a customer with x = 2, t_x = 30.43, T = 38.86 weeks is
    # expected to make 1.226 purchases in the next 39 weeks.
    one = pd.DataFrame({"customer_id": ["x"], "frequency": [2.0], "recency": [30.43], "T": [38.86]})
    expected = models.purchases.expected_purchases(data=one, future_t=39)
    assert float(expected.mean()) == pytest.approx(1.226, abs=0.005)


def test_too_few_repeat_buyers_is_not_a_fit(cdnow):
    with pytest.raises(NotEnoughData, match="repeat buyers"):
        fit(cdnow[cdnow.btyd_frequency == 0].head(500))


def test_a_rerun_on_the_same_input_reuses_the_fit_and_new_input_refits(cdnow, crm_home):
    from crm.warehouse import session
    from ml.clv import update_customer_lifetime_values

    with session() as con:
        con.execute("CREATE SCHEMA intermediate")
        con.register("cdnow", cdnow)
        con.execute(
            "CREATE TABLE intermediate.int_customers_purchases_summarised AS SELECT * FROM cdnow"
        )
    as_of = date(1998, 6, 30)
    first = update_customer_lifetime_values(as_of)
    again = update_customer_lifetime_values(as_of)
    assert first["status"] == again["status"] == "fitted" and again["reused"] is True
    assert again["model_version"] == first["model_version"]
    assert again["parameters"] == first["parameters"]
    # another date, or changed purchases: a new fit
    from ml.clv import SUMMARY_SQL, _reusable_fit, input_checksum

    with session() as con:
        checksum = input_checksum(con.execute(SUMMARY_SQL).df())
        assert _reusable_fit(con, as_of, checksum) is not None
        assert _reusable_fit(con, date(1998, 7, 1), checksum) is None
    with session() as con:
        con.execute(
            "UPDATE intermediate.int_customers_purchases_summarised "
            "SET btyd_frequency = btyd_frequency + 1 WHERE customer_id = '1'"
        )
    refit = update_customer_lifetime_values(as_of)
    assert "reused" not in refit
    with session() as con:
        held = con.execute(
            "SELECT count(*), min(as_of_date) FROM ml.customer_lifetime_values"
        ).fetchall()
    assert held == [(len(cdnow), as_of)]
