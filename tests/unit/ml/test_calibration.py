"""Scores are calibrated: on synthetic customers whose adoption probabilities are known,
the score of each tenth of the ranking is within a point of the true mean probability,
also when adoption fell between the training and the holdout window, where the tree's own
training rates are off by several points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml.calibration import calibrate, calibration_error, reliability_table
from ml.config import load_config
from ml.pipeline import tree_pipeline
from ml.train import train_model

#: The bound a calibrated model must meet against the true probabilities (a share).
CALIBRATION_BOUND = 0.01


def known_probabilities(n: int, seed: int, scale: float = 1.0):
    """Customers, their adoption, and the probability it was drawn with: a base of 2%,
    plus 10 points above a monthly spend of 200, 25 for salespeople under 35 and 40 for
    customers over 60 spending under 50; all times `scale` (a later, weaker window)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "age": rng.integers(18, 70, n).astype(float),
            "spend": np.round(rng.uniform(0, 400, n), 2),
            "noise": rng.normal(size=n),
            "job": rng.choice(["sales", "clerk", "nurse"], size=n, p=[0.4, 0.35, 0.25]),
        }
    )
    p = (
        0.02
        + 0.10 * (frame.spend > 200)
        + 0.25 * ((frame.job == "sales") & (frame.age < 35))
        + 0.40 * ((frame.age > 60) & (frame.spend < 50))
    ).to_numpy() * scale
    return frame, (rng.random(n) < p).astype(int), p


@pytest.fixture(scope="module")
def config():
    base = load_config().with_features(
        {"age": "age", "spend": "monthly spend", "noise": "noise"}, {"job": "occupation"}
    )
    return replace(base, tuning_max_negatives=5_000)


def true_error(model, scale: float) -> tuple[float, float]:
    """(calibrated, training-rate) error against the true probabilities of fresh customers
    of the holdout's window, by tenth of the calibrated ranking."""
    fresh, _, p = known_probabilities(100_000, seed=3, scale=scale)
    scores = model.pipeline.predict_proba(fresh[model.features])[:, 1]
    tree = model.pipeline.named_steps["tree"]
    leaves = tree.apply(model.pipeline[:-1].transform(fresh[model.features]))
    training = {r.leaf: r.rate_train for r in model.rules}
    training_scores = np.array([training[leaf] for leaf in leaves])
    return (
        calibration_error(reliability_table(p, scores)),
        calibration_error(reliability_table(p, training_scores)),
    )


@pytest.mark.parametrize("scale", [1.0, 0.6], ids=["same window", "adoption fell 40%"])
def test_scores_match_the_known_probabilities(config, scale):
    x_train, y_train, _ = known_probabilities(20_000, seed=1)
    x_hold, y_hold, _ = known_probabilities(10_000, seed=2, scale=scale)
    model = train_model("known", x_train, y_train, x_hold, y_hold, config)
    calibrated, training = true_error(model, scale)
    assert calibrated < CALIBRATION_BOUND
    if scale < 1:
        # the training rates cannot know adoption fell; the holdout's leaves do
        assert training > 3 * CALIBRATION_BOUND
    # the out-of-fold check on the holdout tells the same story as the truth
    assert model.calibration["calibration_error"] < 2 * CALIBRATION_BOUND
    assert model.holdout["brier"] < model.calibration["brier_base_rate"]
    table = model.reliability
    assert table.customers.sum() == len(y_hold) and len(table) == 10
    assert (table.observed_low <= table.observed).all()
    assert (table.observed <= table.observed_high).all()


def test_rules_carry_the_score_their_customers_get(config):
    x_train, y_train, _ = known_probabilities(20_000, seed=1)
    x_hold, y_hold, _ = known_probabilities(10_000, seed=2, scale=0.6)
    model = train_model("known", x_train, y_train, x_hold, y_hold, config)
    tree = model.pipeline.named_steps["tree"]
    leaves = tree.apply(model.pipeline[:-1].transform(x_hold[model.features]))
    scores = model.pipeline.predict_proba(x_hold[model.features])[:, 1]
    for rule in model.rules:
        assert np.allclose(scores[leaves == rule.leaf], rule.score)
    assert [r.score for r in model.rules] == sorted((r.score for r in model.rules), reverse=True)


def test_scores_keep_the_tree_order_and_pool_leaves_the_holdout_reverses():
    """Three leaves the tree ranks 90% > 50% > 10% in training; on the holdout the first
    adopts at 40% and the second at 60%: both score their joint 50%, the third its 10%."""
    x = pd.DataFrame({"x": np.repeat([0.0, 1.0, 2.0], 100)})
    pipeline = tree_pipeline(["x"], [], random_state=0, max_depth=2)
    pipeline.fit(x, np.concatenate([np.arange(100) < n for n in (90, 50, 10)]).astype(int))
    y_hold = np.concatenate([np.arange(100) < n for n in (40, 60, 10)]).astype(int)
    calibration = calibrate(pipeline, x, y_hold, folds=5, seed=0)
    scores = pipeline.predict_proba(pd.DataFrame({"x": [0.0, 1.0, 2.0]}))[:, 1]
    assert scores == pytest.approx([0.5, 0.5, 0.1])
    assert calibration.node_scores.max() == pytest.approx(0.5)
    # the uncalibrated tree said 90% for the first leaf: its Brier score is worse
    assert calibration.summary["brier"] < calibration.summary["brier_training_rates"]
