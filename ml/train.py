"""Train one target-customer tree: guards, tuning on a sample, one refit, holdout
evaluation against two baselines, rules. Pure: frames in, a `TrainedModel` out.

Tuning cross-validates depth and minimum leaf weight on a stratified sample of the
training split only (every positive, at most `tuning_max_negatives` negatives weighted back
to their share), picks the shallowest tree whose score is within one fold standard
deviation of the best, then refits once on the whole training split. The holdout is a later
time window: it judges the tree's ranking, and calibrates its scores (`ml.calibration`),
so a score is an adoption rate measured on customers the tree was not grown on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from ml.calibration import calibrate
from ml.config import ModelConfig
from ml.evaluate import gains_table, metrics, top_share_comparison
from ml.pipeline import encode_rows, encoded_logistic_pipeline, tree_features
from ml.rules import Rule, extract_rules
from ml.scorecard import Scorecard

#: The tops of the list where rankings are compared (10% and 20% of the holdout).
COMPARED_SHARES = (0.10, 0.20)


class TrainingStopped(Exception):
    """A guard stopped training; the message says why. The current model stays."""


@dataclass
class TrainedModel:
    name: str
    pipeline: object
    numeric: list[str]
    categorical: list[str]
    labels: dict[str, str]
    params: dict
    cv: list[dict]
    holdout: dict
    baselines: dict
    gains: pd.DataFrame
    rules: list[Rule]
    rows: dict
    #: What calibration did (ml.calibration.calibrate's summary) and its reliability table.
    calibration: dict = field(default_factory=dict)
    reliability: pd.DataFrame | None = None
    #: "tree" (segment rules) or "scorecard" (a points table, `ml.scorecard`).
    kind: str = "tree"
    #: The ranking at the top of the holdout against another model's (`compare_rankings`).
    ranking: dict = field(default_factory=dict)
    #: A scorecard's points table (`Scorecard.table`).
    points: list[dict] = field(default_factory=list)
    #: The uncalibrated holdout scores the ranking metrics were computed from.
    holdout_scores: np.ndarray | None = None
    seconds: dict = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def check_guards(x: pd.DataFrame, y: np.ndarray, config: ModelConfig, split: str) -> None:
    """Stop with a clear message rather than train on data that cannot give a model."""
    positives = int(np.sum(y))
    negatives = int(len(y) - positives)
    if len(y) == 0:
        raise TrainingStopped(f"the {split} split is empty")
    if positives == 0 or negatives == 0:
        raise TrainingStopped(
            f"the {split} split has one class only ({positives} positives, {negatives} negatives)"
        )
    if positives < config.min_positives:
        raise TrainingStopped(
            f"the {split} split has {positives} positives; at least "
            f"{config.min_positives} are needed"
        )
    if negatives < config.min_negatives:
        raise TrainingStopped(
            f"the {split} split has {negatives} negatives; at least "
            f"{config.min_negatives} are needed"
        )
    if not any(x[c].nunique(dropna=False) > 1 for c in x.columns):
        raise TrainingStopped(f"every feature of the {split} split is constant")


def top_decile_z(holdout: dict) -> float:
    """How many standard errors the top decile's adopters lie above what the base rate
    predicts (one-sided binomial z): small when the tree is no better than no model."""
    n_top = int(np.ceil(0.10 * holdout["rows"]))
    base = holdout["base_rate"]
    if not n_top or not 0 < base < 1 or not np.isfinite(holdout["lift_at_10"]):
        return float("nan")
    expected = base * n_top
    observed = holdout["lift_at_10"] * base * n_top
    return float((observed - expected) / np.sqrt(expected * (1 - base)))


def tuning_sample(y: np.ndarray, max_negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of every positive and a random subset of negatives, and weights that
    give the negatives back their share (so rates and probabilities stay unbiased)."""
    y = np.asarray(y, dtype=int)
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    kept = (
        negatives
        if len(negatives) <= max_negatives
        else rng.choice(negatives, size=max_negatives, replace=False)
    )
    rows = np.sort(np.concatenate([positives, kept]))
    weights = np.where(y[rows] == 1, 1.0, len(negatives) / max(len(kept), 1))
    return rows, weights


