"""The model registry: versions on disk, one champion per offer, every decision logged.

    CRM_HOME/models/<offer>/<version>/   model.joblib, metadata.json, metrics.json,
                                         rules.json, rules.md, gains.csv, cv.csv,
                                         calibration.csv (the reliability table);
                                         a scorecard: points.json, scorecard.md
    CRM_HOME/models/<offer>/champion.json    which version scores, since when, why
    CRM_HOME/models/<offer>/decisions.jsonl  every promotion, rejection and rollback

A version directory is written under a temporary name and renamed when complete, and
champion.json is replaced atomically, so a crash never leaves a half model in use.
Loading refuses a model saved with other scikit-learn, numpy or pandas versions: a
pickled tree is only guaranteed to behave the same with the library that wrote it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from crm.errors import CrmError
from crm.settings import REPO_ROOT
from ml.pipeline import encode_rows
from ml.rules import rules_markdown
from ml.scorecard import scorecard_markdown
from ml.train import TrainedModel

CHECKED_LIBRARIES = ("scikit-learn", "numpy", "pandas")


class RegistryError(CrmError):
    """A model cannot be used as asked (unknown version, library mismatch)."""


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _json_safe(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _write_json(path: Path, doc) -> None:
    path.write_text(json.dumps(_json_safe(doc), indent=2, default=str) + "\n")


def save_model(model: TrainedModel, directory: Path, context: dict) -> Path:
    """Write a trained model and everything that explains it into `directory` (created
    atomically). `context` adds run facts: as-of date, feature dates, offer."""
    directory = Path(directory)
    tmp = directory.with_name("." + directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    joblib.dump(model.pipeline, tmp / "model.joblib")
    metadata = {
        "name": model.name,
        "kind": model.kind,
        "version": directory.name,
        "created_at": _now(),
        "libraries": library_versions(),
        "git_sha": git_sha(),
        "features": {"numeric": model.numeric, "categorical": model.categorical},
        "labels": model.labels,
        "params": model.params,
        "rows": model.rows,
        "seconds": model.seconds,
        **context,
    }
    _write_json(tmp / "metadata.json", metadata)
    _write_json(
        tmp / "metrics.json",
        {
            "holdout": model.holdout,
            "baselines": model.baselines,
            "calibration": model.calibration,
            "ranking": model.ranking,
        },
    )
    _write_json(tmp / "rules.json", [r.as_dict() for r in model.rules])
    if model.kind == "scorecard":
        _write_json(tmp / "points.json", model.points)
        title = f"Scorecard: {model.name} ({directory.name})"
        (tmp / "scorecard.md").write_text(scorecard_markdown(title, model.pipeline))
    else:
        title = f"Segment rules: {model.name} ({directory.name})"
        base = model.rows["train_positives"] / max(model.rows["train"], 1)
        (tmp / "rules.md").write_text(rules_markdown(title, model.rules, base))
    model.gains.to_csv(tmp / "gains.csv", index=False)
    pd.DataFrame(model.cv).to_csv(tmp / "cv.csv", index=False)
    if model.reliability is not None:
        model.reliability.to_csv(tmp / "calibration.csv", index=False)
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return directory


def load_model(directory: Path):
    """(pipeline, metadata) of a saved model; refuses other library versions."""
    directory = Path(directory)
    meta_path = directory / "metadata.json"
    if not meta_path.exists():
        raise RegistryError(f"{directory} is not a saved model (no metadata.json)")
    metadata = json.loads(meta_path.read_text())
    here = library_versions()
    for library in CHECKED_LIBRARIES:
        saved = metadata.get("libraries", {}).get(library)
        if saved != here[library]:
            raise RegistryError(
                f"the model in {directory} was saved with {library} {saved}; this environment "
                f"has {here[library]}. Retrain it (crm train / the training DAG) or install "
                f"{library}=={saved}."
            )
    return joblib.load(directory / "model.joblib"), metadata


def training_rate_scores(
    pipeline, directory: Path, x: pd.DataFrame | None, encoded: np.ndarray | None = None
) -> np.ndarray:
    """A saved model's ranking of `x` as training made it, whatever scores calibration
    gave: a tree's leaf training rates (`rate_train` in rules.json), a scorecard's
    probability of its points. `encoded`: a tree's rows already encoded by an encoder
    like its own (`ml.pipeline.encoder_fingerprint`); `x` is then not read."""
    if getattr(pipeline, "kind", "tree") == "scorecard":
        return pipeline.training_probability(x)
    tree = pipeline.named_steps["tree"]
    if encoded is None:
        encoded = encode_rows(pipeline.named_steps["features"], x)
    rates = np.full(tree.tree_.node_count, np.nan)
    for rule in json.loads((directory / "rules.json").read_text()):
        rates[rule["leaf"]] = rule["rate_train"]
    scores = rates[tree.apply(encoded)]
    if np.isnan(scores).any():
        raise ValueError(f"{directory / 'rules.json'} lacks a rule for some of the tree's leaves")
    return scores


class Registry:
    """The versions and the champion of each offer under CRM_HOME/models."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def offer_dir(self, offer: str) -> Path:
        """The offer's folder: its id, or a safe name derived from it (crm.files.folder_name)."""
        from crm.files import folder_name

        return self.root / folder_name(offer)

    def new_version_dir(self, offer: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
        return self.offer_dir(offer) / stamp

    def versions(self, offer: str) -> list[dict]:
        folder = self.offer_dir(offer)
        if not folder.exists():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            meta = path / "metadata.json"
            if path.is_dir() and not path.name.startswith(".") and meta.exists():
                doc = json.loads(meta.read_text())
                metrics = json.loads((path / "metrics.json").read_text())
                found.append(
                    {
                        "version": path.name,
                        "path": str(path),
                        "metadata": doc,
                        "holdout": metrics["holdout"],
                    }
                )
        return found

    def offers(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def champion(self, offer: str) -> str | None:
        path = self.offer_dir(offer) / "champion.json"
        return json.loads(path.read_text())["version"] if path.exists() else None

    def champion_dir(self, offer: str) -> Path | None:
        version = self.champion(offer)
        return self.offer_dir(offer) / version if version else None

    def decisions(self, offer: str) -> list[dict]:
        path = self.offer_dir(offer) / "decisions.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def record(self, offer: str, decision: dict) -> None:
        path = self.offer_dir(offer) / "decisions.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(_json_safe({"at": _now(), **decision})) + "\n")

    def promote(self, offer: str, version: str, reason: str, action: str = "promoted") -> None:
        if not (self.offer_dir(offer) / version / "metadata.json").exists():
            raise RegistryError(f"{offer} has no version {version}")
        path = self.offer_dir(offer) / "champion.json"
        tmp = path.with_name(".champion.json.tmp")
        _write_json(tmp, {"version": version, "since": _now(), "reason": reason})
        os.replace(tmp, path)
        self.record(offer, {"action": action, "version": version, "reason": reason})

    def rollback(self, offer: str, to: str | None = None) -> str:
        """Make `to` (default: the champion before the current one) the champion again."""
        current = self.champion(offer)
        if to is None:
            previous = [
                d["version"]
                for d in self.decisions(offer)
                if d["action"] in ("promoted", "rolled_back") and d["version"] != current
            ]
            if not previous:
                raise RegistryError(f"{offer} has no earlier champion to roll back to")
            to = previous[-1]
        self.promote(offer, to, f"rolled back from {current}", action="rolled_back")
        return to


def gate(
    challenger: dict, champion: dict | None, metric: str, tolerance: float
) -> tuple[bool, str]:
    """Promote unless the challenger is worse than the champion on the same holdout by more
    than `tolerance` (a share of the champion's value)."""
    if champion is None:
        return True, "no champion yet"
    new, old = challenger.get(metric), champion.get(metric)
    if old is None or not np.isfinite(old):
        return True, f"the champion has no {metric} on this holdout"
    if new is None or not np.isfinite(new):
        return False, f"the challenger has no {metric}"
    if new >= old * (1 - tolerance):
        return (
            True,
            f"{metric} {new:.3f} against the champion's {old:.3f} (tolerance {tolerance:.0%})",
        )
    return False, (
        f"{metric} {new:.3f} is below the champion's {old:.3f} by more than {tolerance:.0%}"
    )
