"""Training finds a planted rule, states it in words and in SQL that agree with the tree,
and stops with a clear message when the data cannot give a model."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.train import TrainingStopped, train_model
from tests.unit.ml.conftest import planted_frame


def planted_config():
    """The model settings for `planted_frame`'s columns, tuned on a small sample."""
    from dataclasses import replace

    from ml.config import load_config

    return replace(
        load_config().with_features(
            {"age": "age", "spend": "monthly spend", "noise": "noise"}, {"job": "occupation"}
        ),
        tuning_max_negatives=5_000,
    )


@pytest.fixture(scope="module")
def trained():
    config = planted_config()
    x_train, y_train = planted_frame(20_000, seed=1)
    x_hold, y_hold = planted_frame(10_000, seed=2)
    return train_model("demo", x_train, y_train, x_hold, y_hold, config), x_train, x_hold


def test_the_top_rule_is_the_planted_segment(trained):
    model, _, _ = trained
    top = model.rules[0]
    assert "occupation = sales" in top.words
    assert "age" in top.words and "monthly spend" in top.words
    assert top.rate_train == pytest.approx(0.9, abs=0.05)
    assert top.rate_holdout == pytest.approx(0.9, abs=0.06)
    assert top.lift > 5


def test_every_rule_predicate_selects_exactly_its_leaf(trained):
    """The SQL of each rule, run by DuckDB on the raw columns, picks the rows the tree puts
    in that rule's leaf: words and SQL describe the model, not an approximation of it."""
    model, x_train, x_hold = trained
    tree = model.pipeline.named_steps["tree"]
    for frame in (x_train, x_hold):
        leaves = tree.apply(model.pipeline[:-1].transform(frame[model.features]))
        con = duckdb.connect()
        con.register("features", frame)
        for rule in model.rules:
            ids = {
                r[0]
                for r in con.execute(
                    f"SELECT customer_id FROM features WHERE {rule.sql}"
                ).fetchall()
            }
            expected = set(frame.customer_id[leaves == rule.leaf])
            assert ids == expected, rule.words


def test_rules_cover_every_training_row_once(trained):
    model, x_train, _ = trained
    assert sum(r.support_train for r in model.rules) == len(x_train)
    assert [r.rule_id for r in model.rules] == [f"R{i:02d}" for i in range(1, len(model.rules) + 1)]
    scores = [r.score for r in model.rules]
    assert scores == sorted(scores, reverse=True)


def test_the_tree_beats_the_baselines_and_is_shallow(trained):
    model, _, _ = trained
    assert model.holdout["lift_at_10"] > model.baselines["base_rate"]["lift_at_10"]
    assert model.holdout["top_decile_z"] > 2
    assert model.params["max_depth"] <= 6
    assert model.rows["tuning_rows"] < model.rows["train"]  # tuned on a sample
    assert len(model.gains) == 10 and model.gains.customers.sum() == model.rows["holdout"]


def test_one_class_stops_training(small_config):
    x, _ = planted_frame(2_000, seed=3)
    with pytest.raises(TrainingStopped, match="one class only"):
        train_model("x", x, np.zeros(len(x)), x, np.zeros(len(x)), small_config)


def test_too_few_positives_stops_training(small_config):
    x, _ = planted_frame(2_000, seed=3)
    y = np.zeros(len(x))
    y[:5] = 1
    with pytest.raises(TrainingStopped, match="5 positives; at least 30"):
        train_model("x", x, y, x, y, small_config)


def test_a_constant_feature_frame_stops_training(small_config):
    x, y = planted_frame(2_000, seed=3)
    constant = x.assign(age=1.0, spend=1.0, noise=0.0, job="sales")
    with pytest.raises(TrainingStopped, match="constant"):
        train_model("x", constant, y, constant, y, small_config)


def test_a_tree_no_better_than_chance_is_not_a_model(small_config):
    x, _ = planted_frame(4_000, seed=4)
    xh, _ = planted_frame(4_000, seed=6)
    rng = np.random.default_rng(5)
    y = (rng.random(len(x)) < 0.1).astype(int)  # unrelated to the features
    yh = (rng.random(len(xh)) < 0.1).astype(int)
    with pytest.raises(TrainingStopped, match="not clearly better than no model"):
        train_model("x", x, y, xh, yh, small_config)


