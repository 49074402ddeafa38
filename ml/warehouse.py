"""The registry's contents in the warehouse, for BI and campaigns: `ml.model_versions`,
`ml.segment_rules`, `ml.scorecard_points`, `ml.model_gains` and `ml.model_calibration`
(the reliability tables)
are rebuilt from the registry files whenever the registry changes (training, promotion,
rollback), so they can never disagree with it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crm.settings import Settings, get_settings
from crm.tables import ensure_ml


def _registry_frames(registry) -> dict[str, pd.DataFrame]:
    versions, rules, points, gains, calibration = [], [], [], [], []
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
                    "kind": meta.get("kind", "tree"),
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
                    "brier": holdout.get("brier"),
                    "calibration_error": holdout.get("calibration_error"),
                    "logistic_lift_at_10": metrics["baselines"]["logistic_regression"].get(
                        "lift_at_10"
                    ),
                    "logistic_roc_auc": metrics["baselines"]["logistic_regression"].get("roc_auc"),
                    **_ranking_columns(metrics.get("ranking") or {}),
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
            if (path / "points.json").exists():
                for row in json.loads((path / "points.json").read_text()):
                    points.append(
                        {
                            "offer_id": offer,
                            "model_version": v["version"],
                            "is_champion": v["version"] == champion,
                            **row,
                        }
                    )
            for name, found in (("gains.csv", gains), ("calibration.csv", calibration)):
                if (path / name).exists():  # models saved before calibration have none
                    table = pd.read_csv(path / name)
                    table.insert(0, "model_version", v["version"])
                    table.insert(0, "offer_id", offer)
                    found.append(table)
    return {
        "model_versions": pd.DataFrame(versions),
        "segment_rules": pd.DataFrame(rules),
        "scorecard_points": pd.DataFrame(points),
        "model_gains": pd.concat(gains, ignore_index=True) if gains else pd.DataFrame(),
        "model_calibration": pd.concat(calibration, ignore_index=True)
        if calibration
        else pd.DataFrame(),
    }


def _ranking_columns(ranking: dict) -> dict:
    """The lift at 10% and 20% against what the model was compared with (a tree with the
    logistic baseline, a scorecard with the tree), the difference's interval, and whether
    it was clearly worse."""
    columns: dict = {"ranking_compared_with": ranking.get("against")}
    for top in ("lift_at_10", "lift_at_20"):
        compared = ranking.get(top) or {}
        difference = compared.get("difference") or {}
        columns[f"{top}_low"] = (compared.get("first") or {}).get("low")
        columns[f"{top}_high"] = (compared.get("first") or {}).get("high")
        columns[f"{top}_compared"] = (compared.get("second") or {}).get("lift")
        columns[f"{top}_difference_low"] = difference.get("low")
        columns[f"{top}_difference_high"] = difference.get("high")
    columns["clearly_worse_at_10"] = ranking.get("clearly_worse")
    return columns


def sync_registry_tables(registry, settings: Settings | None = None) -> None:
    from crm.warehouse import session

    frames = _registry_frames(registry)
    with session(settings=settings or get_settings()) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ml")
        con.execute("BEGIN TRANSACTION")
        for name, frame in frames.items():
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
