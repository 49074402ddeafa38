"""The points scorecard and the ranking comparison: where adoption adds up over many
features, the tree ranks clearly worse than the logistic baseline, the scorecard ranks
clearly better than the tree and becomes the challenger; where one segment decides, the
tree stays. A scorecard is saved, loaded and scored like a tree, in whole points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml.config import load_config
from ml.evaluate import top_share_comparison
from ml.registry import load_model, save_model, training_rate_scores
from ml.score import score_frame
from ml.scorecard import Scorecard
from ml.train import choose_challenger, train_model, train_scorecard
from tests.unit.ml.conftest import planted_frame


def additive_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Adoption whose log-odds add up: half a unit per standard deviation of six features,
    0.7 for job a, from a base of -4 (about 4% adopt)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)]})
    logit = np.full(n, -4.0)
    for j in range(6):
        frame[f"x{j}"] = rng.normal(size=n)
        logit += 0.5 * frame[f"x{j}"].to_numpy()
    frame["job"] = rng.choice(["a", "b", "c"], size=n)
    logit += np.where(frame.job == "a", 0.7, 0.0)
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def config_for(numeric: dict, categorical: dict):
    return replace(load_config().with_features(numeric, categorical), tuning_max_negatives=5_000)


@pytest.fixture(scope="module")
def additive_models():
    config = config_for({f"x{j}": f"x{j}" for j in range(6)}, {"job": "job"})
    x_train, y_train = additive_frame(20_000, seed=1)
    x_hold, y_hold = additive_frame(20_000, seed=2)
    tree = train_model("additive", x_train, y_train, x_hold, y_hold, config)
    card = train_scorecard("additive", x_train, y_train, x_hold, y_hold, config, tree)
    return tree, card, x_hold


def test_where_adoption_adds_up_the_scorecard_wins_and_the_gate_says_why(additive_models):
    tree, card, _ = additive_models
    # the gate's record: the tree is clearly worse than the logistic baseline at the top
    assert tree.ranking["against"] == "logistic_regression"
    assert tree.ranking["clearly_worse"]
    assert tree.ranking["lift_at_10"]["difference"]["high"] < 0
    assert {"lift_at_10", "lift_at_20"} <= set(tree.ranking)
    # and the scorecard, compared with the tree, is clearly better
    assert card.ranking["against"] == "tree" and card.ranking["clearly_better"]
    chosen, why = choose_challenger(tree, card)
    assert chosen is card
    assert why.startswith("the scorecard ranks clearly better") and "lift at 10%" in why
    assert card.calibration["calibration_error"] < 0.02


def test_where_one_segment_decides_the_tree_stays():
    config = config_for({"age": "age", "spend": "monthly spend", "noise": "noise"}, {"job": "job"})
    x_train, y_train = planted_frame(20_000, seed=1)
    x_hold, y_hold = planted_frame(10_000, seed=2)
    tree = train_model("planted", x_train, y_train, x_hold, y_hold, config)
    card = train_scorecard("planted", x_train, y_train, x_hold, y_hold, config, tree)
    assert not tree.ranking["clearly_worse"]
    chosen, why = choose_challenger(tree, card)
    assert chosen is tree and why.startswith("the tree")


def test_points_are_whole_each_feature_starts_at_zero_and_more_points_rank_higher(
    additive_models,
):
    _, card, x_hold = additive_models
    scorecard: Scorecard = card.pipeline
    assert 1 <= len(scorecard.features) <= 8
    for bins in scorecard.bins.values():
        assert min(b.points for b in bins) == 0
        assert all(isinstance(b.points, int) for b in bins)
    points = scorecard.points(x_hold)
    probability = scorecard.training_probability(x_hold)
    order = np.argsort(points)
    assert np.all(np.diff(probability[order]) >= -1e-12)
    # the table a marketer reads has every bin with its points
    assert {row["feature"] for row in card.points} == set(scorecard.features)


def test_bins_route_edges_missing_values_and_unseen_categories():
    x = pd.DataFrame(
        {"spend": np.arange(100, dtype=float), "job": ["a"] * 50 + ["b"] * 49 + [None]}
    )
    y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    card = Scorecard(["spend"], ["job"], {"spend": "spend", "job": "job"}, max_features=2)
    card.fit(x, y)
    spend = card.bins["spend"]
    # quintile edges; a value on an edge belongs to the bin it closes
    edge = spend[0].upper
    assert card._bin_index("spend", pd.Series([edge, edge + 0.01, np.nan])).tolist() == [
        0,
        1,
        len(spend) - 1,
    ]
    jobs = card.bins["job"]
    index = card._bin_index("job", pd.Series(["a", "zz", None], dtype=object)).tolist()
    assert [jobs[i].words for i in index] == ["job = a", "job any other", "job unknown"]


def test_a_saved_scorecard_loads_scores_and_explains_in_points(additive_models, tmp_path):
    _, card, x_hold = additive_models
    folder = save_model(card, tmp_path / "v1", {"offer": "OFFER-A"})
    assert (folder / "scorecard.md").read_text().count("|") > 10
    model, metadata = load_model(folder)
    assert metadata["kind"] == "scorecard"
    scored = score_frame(model, folder, x_hold.head(50), "customer_id")
    assert scored.score.between(0, 1).all()
    assert np.allclose(scored.score, model.predict_proba(x_hold.head(50))[:, 1])
    assert scored.rule_id.str.fullmatch(r"\d+ points").all()
    first = scored.rule.iloc[0]
    assert first.startswith(scored.rule_id.iloc[0]) and " +" in first
    # the gate ranks a scorecard champion by its points, as training made it
    ranked = training_rate_scores(model, folder, x_hold.head(50))
    assert np.array_equal(
        np.argsort(ranked), np.argsort(model.training_probability(x_hold.head(50)))
    )


def test_customers_get_the_words_of_their_own_bins(additive_models):
    # the words are written once per combination of bins: each row must still get its own
    card, rows = additive_models[1].pipeline, additive_models[2].head(300)
    together = card.reasons(rows)
    alone = [card.reasons(rows.iloc[[i]])[0] for i in range(len(rows))]
    assert list(together) == alone
    assert len(set(alone)) > 20
    assert [int(t.split()[0]) for t in together] == card.points(rows).astype(int).tolist()


def test_the_lift_difference_is_paired_and_zero_for_the_same_ranking():
    rng = np.random.default_rng(0)
    y = (rng.random(5_000) < 0.05).astype(int)
    perfect = y + rng.random(5_000) * 0.1
    noise = rng.random(5_000)
    same = top_share_comparison(y, perfect, perfect, 0.10)
    assert same["difference"] == {"lift": 0.0, "low": 0.0, "high": 0.0}
    better = top_share_comparison(y, perfect, noise, 0.10)
    assert better["first"]["lift"] == pytest.approx(1 / y.mean() * min(1, y.mean() / 0.10))
    assert better["difference"]["low"] > 0
    assert better["first"]["low"] <= better["first"]["lift"] <= better["first"]["high"]


def test_a_boolean_category_is_binned_by_its_values():
    rng = np.random.default_rng(5)
    flag = rng.random(4_000) < 0.5
    x = pd.DataFrame({"flag": flag.astype(object), "noise": rng.normal(size=4_000)})
    y = (rng.random(4_000) < np.where(flag, 0.3, 0.02)).astype(int)
    card = Scorecard(["noise"], ["flag"], {"flag": "member", "noise": "noise"}).fit(x, y)
    assert card.information_value["flag"] > 0.5
    words = {b.words: b.points for b in card.bins["flag"]}
    assert words["member = True"] > words["member = False"]


def test_model_config_defaults_and_refusals(tmp_path):
    import yaml

    from crm.errors import BadInputError
    from ml.config import CONFIG_PATH, load_config

    doc = yaml.safe_load(CONFIG_PATH.read_text())
    older = {k: v for k, v in doc.items() if k not in ("calibration", "scorecard")}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(older))
    config = load_config(path)  # a config from before calibration and the scorecard
    assert config.calibration_folds == 5 and config.scorecard_compete
    doc["audience"]["budget"] = -10
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BadInputError, match="audience.budget must be 0 or more"):
        load_config(path)


def test_a_weak_tree_is_stopped_unless_its_caller_lets_a_scorecard_compete():
    from ml.train import TrainingStopped, weak_ranking

    config = config_for({"age": "age", "spend": "spend", "noise": "noise"}, {"job": "job"})
    rng = np.random.default_rng(11)
    x_train, _ = planted_frame(6_000, seed=11)
    x_hold, _ = planted_frame(6_000, seed=12)
    y_train = (rng.random(6_000) < 0.05).astype(int)  # adoption that nothing predicts
    y_hold = (rng.random(6_000) < 0.05).astype(int)
    with pytest.raises(TrainingStopped, match="not clearly better than no model"):
        train_model("noise", x_train, y_train, x_hold, y_hold, config)
    tree = train_model("noise", x_train, y_train, x_hold, y_hold, config, stop_when_weak=False)
    assert "not clearly better than no model" in weak_ranking(tree.holdout, config)
