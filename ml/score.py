"""Score customers with a saved model: probability, likelihood band, decile, the segment
rule that put them there; and cut the list handed to activation.

`score_frame`, `select_audience` and `cost_curve` are pure. `score_offers` is the daily
job: every eligible customer (not opted out, not an adopter yet) is scored with each
offer's champion into `ml.customer_scores`, the chosen audience goes to
`ml.offer_audiences`, and the list's cost curve (expected responders, cost and return by
size, and where the cut fell) to `ml.list_curves`.
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crm.tables import ensure_ml
from ml.evaluate import ranking
from ml.pipeline import encode_rows, encoder_fingerprint

BAND_NAMES = (">=90%", "50-90%", "5-50%", "<5%")


def band(scores: np.ndarray, thresholds=(0.9, 0.5, 0.05)) -> np.ndarray:
    """Likelihood band names for thresholds (high, middle, low)."""
    high, mid, low = thresholds
    names = [f">={high:.0%}", f"{mid:.0%}-{high:.0%}", f"{low:.0%}-{mid:.0%}", f"<{low:.0%}"]
    codes = np.select([scores >= high, scores >= mid, scores >= low], [0, 1, 2], 3)
    if len(set(names)) < len(names):  # thresholds that round to the same name
        return np.array(names, dtype=object)[codes]
    return pd.Categorical.from_codes(codes, names)


def deciles(scores: np.ndarray, then: np.ndarray | None = None) -> np.ndarray:
    """1 = the tenth with the highest scores (ties by `then`, then in a fixed order)."""
    order = ranking(scores, then=then)
    out = np.empty(len(scores), dtype=int)
    out[order] = np.arange(len(scores)) * 10 // max(len(scores), 1) + 1
    return out


def score_frame(
    pipeline,
    model_dir: Path,
    frame: pd.DataFrame,
    id_column: str,
    thresholds=(0.9, 0.5, 0.05),
    encoded: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per input row: id, score, band, decile, rule_id, rule (a tree's segment
    rule; a scorecard's points and the bins that gave most of them), training_score.
    `encoded`: a tree's rows already encoded by its encoder (`encode_rows`); `frame` then
    only needs `id_column`."""
    if encoded is None:
        _model_columns(json.loads((Path(model_dir) / "metadata.json").read_text()), frame)
    if getattr(pipeline, "kind", "tree") == "scorecard":
        # each row is binned once; points, probabilities and reasons are read from its bins
        bins = pipeline.bin_matrix(frame)
        points = pipeline.points(frame, bins)
        training = pipeline.probability_of_points(points)
        scores = pipeline.calibrated(training)
        # a scorecard's "rule" is the customer's points and the bins that gave most of them
        distinct, at = np.unique(points, return_inverse=True)
        rule_ids = pd.Categorical.from_codes(at, [f"{int(p)} points" for p in distinct])
        words = pipeline.reasons(frame, bins=bins)
    else:
        scores, rule_ids, words, training = _tree_scores(pipeline, model_dir, frame, encoded)
    return pd.DataFrame(
        {
            id_column: frame[id_column].reset_index(drop=True),
            "score": scores,
            "band": band(scores, thresholds),
            "decile": deciles(scores, training),
            "rule_id": rule_ids,
            "rule": words,
            # the uncalibrated score: the model's own order, which breaks ties of `score`
            "training_score": training,
        }
    )


