"""The registry's contents in the warehouse, for BI and campaigns: `ml.model_versions`,
`ml.segment_rules` and `ml.model_gains` are rebuilt from the registry files whenever the
registry changes (training, promotion, rollback), so they can never disagree with it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crm.settings import Settings, get_settings
from crm.tables import ensure_ml


def _registry_frames(registry) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    versions, rules, gains = [], [], []
    for offer in registry.offers():
        champion = registry.champion(offer)
        decisions = {d.get("version"): d for d in registry.decisions(offer) if d.get("version")}
        for v in registry.versions(offer):
            meta, holdout = v["metadata"], v["holdout"]
            path = Path(v["path"])
            metrics = json.loads((path / "metrics.json").read_text())
            decision = decisions.get(v["version"], {})
            versions.append(
                {
                    "offer_id": offer,
                    "model_version": v["version"],
                    "is_champion": v["version"] == champion,
                    "last_decision": decision.get("action"),
                    "decision_reason": decision.get("reason"),
                    "created_at": meta.get("created_at"),
                    "as_of_date": meta.get("as_of"),
                    "train_date": meta.get("train_date"),
                    "holdout_date": meta.get("holdout_date"),
                    "roc_auc": holdout.get("roc_auc"),
                    "average_precision": holdout.get("average_precision"),
                    "lift_at_10": holdout.get("lift_at_10"),
                    "capture_at_10": holdout.get("capture_at_10"),
                    "logistic_lift_at_10": metrics["baselines"]["logistic_regression"].get(
                        "lift_at_10"
                    ),
                    "logistic_roc_auc": metrics["baselines"]["logistic_regression"].get("roc_auc"),
                    "train_rows": meta["rows"]["train"],
                    "holdout_rows": meta["rows"]["holdout"],
                    "params": json.dumps(meta.get("params")),
                    "path": str(path),
                }
            )
            for rule in json.loads((path / "rules.json").read_text()):
                rules.append(
                    {
                        "offer_id": offer,
                        "model_version": v["version"],
                        "is_champion": v["version"] == champion,
                        **rule,
                    }
                )
            table = pd.read_csv(path / "gains.csv")
            table.insert(0, "model_version", v["version"])
            table.insert(0, "offer_id", offer)
            gains.append(table)
    return (
        pd.DataFrame(versions),
        pd.DataFrame(rules),
        pd.concat(gains, ignore_index=True) if gains else pd.DataFrame(),
    )


def sync_registry_tables(registry, settings: Settings | None = None) -> None:
    from crm.warehouse import session

    versions, rules, gains = _registry_frames(registry)
    with session(settings=settings or get_settings()) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ml")
        con.execute("BEGIN TRANSACTION")
        for name, frame in (
            ("model_versions", versions),
            ("segment_rules", rules),
            ("model_gains", gains),
        ):
            con.execute(f"DROP TABLE IF EXISTS ml.{name}")
            if len(frame):
                con.register("registry_frame", frame)
                con.execute(f"CREATE TABLE ml.{name} AS SELECT * FROM registry_frame")
                con.unregister("registry_frame")
        con.execute("COMMIT")


def write_training_results(registry, summary: dict, settings: Settings | None = None) -> None:
    from crm.warehouse import session

    settings = settings or get_settings()
    sync_registry_tables(registry, settings)
    with session(settings=settings) as con:
        ensure_ml(con)
        con.execute(
            "INSERT INTO ml.training_runs VALUES (?, now(), ?)",
            [summary["as_of"], json.dumps(summary, default=str)],
        )
