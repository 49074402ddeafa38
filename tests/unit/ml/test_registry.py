"""Versions, the champion, the gate and the library check."""

from __future__ import annotations

import json

import pytest

from ml.pipeline import encode_rows
from ml.registry import (
    Registry,
    RegistryError,
    gate,
    load_model,
    save_model,
    training_rate_scores,
)
from ml.train import train_model
from tests.unit.ml.conftest import planted_frame


@pytest.fixture(scope="module")
def model():
    from dataclasses import replace

    from ml.config import load_config

    config = replace(
        load_config().with_features({"age": "age", "spend": "spend"}, {"job": "job"}),
        tuning_max_negatives=3_000,
    )
    x, y = planted_frame(6_000, seed=1)
    xh, yh = planted_frame(3_000, seed=2)
    return train_model("demo", x, y, xh, yh, config)


def test_a_saved_model_loads_and_scores_the_same(model, tmp_path):
    folder = save_model(model, tmp_path / "v1", {"offer": "X"})
    for name in (
        "model.joblib",
        "metadata.json",
        "metrics.json",
        "rules.json",
        "rules.md",
        "gains.csv",
        "cv.csv",
    ):
        assert (folder / name).exists(), name
    pipeline, metadata = load_model(folder)
    x, _ = planted_frame(100, seed=9)
    assert (
        pipeline.predict_proba(x[model.features]) == model.pipeline.predict_proba(x[model.features])
    ).all()
    assert metadata["libraries"]["scikit-learn"] and metadata["git_sha"]
    assert metadata["features"] == {"numeric": model.numeric, "categorical": model.categorical}
    assert "R01" in (folder / "rules.md").read_text()
    # its ranking at the gate: each row's leaf training rate, from the frame or from rows
    # an encoder like its own already encoded
    scores = training_rate_scores(pipeline, folder, x)
    rates = {r.leaf: r.rate_train for r in model.rules}
    leaves = pipeline.named_steps["tree"].apply(pipeline[:-1].transform(x[model.features]))
    assert scores.tolist() == [rates[leaf] for leaf in leaves]
    encoded = encode_rows(pipeline.named_steps["features"], x)
    assert (training_rate_scores(pipeline, folder, None, encoded=encoded) == scores).all()


def test_loading_refuses_other_library_versions(model, tmp_path):
    folder = save_model(model, tmp_path / "v1", {})
    meta = json.loads((folder / "metadata.json").read_text())
    meta["libraries"]["scikit-learn"] = "0.24.2"
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match="saved with scikit-learn 0.24.2"):
        load_model(folder)


def test_promote_record_and_roll_back(model, tmp_path):
    registry = Registry(tmp_path)
    first = save_model(model, registry.new_version_dir("OFFER-A"), {})
    second = save_model(model, registry.offer_dir("OFFER-A") / "z-second", {})
    registry.promote("OFFER-A", first.name, "no champion yet")
    registry.promote("OFFER-A", second.name, "better")
    assert registry.champion("OFFER-A") == second.name
    assert registry.rollback("OFFER-A") == first.name
    assert registry.champion("OFFER-A") == first.name
    actions = [d["action"] for d in registry.decisions("OFFER-A")]
    assert actions == ["promoted", "promoted", "rolled_back"]
    assert [v["version"] for v in registry.versions("OFFER-A")] == sorted([first.name, second.name])


def test_an_offer_id_that_is_not_a_plain_name_gets_a_safe_folder_of_its_own(tmp_path):
    registry = Registry(tmp_path)
    odd = registry.offer_dir("../../etc")
    assert odd.parent == tmp_path and odd.name.startswith("etc-")  # stays inside the registry


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted"),
    [
        (3.0, None, True),
        (3.0, 3.1, True),
        (2.9, 3.0, True),
        (2.8, 3.0, False),
        (float("nan"), 3.0, False),
    ],
)
def test_the_gate_allows_a_small_loss_only(challenger, champion, promoted):
    old = None if champion is None else {"lift_at_10": champion}
    ok, reason = gate({"lift_at_10": challenger}, old, "lift_at_10", 0.05)
    assert ok is promoted, reason
