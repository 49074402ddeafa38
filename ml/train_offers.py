"""The weekly training job: for each offer, train a challenger on the time-based split
(`ml.train`), gate it against the champion on the same holdout, and record the outcome in
the registry and the warehouse. `ml.train` stays pure (frames in, a model out); the
registry, the warehouse and the settings are touched here.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.settings import get_settings
from crm.warehouse import session
from ml import features
from ml.config import load_config
from ml.evaluate import metrics
from ml.pipeline import encoder_fingerprint
from ml.registry import Registry, gate, load_model, save_model, training_rate_scores
from ml.train import (
    Encoded,
    TrainedModel,
    TrainingStopped,
    choose_challenger,
    encode,
    train_model,
    train_scorecard,
    weak_ranking,
)
from ml.warehouse import write_training_results


def _upstream_failure(con, as_of) -> str | None:
    """Why the warehouse cannot be trusted for `as_of`, if it cannot."""
    row = con.execute(
        "SELECT status FROM audit.pipeline_runs WHERE as_of = ? ORDER BY started_at DESC LIMIT 1",
        [as_of],
    ).fetchone()
    if row is None:
        return f"no pipeline run for {as_of} in audit.pipeline_runs"
    if row[0] != "success":
        return f"the last pipeline run for {as_of} is {row[0]}"
    return None


def train_offers(
    as_of,
    run_id: str | None = None,
    settings=None,
    config=None,
    offers: list[str] | None = None,
    check_upstream: bool = True,
) -> dict:
    """Train a challenger per offer on the time-based split, gate it against the champion on
    the same holdout, record everything in the registry and the warehouse.

    `check_upstream=False` skips the check that the pipeline run for the date succeeded,
    for benchmarks that build the warehouse with dbt directly."""
    settings = settings or get_settings()
    config = config or load_config()
    registry = Registry(settings.models)
    train_date, holdout_date = features.split_dates(as_of, config.horizon_days)
    summary: dict = {
        "as_of": str(as_of),
        "train_date": str(train_date),
        "holdout_date": str(holdout_date),
        "offers": {},
    }
    # where the run's time goes: the shared read and encoding, the offers' models side by
    # side, then the gate, saving and recording in offer order
    phases: dict[str, float] = {}
    lap_started = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal lap_started
        now = time.perf_counter()
        phases[phase] = round(now - lap_started, 2)
        lap_started = now

    with session(read_only=True, settings=settings) as con:
        problem = _upstream_failure(con, as_of) if check_upstream else None
        offer_ids = offers or features.offers(con)
        if not problem:
            # the features once per date; each offer only adds its labels
            train_features = features.feature_frame(con, train_date, config)
            holdout_features = features.feature_frame(con, holdout_date, config)
            offer_labels = {
                offer: (
                    features.labels(con, train_date, offer),
                    features.labels(con, holdout_date, offer),
                )
                for offer in offer_ids
            }
    lap("read")
    encoded = None if problem else _encode_once(train_features, holdout_features, config)
    encoder_key = None if encoded is None else encoder_fingerprint(encoded.encoder)
    lap("encode")

    def split(offer: str):
        """The offer's eligible customers on both dates, with their labels."""
        train = features.with_labels(train_features, offer_labels[offer][0])
        holdout = features.with_labels(holdout_features, offer_labels[offer][1])
        return train, holdout, train.adopted.to_numpy(), holdout.adopted.to_numpy()

    def challengers(offer: str) -> _Challengers:
        """Train the offer's tree and scorecard: models only, no registry, so offers can
        train side by side."""
        train, holdout, y_train, y_holdout = split(offer)
        rows = None
        if encoded is not None:
            rows = encoded.rows(
                _positions(train_features, train), _positions(holdout_features, holdout)
            )
        try:
            # a weak tree still competes: a scorecard may rank where it cannot
            tree = train_model(
                offer,
                train,
                y_train,
                holdout,
                y_holdout,
                config,
                stop_when_weak=not config.scorecard_compete,
                encoded=rows,
                cv_jobs=1 if len(offer_ids) > 1 else PARALLEL_OFFERS,
            )
        except TrainingStopped as exc:
            return _Challengers(stopped=str(exc))
        except Exception as exc:  # noqa: BLE001 - raised after the other offers are recorded
            return _Challengers(error=exc)
        found = _Challengers(tree=tree)
        # the champion's turn at the gate is scored here too, side by side with other offers
        # (nothing is promoted until every offer has trained)
        found.champion_version = registry.champion(offer)
        found.champion_metrics, found.champion_unusable = _champion_on_holdout(
            registry, offer, found.champion_version, holdout, y_holdout, rows, encoder_key
        )
        if config.scorecard_compete:
            try:
                found.card = train_scorecard(
                    offer, train, y_train, holdout, y_holdout, config, tree
                )
            except Exception as exc:  # noqa: BLE001 - the tree competes alone, and it is said
                found.scorecard_failed = f"{type(exc).__name__}: {exc}"
        return found

    trained: dict[str, _Challengers] = {}
    if not problem:
        # each offer's models on its own thread (tree building runs outside the GIL); the
        # decisions below stay in offer order
        with ThreadPoolExecutor(max_workers=PARALLEL_OFFERS) as pool:
            trained = dict(zip(offer_ids, pool.map(challengers, offer_ids), strict=True))
    lap("models")
    failures: list[Exception] = []
    for offer in offer_ids:
        outcome: dict = {"champion_before": registry.champion(offer)}
        summary["offers"][offer] = outcome
        if problem:
            outcome.update(status="stopped", reason=f"data quality: {problem}")
            registry.record(offer, {"action": "stopped", "reason": outcome["reason"]})
            continue
        found = trained[offer]
        if found.error is not None:
            outcome.update(status="failed", reason=f"{type(found.error).__name__}: {found.error}")
            failures.append(found.error)
            continue
        if found.stopped is not None:
            outcome.update(status="stopped", reason=found.stopped)
            registry.record(offer, {"action": "stopped", "reason": found.stopped})
            continue
        if found.scorecard_failed:
            outcome["scorecard_failed"] = found.scorecard_failed
        tree, card = found.tree, found.card
        model, choice = choose_challenger(tree, card)
        weak = weak_ranking(model.holdout, config)
        if weak:
            reason = weak if model is tree else f"the {model.kind}: {weak}"
            outcome.update(status="stopped", reason=reason)
            registry.record(offer, {"action": "stopped", "reason": reason})
            continue
        context = {
            "offer": offer,
            "as_of": str(as_of),
            "train_date": str(train_date),
            "holdout_date": str(holdout_date),
            "horizon_days": config.horizon_days,
            "run_id": run_id,
        }
        version_dir = save_model(model, registry.new_version_dir(offer), context)
        for other in (tree, card):
            if other is not None and other is not model:
                # kept for the record: what competed and lost this training
                lost = save_model(other, registry.new_version_dir(offer), context)
                registry.record(
                    offer,
                    {"action": "rejected", "version": lost.name, "reason": f"chose {choice}"},
                )
        champion_metrics = found.champion_metrics
        if found.champion_unusable:
            outcome["champion_unusable"] = found.champion_unusable
        elif found.champion_version != outcome["champion_before"]:
            # promoted or rolled back by hand while this offer trained: the gate would
            # compare with another model than the one it scored
            champion_metrics = None
            outcome["champion_unusable"] = (
                f"the champion changed during training ({found.champion_version} was "
                f"scored, {outcome['champion_before']} is the champion now)"
            )
        promoted, reason = gate(
            model.holdout, champion_metrics, config.gate_metric, config.gate_tolerance
        )
        if "champion_unusable" in outcome:
            promoted, reason = (
                True,
                f"the champion cannot be evaluated: {outcome['champion_unusable']}",
            )
        reason = f"challenger: {choice}. {_ranking_note(tree)}Gate: {reason}"
        if promoted:
            registry.promote(offer, version_dir.name, reason)
        else:
            registry.record(
                offer, {"action": "rejected", "version": version_dir.name, "reason": reason}
            )
        outcome.update(
            status="promoted" if promoted else "rejected",
            reason=reason,
            kind=model.kind,
            version=version_dir.name,
            champion=registry.champion(offer),
            holdout={k: model.holdout[k] for k in ("roc_auc", "average_precision", "lift_at_10")},
            champion_holdout=None
            if champion_metrics is None
            else {k: champion_metrics[k] for k in ("roc_auc", "average_precision", "lift_at_10")},
            logistic_lift_at_10=model.baselines["logistic_regression"]["lift_at_10"],
            tree_clearly_worse_than_logistic=tree.ranking.get("clearly_worse"),
            params=model.params,
            top_rule=model.rules[0].words if model.rules else None,
            rows=model.rows,
            seconds={**tree.seconds, **(card.seconds if card else {})},
        )
    lap("decide_and_record")
    summary["seconds"] = phases
    write_training_results(registry, summary, settings)
    if failures:
        # the other offers' outcomes are recorded; the run still fails, with the first error
        raise failures[0]
    return summary


