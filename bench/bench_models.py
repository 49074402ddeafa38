"""Benchmark: target-customer models at scale. Training every offer (features ~40 read
and encoded once, then per offer cross-validation on a tuning sample, one refit,
calibration, baselines, a scorecard, rules, the gate), scoring every offer end to end
(read features, score every eligible customer, cut the lists, write), peak memory, and a
learning curve over the tuning-sample size (does tuning on a sample cost lift?).

    python bench/bench_models.py --home DIR --as-of YYYY-MM-DD [--no-build] [--curve '']

DIR is a CRM_HOME whose marts are built (e.g. the one bench_marts.py leaves); the feature
and label marts are built here for the split dates and the as-of date.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import replace
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument(
        "--offers", default="", help="comma-separated offers to train (default: every offer)"
    )
    parser.add_argument("--offer", default="OFFER-PREM", help="the learning curve's offer")
    parser.add_argument(
        "--curve",
        default="30000,50000,100000",
        help="tuning-sample negatives for the learning curve ('' skips it)",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="the feature marts are already built"
    )
    args = parser.parse_args()
    os.environ["CRM_HOME"] = str(args.home)
    as_of = date.fromisoformat(args.as_of)

    from crm.dbt import ML_MARTS, build
    from crm.warehouse import session
    from ml import features
    from ml.config import load_config
    from ml.score import score_offers
    from ml.train import train_model
    from ml.train_offers import train_offers

    config = load_config()
    train_date, holdout_date = features.split_dates(as_of, config.horizon_days)
    if not args.no_build:
        started = time.perf_counter()
        build(
            as_of,
            select=ML_MARTS,
            extra_vars={"feature_dates": [str(train_date), str(holdout_date), str(as_of)]},
        )
        print(f"feature and label marts, 3 dates (dbt): {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    offers = [o for o in args.offers.split(",") if o] or None
    summary = train_offers(as_of, offers=offers, check_upstream=False)
    total = time.perf_counter() - started
    print(
        f"train {len(summary['offers'])} offers: {total:.1f} s in all (read and encode the "
        f"features once, then per offer tune, refit, calibrate, baselines, scorecard, rules, "
        f"gate, save); phases {summary.get('seconds')}"
    )
    for offer, o in summary["offers"].items():
        seconds = o.get("seconds") or {}
        print(
            f"  {offer}: {o['status']} ({o.get('kind', '-')}), "
            f"rows {o.get('rows', {}).get('train')}, "
            f"{sum(seconds.values()):.1f} s in train_model and the scorecard: {seconds}"
        )
        print(f"    holdout {o.get('holdout')}; logistic lift@10% {o.get('logistic_lift_at_10')}")
        print(f"    top rule: {o.get('top_rule')}; {o.get('reason', '')[:160]}")
    print(
        f"peak memory after training: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB"
    )

    started = time.perf_counter()
    scored = score_offers(as_of, run_id="bench")
    print(
        f"score every offer end to end (read features, score, cut lists, write): "
        f"{time.perf_counter() - started:.1f} s;"
        f" {[(k, v.get('eligible')) for k, v in scored['offers'].items()]}"
    )
    print(
        f"peak memory after scoring: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB"
    )
    if not args.curve:
        return

    with session(read_only=True) as con:
        train = features.labelled_frame(con, train_date, args.offer, config)
        holdout = features.labelled_frame(con, holdout_date, args.offer, config)
    print("\nlearning curve: tuning-sample negatives -> chosen tree, holdout metrics")
    for negatives in [int(n) for n in args.curve.split(",")]:
        started = time.perf_counter()
        model = train_model(
            args.offer,
            train,
            train.adopted.to_numpy(),
            holdout,
            holdout.adopted.to_numpy(),
            replace(config, tuning_max_negatives=negatives),
        )
        h = model.holdout
        print(
            f"  {negatives:>8,}  depth {model.params['max_depth']}, leaf "
            f"{model.params['min_weight_fraction_leaf']}:  AUC {h['roc_auc']:.4f}  AP "
            f"{h['average_precision']:.4f}  lift@10% {h['lift_at_10']:.3f}  "
            f"tuning {model.seconds['tuning']:.1f} s"
        )


if __name__ == "__main__":
    main()
