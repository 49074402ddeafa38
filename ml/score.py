"""Score customers with a saved model: probability, likelihood band, decile, the segment
rule that put them there; and cut the list handed to activation.

`score_frame` and `select_audience` are pure. `score_offers` is the daily job: every
eligible customer (not opted out, not an adopter yet) is scored with each offer's champion
into `ml.customer_scores`, and the chosen audience goes to `ml.offer_audiences`.
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


def deciles(scores: np.ndarray) -> np.ndarray:
    """1 = the tenth with the highest scores (ties split in a fixed order)."""
    order = ranking(scores)
    out = np.empty(len(scores), dtype=int)
    out[order] = np.arange(len(scores)) * 10 // max(len(scores), 1) + 1
    return out


def score_frame(
    pipeline, model_dir: Path, frame: pd.DataFrame, id_column: str, thresholds=(0.9, 0.5, 0.05)
) -> pd.DataFrame:
    """One row per input row: id, score, band, decile, rule_id, rule (a tree's segment
    rule; a scorecard's points and the bins that gave most of them)."""
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
    else:
        leaves = pipeline.named_steps["tree"].apply(pipeline[:-1].transform(x))
        rules = json.loads((Path(model_dir) / "rules.json").read_text())
        by_leaf = {r["leaf"]: (r["rule_id"], r["words"]) for r in rules}
        rule_ids = np.array([by_leaf.get(int(leaf), ("", ""))[0] for leaf in leaves], dtype=object)
        words = np.array([by_leaf.get(int(leaf), ("", ""))[1] for leaf in leaves], dtype=object)
    return pd.DataFrame(
        {
            id_column: frame[id_column].to_numpy(),
            "score": scores,
            "band": band(scores, thresholds),
            "decile": deciles(scores),
            "rule_id": rule_ids,
            "rule": words,
        }
    )


def select_audience(scored: pd.DataFrame, settings: dict, margin: float | None) -> pd.DataFrame:
    """The top of the list by size, score threshold, or positive expected value
    (score x offer margin - contact cost): what a campaign should contact."""
    ranked = scored.iloc[ranking(scored["score"].to_numpy())].copy()
    ranked["list_rank"] = np.arange(1, len(ranked) + 1)
    contact_cost = float(settings.get("contact_cost", 0))
    ranked["expected_value"] = (
        ranked["score"] * margin - contact_cost if margin is not None else np.nan
    )
    method = settings.get("selection", "top_n")
    if method == "expected_value" and margin is not None:
        chosen = ranked[ranked["expected_value"] > 0]
    elif method == "threshold":
        chosen = ranked[ranked["score"] >= float(settings.get("threshold", 0.5))]
    else:
        method = "top_n"
        chosen = ranked.head(int(settings.get("top_n", 1000)))
    chosen = chosen.copy()
    chosen["selected_by"] = method
    return chosen


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
    scored_frames, audience_frames = [], []
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
        audience = select_audience(scored, config.audience, margins.get(offer))
        scored_frames.append(scored)
        audience_frames.append(audience)
        summary["offers"][offer] = {
            "status": "scored",
            "model_version": champion.name,
            "eligible": int(len(scored)),
            "bands": scored["band"].value_counts().to_dict(),
            "audience": int(len(audience)),
            "selected_by": audience["selected_by"].iloc[0] if len(audience) else None,
        }
    scores = pd.concat(scored_frames, ignore_index=True) if scored_frames else pd.DataFrame()
    audiences = pd.concat(audience_frames, ignore_index=True) if audience_frames else pd.DataFrame()
    _write_scores(scores, audiences, as_of, run_id, settings)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _write_scores(scores, audiences, as_of, run_id, settings) -> None:
    from crm.warehouse import session

    with session(settings=settings) as con:
        ensure_ml(con)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ml.customer_scores WHERE as_of_date = ?", [as_of])
        con.execute("DELETE FROM ml.offer_audiences WHERE as_of_date = ?", [as_of])
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