#: Offers trained side by side (the machine's two cores; each trains on one).
PARALLEL_OFFERS = 2


@dataclass
class _Challengers:
    """What training one offer gave: its tree and scorecard, or why it stopped."""

    tree: TrainedModel | None = None
    card: TrainedModel | None = None
    stopped: str | None = None
    scorecard_failed: str | None = None
    #: An unexpected error training the offer (raised once every other offer is recorded).
    error: Exception | None = None
    #: The current champion's metrics on this holdout (None without one), or why it
    #: cannot be evaluated.
    champion_version: str | None = None
    champion_metrics: dict | None = None
    champion_unusable: str | None = None


def _champion_on_holdout(registry, offer, version, holdout, y_holdout, rows, encoder_key):
    """(metrics, None) of the offer's champion `version` on the holdout; (None, None)
    without a champion; (None, why) when it cannot score. It is ranked as training made
    it, like the challenger: its calibrated scores were fitted on an earlier holdout whose
    outcomes overlap this one's. A tree whose encoder encodes like this training's reads
    the rows already encoded (`rows.holdout`)."""
    if version is None:
        return None, None
    champion_dir = registry.offer_dir(offer) / version
    try:
        old, old_meta = load_model(champion_dir)
        columns = old_meta["features"]["numeric"] + old_meta["features"]["categorical"]
        shared = (
            rows is not None
            and getattr(old, "kind", "tree") == "tree"
            and encoder_fingerprint(old.named_steps["features"]) == encoder_key
        )
        if shared:
            scores = training_rate_scores(old, champion_dir, None, encoded=rows.holdout)
        else:
            scores = training_rate_scores(old, champion_dir, holdout[columns])
        return metrics(y_holdout, scores), None
    except Exception as exc:  # noqa: BLE001 - any reason the champion cannot score
        return None, f"{type(exc).__name__}: {exc}"


def _encode_once(train_features, holdout_features, config) -> Encoded | None:
    """Both dates' features encoded for the tree once, for every offer (None when a date
    has no customers: training then stops on its guards)."""
    if train_features.empty or holdout_features.empty:
        return None
    columns = set(train_features.columns)
    return encode(
        train_features,
        holdout_features,
        [c for c in config.numeric if c in columns],
        [c for c in config.categorical if c in columns],
    )


def _positions(everyone, eligible) -> np.ndarray:
    """Where each of an offer's eligible customers sits in its date's feature frame."""
    return pd.Index(everyone["customer_id"]).get_indexer(eligible["customer_id"])


def _ranking_note(tree) -> str:
    """What the gate records when the tree ranks clearly worse than the logistic baseline
    at the top 10% of the holdout (else nothing)."""
    if not tree.ranking.get("clearly_worse"):
        return ""
    d = tree.ranking["lift_at_10"]["difference"]
    return (
        f"The tree ranks clearly worse than the logistic baseline at the top 10%: lift "
        f"difference {d['lift']:+.2f} ({d['low']:+.2f} to {d['high']:+.2f}). "
    )
