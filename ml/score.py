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

from crm.tables import ensure_ml
from ml.evaluate import ranking

BAND_NAMES = (">=90%", "50-90%", "5-50%", "<5%")


def band(scores: np.ndarray, thresholds=(0.9, 0.5, 0.05)) -> np.ndarray:
    """Likelihood band names for thresholds (high, middle, low)."""
    high, mid, low = thresholds
    names = [f">={high:.0%}", f"{mid:.0%}-{high:.0%}", f"{low:.0%}-{mid:.0%}", f"<{low:.0%}"]
    return np.select([scores >= high, scores >= mid, scores >= low], names[:3], names[3])


def deciles(scores: np.ndarray, then: np.ndarray | None = None) -> np.ndarray:
    """1 = the tenth with the highest scores (ties by `then`, then in a fixed order)."""
    order = ranking(scores, then=then)
    out = np.empty(len(scores), dtype=int)
    out[order] = np.arange(len(scores)) * 10 // max(len(scores), 1) + 1
    return out


def score_frame(
    pipeline, model_dir: Path, frame: pd.DataFrame, id_column: str, thresholds=(0.9, 0.5, 0.05)
) -> pd.DataFrame:
    """One row per input row: id, score, band, decile, rule_id, rule (a tree's segment
    rule; a scorecard's points and the bins that gave most of them), training_score."""
    metadata = json.loads((Path(model_dir) / "metadata.json").read_text())
    columns = metadata["features"]["numeric"] + metadata["features"]["categorical"]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from crm.errors import BadInputError

        raise BadInputError(f"the input lacks the model's column(s): {', '.join(missing)}")
    x = frame[columns]
    scores = pipeline.predict_proba(x)[:, 1]
    if getattr(pipeline, "kind", "tree") == "scorecard":
        # a scorecard's "rule" is the customer's points and the bins that gave most of them
        rule_ids = np.array([f"{int(p)} points" for p in pipeline.points(x)], dtype=object)
        words = pipeline.reasons(x)
        training = pipeline.training_probability(x)
    else:
        leaves = pipeline.named_steps["tree"].apply(pipeline[:-1].transform(x))
        rules = json.loads((Path(model_dir) / "rules.json").read_text())
        by_leaf = {r["leaf"]: (r["rule_id"], r["words"], r["rate_train"]) for r in rules}
        found = [by_leaf.get(int(leaf), ("", "", np.nan)) for leaf in leaves]
        rule_ids = np.array([f[0] for f in found], dtype=object)
        words = np.array([f[1] for f in found], dtype=object)
        training = np.array([f[2] for f in found], dtype=float)
    return pd.DataFrame(
        {
            id_column: frame[id_column].to_numpy(),
            "score": scores,
            "band": band(scores, thresholds),
            "decile": deciles(scores, training),
            "rule_id": rule_ids,
            "rule": words,
            # the uncalibrated score: the model's own order, which breaks ties of `score`
            "training_score": training,
        }
    )


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
    ranked = scored.iloc[ranking(scored["score"].to_numpy(), then=then)].copy()
    ranked["list_rank"] = np.arange(1, len(ranked) + 1)
    contact_cost = float(settings.get("contact_cost", 0))
    ranked["expected_value"] = (
        ranked["score"] * margin - contact_cost if margin is not None else np.nan
    )
    method = settings.get("selection", "top_n")
    if method == "expected_value" and margin is not None:
        # ranked by score, so expected value falls along the list: its positive prefix
        size = int((ranked["expected_value"] > 0).sum())
    elif method == "threshold":
        size = int((ranked["score"] >= float(settings.get("threshold", 0.5))).sum())
    else:
        method = "top_n"
        size = min(len(ranked), int(settings.get("top_n", 1000)))
    limits = {method: size}
    budget = (settings.get("budgets") or {}).get(offer, settings.get("budget"))
    if budget is not None and contact_cost > 0:
        limits["budget"] = int(float(budget) // contact_cost)
    if settings.get("max_size") is not None:
        limits["max_size"] = int(settings["max_size"])
    cut_by = min(limits, key=lambda k: (limits[k], k != method))
    chosen = ranked.head(limits[cut_by]).copy()
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
    eligible_base = frame[~frame["is_opted_out"].astype(bool)]
    for offer in offer_ids:
        champion = registry.champion_dir(offer)
        if champion is None:
            summary["offers"][offer] = {"status": "no champion"}
            continue
        pipeline, metadata = load_model(champion)
        eligible = eligible_base[~eligible_base["customer_id"].isin(adopted[offer])]
        scored = score_frame(pipeline, champion, eligible, "customer_id", config.bands)
        scored.insert(1, "offer_id", offer)
        scored["model_version"] = champion.name
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
            "bands": scored["band"].value_counts().to_dict(),
            "audience": int(len(audience)),
            "selected_by": audience["selected_by"].iloc[0] if len(audience) else None,
            "expected_responders": float(audience["score"].sum()),
        }
    scores = pd.concat(scored_frames, ignore_index=True) if scored_frames else pd.DataFrame()
    audiences = pd.concat(audience_frames, ignore_index=True) if audience_frames else pd.DataFrame()
    curves = pd.concat(curve_frames, ignore_index=True) if curve_frames else pd.DataFrame()
    _write_scores(scores, audiences, curves, as_of, run_id, settings)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _write_scores(scores, audiences, curves, as_of, run_id, settings) -> None:
    from crm.warehouse import session

    with session(settings=settings) as con:
        ensure_ml(con)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ml.customer_scores WHERE as_of_date = ?", [as_of])
        con.execute("DELETE FROM ml.offer_audiences WHERE as_of_date = ?", [as_of])
        con.execute("DELETE FROM ml.list_curves WHERE as_of_date = ?", [as_of])
        if len(curves):
            con.register("new_curves", curves)
            con.execute(
                "INSERT INTO ml.list_curves SELECT offer_id, list_size, expected_responders, "
                "cost, expected_return, is_cut, ?, ? FROM new_curves",
                [as_of, run_id],
            )
            con.unregister("new_curves")
        if len(scores):
            con.register("new_scores", scores)
            con.execute(
                "INSERT INTO ml.customer_scores SELECT customer_id, offer_id, score, band, "
                "decile, rule_id, rule, model_version, ?, ? FROM new_scores",
                [as_of, run_id],
            )
            con.unregister("new_scores")
        if len(audiences):
            con.register("new_audiences", audiences)
            con.execute(
                "INSERT INTO ml.offer_audiences SELECT customer_id, offer_id, score, band, "
                "decile, rule_id, rule, model_version, list_rank, expected_value, selected_by, "
                "?, ? FROM new_audiences",
                [as_of, run_id],
            )
            con.unregister("new_audiences")
        con.execute("COMMIT")
