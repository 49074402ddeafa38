"""`crm train` and `crm score` on any customer table a user brings (CSV or Parquet).

Any column names; numeric columns are used as numbers and text or boolean columns as
categories; missing values are fine; the target may be 1/0, true/false or yes/no. With no
dates to split on, the holdout is a stratified random fifth of the rows. The model, its
metrics and rules are written the way the registry writes them, so `crm score` and the
registry's loader read both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from crm.errors import BadInputError
from ml.config import load_config
from ml.registry import load_model, save_model
from ml.score import score_frame
from ml.train import TrainingStopped, train_model

TRUE = {"1", "1.0", "true", "t", "yes", "y"}
FALSE = {"0", "0.0", "false", "f", "no", "n"}


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            return pd.read_csv(path, sep=None, engine="python")
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        raise BadInputError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    raise BadInputError(f"{path}: unsupported file type {suffix!r}; use CSV or Parquet")


def parse_target(values: pd.Series, name: str) -> np.ndarray:
    """1/0, true/false, yes/no (any case) to 1/0; anything else is an error."""
    text = values.astype(str).str.strip().str.lower()
    unknown = sorted(set(text[~text.isin(TRUE | FALSE)]))
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise BadInputError(
            f"target column {name!r} must hold 1/0, true/false or yes/no; found {shown}"
        )
    return text.isin(TRUE).to_numpy(dtype=int)


def column_kinds(frame: pd.DataFrame, skip: set[str]) -> tuple[list[str], list[str]]:
    numeric, categorical = [], []
    for column in frame.columns:
        if column in skip:
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            numeric.append(column)
        elif pd.api.types.is_datetime64_any_dtype(series):
            continue  # dates need a reference date to mean anything; leave them out
        else:
            categorical.append(column)
    return numeric, categorical


def train_table(input_path: Path, target: str, out: Path, id_column: str | None = None) -> dict:
    frame = read_table(input_path)
    if target not in frame.columns:
        raise BadInputError(
            f"{input_path}: no target column {target!r} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    if id_column is not None:
        if id_column not in frame.columns:
            raise BadInputError(f"{input_path}: no id column {id_column!r}")
        duplicated = frame[id_column][frame[id_column].duplicated()]
        if len(duplicated):
            raise BadInputError(
                f"{input_path}: id column {id_column!r} has {len(duplicated)} duplicate "
                f"value(s), e.g. {duplicated.iloc[0]!r}"
            )
    y = parse_target(frame[target], target)
    if len(set(y)) < 2:
        raise BadInputError(f"{input_path}: target {target!r} has one class only ({y[0]})")
    numeric, categorical = column_kinds(frame, {target, id_column} - {None})
    if not numeric and not categorical:
        raise BadInputError(f"{input_path}: no feature columns besides the target and id")
    frame = frame.copy()
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in categorical:
        frame[column] = (
            frame[column]
            .astype(object)
            .where(frame[column].notna(), None)
            .map(lambda v: v if v is None else str(v))
        )
    config = load_config().with_features(
        {c: str(c) for c in numeric}, {c: str(c) for c in categorical}
    )
    # a user's table can be small: keep the guards, but scaled to what such tables hold
    from dataclasses import replace

    config = replace(config, min_positives=min(config.min_positives, 10))
    train_rows, holdout_rows = train_test_split(
        np.arange(len(frame)), test_size=0.2, stratify=y, random_state=config.random_state
    )
    try:
        model = train_model(
            Path(input_path).stem,
            frame.iloc[train_rows].reset_index(drop=True),
            y[train_rows],
            frame.iloc[holdout_rows].reset_index(drop=True),
            y[holdout_rows],
            config,
        )
    except TrainingStopped as exc:
        raise BadInputError(f"{input_path}: {exc}") from exc
    save_model(
        model,
        Path(out),
        {
            "input": str(input_path),
            "target": target,
            "id_column": id_column,
            "split": "stratified random 80/20",
        },
    )
    return {
        "out": str(out),
        "rows": model.rows,
        "params": model.params,
        "holdout": model.holdout,
        "logistic_regression": model.baselines["logistic_regression"],
        "rules": [r.as_dict() for r in model.rules],
    }


def score_table(model_dir: Path, input_path: Path, out: Path, id_column: str | None = None) -> dict:
    pipeline, metadata = load_model(model_dir)
    frame = read_table(input_path)
    id_column = id_column or metadata.get("id_column")
    if id_column is None or id_column not in frame.columns:
        frame = frame.reset_index(names="row")
        id_column = "row"
    for column in metadata["features"]["numeric"]:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in metadata["features"]["categorical"]:
        if column in frame:
            frame[column] = (
                frame[column]
                .astype(object)
                .where(frame[column].notna(), None)
                .map(lambda v: v if v is None else str(v))
            )
    scored = score_frame(pipeline, Path(model_dir), frame, id_column).drop(
        columns=["training_score"]
    )
    # plain text in the file, as a reader of any CSV or Parquet expects
    for column in ("band", "rule_id", "rule"):
        scored[column] = scored[column].astype(str)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        scored.to_parquet(out, index=False)
    else:
        scored.to_csv(out, index=False)
    return {"out": str(out), "rows": len(scored), "bands": scored["band"].value_counts().to_dict()}