def _model_columns(metadata: dict, frame: pd.DataFrame) -> list[str]:
    """The model's feature columns, all of which `frame` must have (else a clear error)."""
    columns = metadata["features"]["numeric"] + metadata["features"]["categorical"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from crm.errors import BadInputError

        raise BadInputError(f"the input lacks the model's column(s): {', '.join(missing)}")
    return columns


def _tree_scores(pipeline, model_dir: Path, x: pd.DataFrame, encoded=None):
    """Score, rule id, rule words and training rate of each row, from its leaf: the rows
    are encoded once, and the rules are looked up by leaf number in arrays (a list of a
    million customers has a few dozen distinct rules: categorical columns keep them
    small)."""
    tree = pipeline.named_steps["tree"]
    if encoded is None:
        encoded = encode_rows(pipeline.named_steps["features"], x)
    leaves = tree.apply(encoded)
    scores = tree.tree_.value[leaves, 0, 1]
    rules = json.loads((Path(model_dir) / "rules.json").read_text())
    # position 0: a leaf without a rule (none, unless rules.json was edited)
    slot = np.zeros(tree.tree_.node_count, dtype=int)
    for i, rule in enumerate(rules, start=1):
        slot[rule["leaf"]] = i
    at = slot[leaves]
    rule_ids = _categories_at(["", *(r["rule_id"] for r in rules)], at)
    words = _categories_at(["", *(r["words"] for r in rules)], at)
    training = np.array([np.nan, *(r["rate_train"] for r in rules)], dtype=float)[at]
    return scores, rule_ids, words, training


def _categories_at(values: list[str], at: np.ndarray) -> pd.Categorical:
    """values[at] as a categorical: a few distinct texts, each stored once."""
    names, codes = np.unique(np.array(values, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(codes[at], names)


#: Sizes on the cost curve of a list (besides the cut): this many, evenly spaced.
CURVE_POINTS = 40


def select_audience(
    scored: pd.DataFrame, settings: dict, margin: float | None, offer: str | None = None
) -> pd.DataFrame:
    """The top of the list a campaign should contact. `selection` chooses the rule (top
    n, score threshold, or positive expected value: score x offer margin - contact cost);
    the list is then cut at the smallest of that, the offer's budget (contact cost x size,
    `budgets` per offer or `budget`) and the maximum size (`max_size`). `cut_by` says
    which of them cut it."""
    # calibration can pool leaves the tree ranked apart: the tree's order breaks the tie
    then = scored["training_score"].to_numpy() if "training_score" in scored else None
    order = ranking(scored["score"].to_numpy(), then=then)
    ranked_scores = scored["score"].to_numpy(dtype=float)[order]
    contact_cost = float(settings.get("contact_cost", 0))
    method = settings.get("selection", "top_n")
    if method == "expected_value" and margin is not None:
        # ranked by score, so expected value falls along the list: its positive prefix
        size = int((ranked_scores * margin - contact_cost > 0).sum())
    elif method == "threshold":
        size = int((ranked_scores >= float(settings.get("threshold", 0.5))).sum())
    else:
        method = "top_n"
        size = min(len(scored), int(settings.get("top_n", 1000)))
    limits = {method: size}
    budget = (settings.get("budgets") or {}).get(offer, settings.get("budget"))
    if budget is not None and contact_cost > 0:
        limits["budget"] = int(float(budget) // contact_cost)
    if settings.get("max_size") is not None:
        limits["max_size"] = int(settings["max_size"])
    cut_by = min(limits, key=lambda k: (limits[k], k != method))
    # only the chosen head of the list is taken out of the scored rows
    chosen = scored.iloc[order[: limits[cut_by]]].copy()
    chosen["list_rank"] = np.arange(1, len(chosen) + 1)
    chosen["expected_value"] = (
        chosen["score"] * margin - contact_cost if margin is not None else np.nan
    )
    chosen["selected_by"] = method if cut_by == method else f"{method}, cut by {cut_by}"
    return chosen


def cost_curve(
    scored: pd.DataFrame, margin: float | None, contact_cost: float, cut: int
) -> pd.DataFrame:
    """The offer's list by size, from the best score down: expected responders (the sum
    of calibrated scores), contact cost, expected return (responders x margin - cost),
    at CURVE_POINTS sizes and at the cut (`is_cut`)."""
    scores = np.sort(scored["score"].to_numpy(dtype=float))[::-1]
    n = len(scores)
    sizes = np.unique(np.r_[np.linspace(0, n, CURVE_POINTS + 1).round().astype(int), cut])
    responders = np.r_[0.0, np.cumsum(scores)][sizes]
    cost = sizes * contact_cost
    value = responders * margin - cost if margin is not None else np.full(len(sizes), np.nan)
    return pd.DataFrame(
        {
            "list_size": sizes,
            "expected_responders": responders,
            "cost": cost,
            "expected_return": value,
            "is_cut": sizes == cut,
        }
    )


def score_offers(as_of: date, run_id: str | None = None, settings=None, config=None) -> dict:
    """Score every eligible customer with each offer's champion; write the scores and the
    audiences for the as-of date (replacing that date's rows)."""
    from crm.settings import get_settings
    from crm.warehouse import session
    from ml import features
    from ml.config import load_config
    from ml.registry import Registry, load_model

    settings = settings or get_settings()
    config = config or load_config()
    registry = Registry(settings.models)
    started = time.perf_counter()
    summary: dict = {"as_of": str(as_of), "offers": {}}
    scored_frames, audience_frames, curve_frames = [], [], []
    with session(read_only=True, settings=settings) as con:
        frame = features.feature_frame(con, as_of, config)
        margins = dict(
            con.execute(
                "SELECT product_id, CAST(list_price - coalesce(unit_cost, 0) AS DOUBLE) FROM "
                "marts.dim_products WHERE is_offer"
            ).fetchall()
        )
        offer_ids = features.offers(con)
        adopted = {offer: features.adopters(con, offer, as_of) for offer in offer_ids}
    eligible_base = frame[~frame["is_opted_out"].astype(bool)].reset_index(drop=True)
    # where each customer sits, found once: an offer's adopters are then marked by position
    position = pd.Index(eligible_base["customer_id"])
    # the offers' trees trained together share their encoder: its encoding of every
    # eligible customer is made once, and each offer takes its rows
    encodings: dict[str, np.ndarray] = {}
    for offer in offer_ids:
        champion = registry.champion_dir(offer)
        if champion is None:
            summary["offers"][offer] = {"status": "no champion"}
            continue
        pipeline, metadata = load_model(champion)
        keep = np.ones(len(eligible_base), dtype=bool)
        found = position.get_indexer(list(adopted[offer]))
        keep[found[found >= 0]] = False
        encoded = None
        columns = _model_columns(metadata, eligible_base)
        if getattr(pipeline, "kind", "tree") == "tree":
            encoder = pipeline.named_steps["features"]
            key = encoder_fingerprint(encoder)
            if key not in encodings:
                encodings[key] = encode_rows(encoder, eligible_base)
            encoded = encodings[key][keep]
            eligible = eligible_base.loc[keep, ["customer_id"]]
        else:
            eligible = eligible_base.loc[keep, ["customer_id", *columns]]
        scored = score_frame(
            pipeline, champion, eligible, "customer_id", config.bands, encoded=encoded
        )
        scored.insert(1, "offer_id", _constant(offer, len(scored)))
        scored["model_version"] = _constant(champion.name, len(scored))
        audience = select_audience(scored, config.audience, margins.get(offer), offer)
        curve = cost_curve(
            scored,
            margins.get(offer),
            float(config.audience.get("contact_cost", 0)),
            len(audience),
        )
        curve.insert(0, "offer_id", offer)
        scored_frames.append(scored)
        audience_frames.append(audience)
        curve_frames.append(curve)
        summary["offers"][offer] = {
            "status": "scored",
            "model_version": champion.name,
            "eligible": int(len(scored)),
            "bands": {k: n for k, n in scored["band"].value_counts().items() if n},
            "audience": int(len(audience)),
            "selected_by": audience["selected_by"].iloc[0] if len(audience) else None,
            "expected_responders": float(audience["score"].sum()),
        }
    _write_scores(scored_frames, audience_frames, curve_frames, as_of, run_id, settings)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _constant(value: str, n: int) -> pd.Categorical:
    """A column of one text: stored once, not n times."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=int), [value])


#: What each table takes from the frames written to it (then the as-of date and run id).
_COLUMNS = {
    "ml.list_curves": "offer_id, list_size, expected_responders, cost, expected_return, is_cut",
    "ml.customer_scores": "customer_id, offer_id, score, band, decile, rule_id, rule, "
    "model_version",
    "ml.offer_audiences": "customer_id, offer_id, score, band, decile, rule_id, rule, "
    "model_version, list_rank, expected_value, selected_by",
}


def _write_scores(scores, audiences, curves, as_of, run_id, settings) -> None:
    """Replace the as-of date's rows of the three tables with the offers' frames (lists,
    one frame per offer), in one transaction."""
    from crm.warehouse import session

    with session(settings=settings) as con:
        ensure_ml(con)
        con.execute("BEGIN TRANSACTION")
        for table, frames in (
            ("ml.list_curves", curves),
            ("ml.customer_scores", scores),
            ("ml.offer_audiences", audiences),
        ):
            con.execute(f"DELETE FROM {table} WHERE as_of_date = ?", [as_of])
            for frame in frames:
                if not len(frame):
                    continue
                # as Arrow: texts stored once per category go in as DuckDB reads them best
                con.register("new_rows", pa.Table.from_pandas(frame, preserve_index=False))
                con.execute(
                    f"INSERT INTO {table} SELECT {_COLUMNS[table]}, ?, ? FROM new_rows",
                    [as_of, run_id],
                )
                con.unregister("new_rows")
        con.execute("COMMIT")