def test_accounts_without_person_attributes_train_on_what_they_have(small_config):
    """Customers that are companies: no age, no occupation; the features present decide."""
    rng = np.random.default_rng(4)
    n = 8_000
    x, _ = planted_frame(n, seed=4)
    x["age"] = np.nan
    x["job"] = None
    y = (rng.random(n) < np.where(x["spend"].between(150, 250), 0.6, 0.03)).astype(int)
    model = train_model(
        "accounts", x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :], small_config
    )
    top = model.rules[0]
    assert "spend" in top.words
    assert "age" not in top.words and "job" not in top.words
    assert top.rate_holdout == pytest.approx(0.6, abs=0.08)


def test_rules_state_the_holdout_rate_with_its_interval_and_lift_on_the_holdout(trained):
    model, _, _ = trained
    for rule in model.rules:
        assert rule.rate_holdout_low <= rule.rate_holdout <= rule.rate_holdout_high
        assert rule.lift == pytest.approx(rule.rate_holdout / model.holdout["base_rate"])
    top = model.rules[0]
    assert top.lift_train == pytest.approx(top.rate_train / top_base_rate(model))
    # the planted rate (90%) lies in the top rule's holdout interval, which is narrow
    assert top.rate_holdout_low < 0.9 < top.rate_holdout_high
    assert top.rate_holdout_high - top.rate_holdout_low < 0.15


def top_base_rate(model) -> float:
    return sum(r.adopters_train for r in model.rules) / sum(r.support_train for r in model.rules)


def test_the_wilson_interval_matches_known_values():
    from ml.rules import wilson_interval

    low, high = wilson_interval(1, 15)  # 6.7% of 15: a small leaf's rate is wide open
    assert (round(low, 4), round(high, 4)) == (0.0119, 0.2982)
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 50)
    assert low == 0.0 and 0.07 < high < 0.072


def test_no_leaf_is_smaller_than_the_minimum_support(trained):
    model, x_train, _ = trained
    assert min(r.support_train for r in model.rules) >= max(30, 0.001 * len(x_train))


def test_the_minimum_support_raises_the_leaf_grid_to_a_count_or_a_share():
    from ml.config import load_config

    config = load_config()
    assert (config.min_leaf_customers, config.min_leaf_share) == (30, 0.001)
    # 17,000 rows (the demo): 30 customers is more than 0.1%; the grid's 0.1% is raised
    assert config.leaf_share_grid(17_000) == [30 / 17_000, 0.003, 0.01]
    # 1,000,000 rows: 0.1% is 1,000 customers, more than 30
    assert config.leaf_share_grid(1_000_000) == [0.001, 0.003, 0.01]
    # 2,000 rows: every value of the grid is below 30 customers, one value is left
    assert config.leaf_share_grid(2_000) == [0.015]


def test_features_encoded_once_for_every_offer_train_the_same_tree(trained):
    """`train_offers` encodes a date's features once and gives each offer its eligible rows:
    the tree, its rules and its holdout figures are those of encoding the offer's rows
    alone."""
    from ml.train import encode

    model, x_train, x_hold = trained
    config = planted_config()
    # everyone on both dates: the offer's customers and as many others (another offer's)
    others_train, _ = planted_frame(20_000, seed=11)
    others_hold, _ = planted_frame(10_000, seed=12)
    everyone_train = pd.concat([others_train, x_train], ignore_index=True)
    everyone_hold = pd.concat([x_hold, others_hold], ignore_index=True)
    shared = encode(everyone_train, everyone_hold, model.numeric, model.categorical)
    eligible = shared.rows(np.arange(20_000, 40_000), np.arange(10_000))
    y_train, y_hold = planted_frame(20_000, seed=1)[1], planted_frame(10_000, seed=2)[1]
    again = train_model("demo", x_train, y_train, x_hold, y_hold, config, encoded=eligible)
    assert again.params == model.params
    assert [r.words for r in again.rules] == [r.words for r in model.rules]
    assert [r.support_holdout for r in again.rules] == [r.support_holdout for r in model.rules]
    assert again.holdout["lift_at_10"] == pytest.approx(model.holdout["lift_at_10"])