@dataclass
class Encoded:
    """The tree's inputs as arrays, encoded once by a fitted encoder (the pipeline's first
    step): numeric columns as they are, categories one-hot. Tuning, the refit, holdout
    scoring, calibration and rules all read these. The encoder learns no label, so
    `train_offers` fits it once on every customer of the training date and every offer
    uses it (its categories, and which rare ones are grouped when a column has more than
    MAX_CATEGORIES, are the date's, not one offer's), and cross-validation folds share it."""

    encoder: ColumnTransformer
    train: np.ndarray
    holdout: np.ndarray

    def rows(self, train_rows: np.ndarray, holdout_rows: np.ndarray) -> Encoded:
        """The same encoding for a subset of the rows (one offer's eligible customers)."""
        return Encoded(self.encoder, self.train[train_rows], self.holdout[holdout_rows])


def encode(
    x_train: pd.DataFrame, x_holdout: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> Encoded:
    """Fit the tree's encoder on the training features and encode both splits as float32,
    the type scikit-learn's trees work in (so no fit copies them again)."""
    encoder = tree_features(numeric, categorical).fit(x_train[numeric + categorical])
    return Encoded(encoder, encode_rows(encoder, x_train), encode_rows(encoder, x_holdout))


def tune(x: np.ndarray, y: np.ndarray, config: ModelConfig, jobs: int = 2):
    """Cross-validate the grid on the tuning sample of the encoded training rows (`jobs`
    fits at a time); return the chosen params and the table."""
    rows, weights = tuning_sample(y, config.tuning_max_negatives, config.random_state)
    xs, ys = x[rows], np.asarray(y)[rows]
    folds = min(config.cv_folds, int(ys.sum()), int(len(ys) - ys.sum()))
    grid = {
        "max_depth": list(config.max_depth),
        "min_weight_fraction_leaf": config.leaf_share_grid(len(x)),
    }
    search = GridSearchCV(
        DecisionTreeClassifier(random_state=config.random_state),
        grid,
        scoring=config.scoring,
        cv=StratifiedKFold(max(folds, 2), shuffle=True, random_state=config.random_state),
        refit=False,
        n_jobs=jobs,
        error_score="raise",
    )
    search.fit(xs, ys, sample_weight=weights)
    results = pd.DataFrame(search.cv_results_)
    table = [
        {
            "max_depth": int(r["param_max_depth"]),
            "min_weight_fraction_leaf": float(r["param_min_weight_fraction_leaf"]),
            "score": float(r["mean_test_score"]),
            "score_sd": float(r["std_test_score"]),
        }
        for _, r in results.iterrows()
    ]
    best = max(table, key=lambda t: t["score"])
    # people read these trees: the shallowest tree within `simplicity_sd` fold standard
    # deviations of the best, then the one with the largest leaves
    floor = best["score"] - config.simplicity_sd * best["score_sd"]
    near = [t for t in table if t["score"] >= floor]
    chosen = min(near, key=lambda t: (t["max_depth"], -t["min_weight_fraction_leaf"]))
    params = {
        "max_depth": chosen["max_depth"],
        "min_weight_fraction_leaf": chosen["min_weight_fraction_leaf"],
    }
    return params, table, {"tuning_rows": int(len(rows)), "tuning_positives": int(ys.sum())}


def weak_ranking(holdout: dict, config: ModelConfig) -> str | None:
    """Why a model's top 10% is no better than no model (the z guard), or None."""
    z = holdout["top_decile_z"]
    if z >= config.min_holdout_top_z:
        return None
    return (
        f"the top 10% of the holdout adopt at "
        f"{holdout['lift_at_10'] * holdout['base_rate']:.1%} against "
        f"{holdout['base_rate']:.1%} overall: not clearly better than no model "
        f"(z = {z:.1f}, {config.min_holdout_top_z} needed)"
    )


def train_model(
    name: str,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    config: ModelConfig,
    stop_when_weak: bool = True,
    encoded: Encoded | None = None,
    cv_jobs: int = 2,
) -> TrainedModel:
    """The tree for one split. A tree whose top 10% is no better than no model stops
    training (TrainingStopped), unless `stop_when_weak` is False: then the caller, who
    lets a scorecard compete, applies `weak_ranking` to whichever model it chooses.

    `encoded`: these rows already encoded (`encode`), when the caller trains several
    offers on the same features; otherwise they are encoded here. `cv_jobs`: fits at a
    time in cross-validation (1 when offers already train side by side)."""
    numeric = [c for c in config.numeric if c in x_train.columns]
    categorical = [c for c in config.categorical if c in x_train.columns]
    x_train, x_holdout = x_train[numeric + categorical], x_holdout[numeric + categorical]
    y_train, y_holdout = np.asarray(y_train, dtype=int), np.asarray(y_holdout, dtype=int)
    check_guards(x_train, y_train, config, "training")
    check_guards(x_holdout, y_holdout, config, "holdout")
    seconds = {}

    started = time.perf_counter()
    if encoded is None:
        encoded = encode(x_train, x_holdout, numeric, categorical)
    seconds["encoding"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    params, cv, sample = tune(encoded.train, y_train, config, cv_jobs)
    seconds["tuning"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    tree = DecisionTreeClassifier(random_state=config.random_state, **params)
    tree.fit(encoded.train, y_train)
    pipeline = Pipeline([("features", encoded.encoder), ("tree", tree)])
    seconds["refit"] = round(time.perf_counter() - started, 2)

    # the ranking is judged by the tree's own training rates: the calibrated scores keep
    # their order and were fitted on this holdout
    scores = tree.predict_proba(encoded.holdout)[:, 1]
    holdout = metrics(y_holdout, scores)
    holdout["top_decile_z"] = top_decile_z(holdout)
    weak = weak_ranking(holdout, config)
    if weak and stop_when_weak:
        raise TrainingStopped(weak)

    started = time.perf_counter()
    calibration = calibrate(
        pipeline,
        x_holdout,
        y_holdout,
        config.calibration_folds,
        config.random_state,
        uncalibrated=scores,
    )
    holdout["brier"] = calibration.summary["brier"]
    holdout["calibration_error"] = calibration.summary["calibration_error"]
    seconds["calibration"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    rows, weights = tuning_sample(y_train, config.tuning_max_negatives, config.random_state)
    logistic = encoded_logistic_pipeline(len(numeric), config.random_state)
    logistic.fit(encoded.train[rows], y_train[rows], logistic__sample_weight=weights)
    logistic_scores = logistic.predict_proba(encoded.holdout)[:, 1]
    baselines = {
        "logistic_regression": metrics(y_holdout, logistic_scores),
        "base_rate": metrics(y_holdout, np.full(len(y_holdout), y_train.mean())),
    }
    seconds["baselines"] = round(time.perf_counter() - started, 2)
    ranking = compare_rankings(y_holdout, scores, logistic_scores, "logistic_regression")

    started = time.perf_counter()
    rules = extract_rules(
        pipeline,
        numeric,
        categorical,
        config.labels,
        x_train,
        y_train,
        x_holdout,
        y_holdout,
        leaves=(tree.apply(encoded.train), tree.apply(encoded.holdout)),
    )
    seconds["rules"] = round(time.perf_counter() - started, 2)
    return TrainedModel(
        name=name,
        pipeline=pipeline,
        numeric=numeric,
        categorical=categorical,
        labels={c: config.labels.get(c, c) for c in numeric + categorical},
        params=params,
        cv=cv,
        holdout=holdout,
        baselines=baselines,
        gains=gains_table(y_holdout, scores),
        rules=rules,
        calibration=calibration.summary,
        reliability=calibration.reliability,
        ranking=ranking,
        holdout_scores=scores,
        rows={
            "train": int(len(y_train)),
            "train_positives": int(y_train.sum()),
            "holdout": int(len(y_holdout)),
            "holdout_positives": int(y_holdout.sum()),
            **sample,
        },
        seconds=seconds,
    )


def compare_rankings(y, scores, other_scores, other: str) -> dict:
    """This model's lift at the top 10% and 20% of the holdout against `other`'s, with
    intervals; `clearly_worse` (or `clearly_better`) when the difference's 95% interval at
    10% lies wholly below (above) zero."""
    found: dict = {"against": other}
    for share in COMPARED_SHARES:
        found[f"lift_at_{round(share * 100)}"] = top_share_comparison(
            y, scores, other_scores, share
        )
    difference = found["lift_at_10"].get("difference")
    found["clearly_worse"] = bool(difference and difference["high"] < 0)
    found["clearly_better"] = bool(difference and difference["low"] > 0)
    return found


def train_scorecard(
    name: str,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    config: ModelConfig,
    tree: TrainedModel,
) -> TrainedModel:
    """The points scorecard for the same split: bins cut on the whole training split,
    fitted on the tree's tuning sample (every adopter, reweighted others), calibrated on
    the holdout like the tree, its ranking compared with the tree's."""
    started = time.perf_counter()
    numeric = [c for c in config.numeric if c in x_train.columns]
    categorical = [c for c in config.categorical if c in x_train.columns]
    y_train, y_holdout = np.asarray(y_train, dtype=int), np.asarray(y_holdout, dtype=int)
    rows, weights = tuning_sample(y_train, config.tuning_max_negatives, config.random_state)
    card = Scorecard(
        numeric,
        categorical,
        {c: config.labels.get(c, c) for c in numeric + categorical},
        random_state=config.random_state,
        **config.scorecard,
    )
    card.fit(x_train.iloc[rows], y_train[rows], sample_weight=weights, bins_from=x_train)
    scores = card.predict_proba(x_holdout)[:, 1]
    holdout = metrics(y_holdout, scores)
    holdout["top_decile_z"] = top_decile_z(holdout)
    calibration = calibrate(
        card, x_holdout, y_holdout, config.calibration_folds, config.random_state
    )
    holdout["brier"] = calibration.summary["brier"]
    holdout["calibration_error"] = calibration.summary["calibration_error"]
    return TrainedModel(
        name=name,
        pipeline=card,
        numeric=[c for c in card.features if c in numeric],
        categorical=[c for c in card.features if c in categorical],
        labels=card.labels,
        params={
            "features": card.features,
            "points_to_double_odds": card.points_to_double_odds,
        },
        cv=[],
        holdout=holdout,
        baselines=tree.baselines,
        gains=gains_table(y_holdout, scores),
        rules=[],
        calibration=calibration.summary,
        reliability=calibration.reliability,
        kind="scorecard",
        ranking=compare_rankings(y_holdout, scores, tree.holdout_scores, "tree"),
        points=card.table(),
        rows={**tree.rows, "scorecard_rows": int(len(rows))},
        seconds={"scorecard": round(time.perf_counter() - started, 2)},
    )


def choose_challenger(tree: TrainedModel, card: TrainedModel | None) -> tuple[TrainedModel, str]:
    """This training's challenger: the tree, whose segments a marketer reads as rules,
    unless the scorecard ranks clearly better at the top 10% of the holdout (the 95%
    interval of the lift difference above zero). The reason says which and why."""
    if card is None:
        return tree, "the tree (no scorecard competed)"
    compared = card.ranking["lift_at_10"]
    if "difference" not in compared:
        return tree, "the tree (no adopter on the holdout to compare rankings)"
    d = compared["difference"]
    figures = (
        f"lift at 10%: scorecard {compared['first']['lift']:.2f}, tree "
        f"{compared['second']['lift']:.2f}, difference {d['lift']:+.2f} "
        f"({d['low']:+.2f} to {d['high']:+.2f})"
    )
    if card.ranking["clearly_better"]:
        return card, f"the scorecard ranks clearly better than the tree; {figures}"
    return tree, f"the tree: the scorecard is not clearly better; {figures}"
