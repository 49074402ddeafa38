"""The target-customer model settings (ml/config.yml), read once into a dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from crm.errors import BadInputError

CONFIG_PATH = Path(__file__).with_name("config.yml")


@dataclass(frozen=True)
class ModelConfig:
    horizon_days: int
    numeric: dict[str, str]
    categorical: dict[str, str]
    max_depth: tuple[int, ...]
    min_samples_leaf_share: tuple[float, ...]
    min_leaf_customers: int
    min_leaf_share: float
    cv_folds: int
    scoring: str
    simplicity_sd: float
    tuning_max_negatives: int
    random_state: int
    min_positives: int
    min_negatives: int
    min_holdout_top_z: float
    gate_metric: str
    gate_tolerance: float
    bands: tuple[float, ...]
    audience: dict
    calibration_folds: int
    #: ml.scorecard.Scorecard's settings; `scorecard_compete` whether one is trained.
    scorecard: dict
    scorecard_compete: bool
    #: Never features (left out of `numeric` and `categorical`); reported per released list.
    protected_attributes: tuple[str, ...] = ()

    def leaf_share_grid(self, rows: int) -> list[float]:
        """The grid of minimum leaf weights (shares of the training rows) for a training
        split of `rows` rows, none below the minimum leaf support: the larger of
        `min_leaf_customers` and `min_leaf_share` of the rows. Being weighted shares, they
        hold alike on the reweighted tuning sample and on the whole split."""
        floor = max(self.min_leaf_customers / max(rows, 1), self.min_leaf_share)
        return sorted({max(share, floor) for share in self.min_samples_leaf_share})

    @property
    def labels(self) -> dict[str, str]:
        return {**self.numeric, **self.categorical}

    def with_features(self, numeric: dict[str, str], categorical: dict[str, str]) -> ModelConfig:
        """The same settings for another table's columns (crm train on a user's file)."""
        from dataclasses import replace

        return _without_protected(replace(self, numeric=numeric, categorical=categorical))


def _without_protected(config: ModelConfig) -> ModelConfig:
    from dataclasses import replace

    protected = set(config.protected_attributes)
    return replace(
        config,
        numeric={k: v for k, v in config.numeric.items() if k not in protected},
        categorical={k: v for k, v in config.categorical.items() if k not in protected},
    )


def load_config(path: Path = CONFIG_PATH) -> ModelConfig:
    doc = yaml.safe_load(path.read_text())
    tree = doc["tree"]
    config = ModelConfig(
        horizon_days=int(doc["horizon_days"]),
        numeric=dict(doc["features"]["numeric"]),
        categorical=dict(doc["features"]["categorical"]),
        max_depth=tuple(tree["max_depth"]),
        min_samples_leaf_share=tuple(tree["min_samples_leaf_share"]),
        min_leaf_customers=int(tree["min_leaf_customers"]),
        min_leaf_share=float(tree["min_leaf_share"]),
        cv_folds=int(tree["cv_folds"]),
        scoring=str(tree["scoring"]),
        simplicity_sd=float(tree["simplicity_sd"]),
        tuning_max_negatives=int(tree["tuning_max_negatives"]),
        random_state=int(tree["random_state"]),
        min_positives=int(doc["guards"]["min_positives"]),
        min_negatives=int(doc["guards"]["min_negatives"]),
        min_holdout_top_z=float(doc["guards"]["min_holdout_top_z"]),
        gate_metric=str(doc["gate"]["metric"]),
        gate_tolerance=float(doc["gate"]["tolerance"]),
        bands=tuple(float(b) for b in doc["scoring"]["bands"]),
        audience=dict(doc["audience"]),
        # a config from before calibration and the scorecard: their defaults
        calibration_folds=int((doc.get("calibration") or {}).get("folds", 5)),
        scorecard={k: v for k, v in (doc.get("scorecard") or {}).items() if k != "compete"},
        scorecard_compete=bool((doc.get("scorecard") or {}).get("compete", True)),
        protected_attributes=tuple(str(a) for a in doc.get("protected_attributes") or ()),
    )
    audience = config.audience
    limits = [("budget", audience.get("budget")), ("max_size", audience.get("max_size"))]
    limits += [(f"budgets.{k}", v) for k, v in (audience.get("budgets") or {}).items()]
    for name, value in limits:
        if value is not None and float(value) < 0:
            raise BadInputError(f"{path}: audience.{name} must be 0 or more, not {value}")
    return _without_protected(config)
