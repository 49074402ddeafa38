"""Calibrated scores: a customer's score is the adoption rate of customers like them
measured on customers the tree was not grown on, so a score of 0.30 means about 30 in 100
adopt.

A tree's own leaf values are the training rates of the rows it was grown to separate:
optimistic for the leaves it chose because they looked good, noisy for small ones, and
blind to a change in adoption since the training window. The tree's ranking is kept (it
is what the tree learned, and what the gate judges), and the holdout window, the latest
whose outcomes are known, says what each rank is worth: an isotonic regression of holdout
adoption on the leaf's training rate. Each leaf scores its holdout customers' adoption
rate, except where a leaf the tree ranked higher adopted less on the holdout: such leaves
are pooled and score their joint rate (pool adjacent violators), so the score never
reverses the tree's order and a small leaf's noise is averaged with its neighbours'.

The check is honest: the holdout is cut into folds, and each holdout customer is scored by
a regression fitted on the other folds. Those out-of-fold scores give the Brier score and
the reliability table (predicted against observed adoption by tenth of the ranking); the
model that is saved carries the regression fitted on the whole holdout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from ml.evaluate import ranking
from ml.rules import wilson_interval


@dataclass
class Calibration:
    #: The calibrated score of every node of a tree (leaves are what customers get).
    node_scores: np.ndarray | None
    #: Each holdout customer's score from a regression fitted on the other folds.
    out_of_fold: np.ndarray
    reliability: pd.DataFrame
    summary: dict


def _isotonic(training_rates, y) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(training_rates, y)


def out_of_fold_scores(training_rates, y, folds: int, seed: int) -> np.ndarray:
    """Each row's calibrated score from a regression fitted on the other folds."""
    training_rates, y = np.asarray(training_rates, dtype=float), np.asarray(y, dtype=float)
    folds = max(folds, 2)
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    scores = np.empty(len(y))
    for k in range(folds):
        held = fold == k
        scores[held] = _isotonic(training_rates[~held], y[~held]).predict(training_rates[held])
    return scores


def set_node_scores(pipeline, scores: np.ndarray) -> None:
    """Make the tree predict `scores` (a probability per node) from now on. Saved with the
    model, so every reader of the pipeline (scoring, `crm score`) gets them."""
    values = pipeline.named_steps["tree"].tree_.value
    values[:, 0, 1] = scores
    values[:, 0, 0] = 1.0 - scores


def brier(y, scores) -> float:
    y, scores = np.asarray(y, dtype=float), np.asarray(scores, dtype=float)
    return float(np.mean((scores - y) ** 2)) if len(y) else float("nan")


def reliability_table(y, scores, bins: int = 10) -> pd.DataFrame:
    """Predicted against observed adoption by tenth of the ranking (1 = highest scores):
    customers, mean score, adopters, observed rate and its Wilson 95% interval. `y` may be
    outcomes or, in tests, the true probabilities."""
    y, scores = np.asarray(y, dtype=float), np.asarray(scores, dtype=float)
    group = np.empty(len(y), dtype=int)
    group[ranking(scores)] = np.arange(len(y)) * bins // max(len(y), 1) + 1
    table = (
        pd.DataFrame({"group": group, "score": scores, "y": y})
        .groupby("group")
        .agg(customers=("y", "size"), predicted=("score", "mean"), adopters=("y", "sum"))
        .reset_index()
    )
    table["observed"] = table.adopters / table.customers
    intervals = [
        wilson_interval(round(a), int(n))
        for a, n in zip(table.adopters, table.customers, strict=True)
    ]
    table["observed_low"] = [i[0] for i in intervals]
    table["observed_high"] = [i[1] for i in intervals]
    return table


def calibration_error(table: pd.DataFrame) -> float:
    """The customer-weighted mean gap between predicted and observed rates of the table."""
    weights = table.customers / table.customers.sum()
    return float((weights * (table.predicted - table.observed).abs()).sum())


def calibrate(
    model, x_holdout: pd.DataFrame, y_holdout, folds: int, seed: int, uncalibrated=None
) -> Calibration:
    """Calibrate a fitted model on the holdout, in place, and check it out of fold: a
    tree's node values (its training rates) become calibrated scores; a scorecard
    (`ml.scorecard`) keeps the regression and applies it to its points' probability. The
    summary compares the Brier score and the calibration error with those of the
    uncalibrated scores, and the Brier score with the base rate's. `uncalibrated`: the
    model's holdout scores, when the caller has them."""
    y = np.asarray(y_holdout, dtype=float)
    if uncalibrated is None:
        uncalibrated = model.predict_proba(x_holdout)[:, 1]
    oof = out_of_fold_scores(uncalibrated, y, folds, seed)
    regression = _isotonic(uncalibrated, y)
    if getattr(model, "kind", "tree") == "scorecard":
        model.calibrator = regression
        node_scores = None
    else:
        node_scores = regression.predict(model.named_steps["tree"].tree_.value[:, 0, 1])
        set_node_scores(model, node_scores)
    table = reliability_table(y, oof)
    summary = {
        "method": "isotonic regression of holdout adoption on the uncalibrated score",
        "folds": folds,
        "brier": brier(y, oof),
        "brier_training_rates": brier(y, uncalibrated),
        "brier_base_rate": brier(y, np.full(len(y), y.mean())),
        "calibration_error": calibration_error(table),
        "calibration_error_training_rates": calibration_error(reliability_table(y, uncalibrated)),
    }
    return Calibration(node_scores, oof, table, summary)
