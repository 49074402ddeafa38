"""`crm models`, `crm train` and `crm score`: the model registry, and trees for any table."""

from __future__ import annotations

import argparse
from pathlib import Path

from crm.cli.common import json_option
from crm.errors import UsageError
from crm.settings import get_settings


def cmd_models(args: argparse.Namespace) -> int:
    from ml.registry import Registry
    from ml.warehouse import sync_registry_tables

    settings = get_settings()
    registry = Registry(settings.models)
    if args.action == "rollback":
        if not args.offer:
            raise UsageError("which offer? crm models rollback OFFER [--to VERSION]")
        version = registry.rollback(args.offer, args.to)
        sync_registry_tables(registry, settings)
        args.result = {"offer": args.offer, "champion": version}
        print(f"{args.offer}: champion is now {version}")
        return 0
    offers = [args.offer] if args.offer else registry.offers()
    if not offers:
        print(f"no models yet in {registry.root}")
    args.result = {"models": str(registry.root), "offers": {}}
    for offer in offers:
        champion = registry.champion(offer)
        args.result["offers"][offer] = {
            "champion": champion,
            "versions": [
                {
                    "version": v["version"],
                    "as_of": v["metadata"].get("as_of"),
                    "holdout": v["holdout"],
                }
                for v in registry.versions(offer)
            ],
            "decisions": registry.decisions(offer),
        }
        print(f"{offer}")
        for v in registry.versions(offer):
            h = v["holdout"]
            mark = "*" if v["version"] == champion else " "
            print(
                f"  {mark} {v['version']}  as of {v['metadata'].get('as_of')}  "
                f"AUC {h.get('roc_auc') or float('nan'):.3f}  "
                f"lift@10% {h.get('lift_at_10') or float('nan'):.2f}"
            )
        decisions = registry.decisions(offer)
        if decisions:
            last = decisions[-1]
            print(
                f"    last decision: {last['action']} {last.get('version', '')}: "
                f"{last.get('reason')}"
            )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ml.table import train_table

    result = train_table(args.input, args.target, args.out, args.id)
    h, lr = result["holdout"], result["logistic_regression"]
    print(
        f"Trained on {result['rows']['train']:,} rows ({result['rows']['train_positives']:,} "
        f"positive), held out {result['rows']['holdout']:,}; tree {result['params']}"
    )
    print(
        f"holdout AUC {h['roc_auc']:.3f}, lift@10% {h['lift_at_10']:.2f} "
        f"(logistic regression: AUC {lr['roc_auc']:.3f}, lift@10% {lr['lift_at_10']:.2f})"
    )
    for rule in result["rules"][:10]:
        print(
            f"  {rule['rule_id']}  score {rule['score']:.0%} ({rule['rate_train']:.0%} of "
            f"{rule['support_train']:,} in training): {rule['words']}"
        )
    print(f"model, metrics and rules: {result['out']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from ml.table import score_table

    result = score_table(args.model, args.input, args.out, args.id)
    bands = ", ".join(f"{k} {v:,}" for k, v in sorted(result["bands"].items()))
    print(f"Scored {result['rows']:,} rows ({bands}) into {result['out']}")
    return 0


def register(sub, root: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", help="list model versions, or roll a champion back")
    models.add_argument("action", nargs="?", choices=("list", "rollback"), default="list")
    models.add_argument("offer", nargs="?", default=None)
    models.add_argument("--offer", dest="offer_option", default=None)
    models.add_argument("--to", default=None, help="rollback: the version to make champion")
    json_option(models)
    models.set_defaults(func=cmd_models)

    train = sub.add_parser("train", help="learn a target-customer tree from any customer table")
    train.add_argument("--input", type=Path, required=True)
    train.add_argument("--target", required=True, help="column holding 1/0, true/false, yes/no")
    train.add_argument("--id", default=None, help="id column (must be unique)")
    train.add_argument("--out", type=Path, required=True, help="folder for the model")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="score a customer table with a saved model")
    score.add_argument("--model", type=Path, required=True)
    score.add_argument("--input", type=Path, required=True)
    score.add_argument("--out", type=Path, required=True, help="CSV or Parquet")
    score.add_argument("--id", default=None)
    score.set_defaults(func=cmd_score)
