"""Turn every leaf of a fitted tree into a segment rule a marketer can read.

A leaf's path is a list of splits on the pipeline's encoded columns. They are mapped back
to the original columns and merged: numeric bounds become a range ("age 20-30", whole
numbers shown as such), one-hot splits become equalities or exclusions ("occupation =
sales"). The same condition is written as a SQL predicate on the feature table, with the
tree's handling of missing values made explicit (scikit-learn sends missing values down
one side of each split). Each rule carries its support and adoption rate on the training
and the holdout rows. What a marketer acts on is the holdout's: the rate with its 95%
interval, and `lift`, the holdout rate over the holdout base rate; and `score`, what the
model gives the leaf's customers (after `ml.calibration`, what the holdout showed for
leaves ranked like it). Rules are numbered by score, highest first. The training figures
stand beside them, named as such (`rate_train`, `lift_train`): a small leaf's training
rate is what the tree was grown to fit, and says little about the next window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ml.pipeline import MISSING


@dataclass
class NumericBound:
    lower: float | None = None  # value > lower
    upper: float | None = None  # value <= upper
    allows_missing: bool = True


@dataclass
class CategoryCondition:
    equals: str | None = None
    excluded: set[str] = field(default_factory=set)


@dataclass
class Rule:
    rule_id: str
    leaf: int
    words: str
    sql: str
    #: What each customer in the leaf is scored (the tree's probability for the leaf).
    score: float
    support_train: int
    adopters_train: int
    rate_train: float
    lift_train: float
    support_holdout: int
    adopters_holdout: int
    rate_holdout: float | None
    #: Wilson 95% interval of the holdout rate (None without holdout rows in the leaf).
    rate_holdout_low: float | None
    rate_holdout_high: float | None
    #: The holdout rate over the holdout's base rate.
    lift: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def wilson_interval(adopters: int, support: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a rate (95% by default): sound for small leaves and
    for rates near 0 or 1, where the normal approximation is not."""
    if support <= 0:
        return None
    rate = adopters / support
    denominator = 1 + z * z / support
    centre = (rate + z * z / (2 * support)) / denominator
    margin = z * math.sqrt(rate * (1 - rate) / support + z * z / (4 * support * support))
    margin /= denominator
    # exact at the ends (no adopter, all adopters), where rounding would miss 0 and 1
    low = 0.0 if adopters == 0 else max(0.0, centre - margin)
    high = 1.0 if adopters == support else min(1.0, centre + margin)
    return low, high


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def readable_number(value: float) -> str:
    """A threshold as a reader writes it: 1,250 or 38.26, never 1,250.00."""
    rounded = round(value, 2)
    return (
        f"{rounded:,.2f}".rstrip("0").rstrip(".")
        if rounded != int(rounded)
        else f"{int(rounded):,}"
    )


def _encoded_columns(pipeline: Pipeline, numeric: list[str], categorical: list[str]) -> list:
    """For each encoded column: ('num', column) or ('cat', column, set of categories)."""
    mapping: list = [("num", name) for name in numeric]
    if categorical:
        encoder = pipeline.named_steps["features"].named_transformers_["cat"].named_steps["onehot"]
        infrequent = getattr(encoder, "infrequent_categories_", [None] * len(categorical))
        for i, column in enumerate(categorical):
            rare = {str(v) for v in (infrequent[i] if infrequent[i] is not None else [])}
            for value in encoder.categories_[i]:
                if str(value) not in rare:
                    mapping.append(("cat", column, {str(value)}))
            if rare:
                mapping.append(("cat", column, rare))
    return mapping


def _leaf_paths(tree) -> dict[int, list[tuple[int, bool, float, bool]]]:
    """leaf -> [(feature, went_left, threshold, missing_went_left)] from the root."""
    paths: dict[int, list] = {}
    stack = [(0, [])]
    missing_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=bool))
    while stack:
        node, path = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            paths[node] = path
            continue
        split = (int(tree.feature[node]), float(tree.threshold[node]), bool(missing_left[node]))
        stack.append((left, [*path, (split[0], True, split[1], split[2])]))
        stack.append((right, [*path, (split[0], False, split[1], split[2])]))
    return paths


def _conditions(path, mapping) -> tuple[dict[str, NumericBound], dict[str, CategoryCondition]]:
    numeric: dict[str, NumericBound] = {}
    categorical: dict[str, CategoryCondition] = {}
    for feature, went_left, threshold, missing_left in path:
        kind = mapping[feature]
        if kind[0] == "num":
            bound = numeric.setdefault(kind[1], NumericBound())
            if went_left:
                bound.upper = threshold if bound.upper is None else min(bound.upper, threshold)
            else:
                bound.lower = threshold if bound.lower is None else max(bound.lower, threshold)
            bound.allows_missing &= missing_left == went_left
        else:
            _, column, values = kind
            condition = categorical.setdefault(column, CategoryCondition())
            # one-hot: <= 0.5 means "not one of these values", > 0.5 means "one of them"
            # (a set of several values is the group of rare ones)
            if went_left:
                condition.excluded |= values
            else:
                condition.equals = "|".join(sorted(values))
    return numeric, categorical


def _numeric_words(label: str, bound: NumericBound, whole: bool, had_missing: bool) -> str:
    if whole:
        low = math.floor(bound.lower) + 1 if bound.lower is not None else None
        high = math.floor(bound.upper) if bound.upper is not None else None
        fmt = lambda v: f"{v:,}"  # noqa: E731
    else:
        low, high, fmt = bound.lower, bound.upper, readable_number
    if low is not None and high is not None:
        text = f"{label} {fmt(low)}-{fmt(high)}"
    elif low is not None:
        text = f"{label} {'>=' if whole else 'above'} {fmt(low)}"
    else:
        text = f"{label} {'<=' if whole else 'up to'} {fmt(high)}"
    # the SQL always follows the tree's routing of missing values; the words mention it
    # only when the column had missing values to route
    return text + (" (or unknown)" if bound.allows_missing and had_missing else "")


def _numeric_sql(column: str, bound: NumericBound) -> str:
    parts = []
    if bound.lower is not None:
        parts.append(f"{_quote(column)} > {bound.lower!r}")
    if bound.upper is not None:
        parts.append(f"{_quote(column)} <= {bound.upper!r}")
    sql = " and ".join(parts)
    if bound.allows_missing:
        return f"({sql} or {_quote(column)} is null)"
    return sql


def _category_words(label: str, condition: CategoryCondition) -> str:
    if condition.equals is not None:
        values = condition.equals.split("|")
        shown = ["unknown" if v == MISSING else v for v in values]
        return f"{label} = {shown[0]}" if len(shown) == 1 else f"{label} one of {', '.join(shown)}"
    shown = sorted("unknown" if v == MISSING else v for v in condition.excluded)
    return f"{label} not {shown[0]}" if len(shown) == 1 else f"{label} not {', '.join(shown)}"


def _category_sql(column: str, condition: CategoryCondition) -> str:
    col = _quote(column)
    if condition.equals is not None:
        values = condition.equals.split("|")
        known = [v for v in values if v != MISSING]
        parts = [f"{col} in ({', '.join(_literal(v) for v in known)})"] if known else []
        if MISSING in values:
            parts.append(f"{col} is null")
        return "(" + " or ".join(parts) + ")" if len(parts) > 1 else parts[0]
    known = sorted(v for v in condition.excluded if v != MISSING)
    if MISSING in condition.excluded:
        return (
            f"{col} not in ({', '.join(_literal(v) for v in known)})"
            if known
            else f"{col} is not null"
        )
    return f"({col} is null or {col} not in ({', '.join(_literal(v) for v in known)}))"


def extract_rules(
    pipeline: Pipeline,
    numeric: list[str],
    categorical: list[str],
    labels: dict[str, str],
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_holdout: pd.DataFrame | None = None,
    y_holdout: np.ndarray | None = None,
    leaves: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> list[Rule]:
    """One rule per leaf, highest score first (ids R01, R02, ...). `leaves`: each training
    and holdout row's leaf, when the caller has them (else the rows are encoded here)."""
    tree = pipeline.named_steps["tree"].tree_
    mapping = _encoded_columns(pipeline, numeric, categorical)
    whole = {
        c: bool(np.all(np.mod(x_train[c].dropna().to_numpy(dtype=float), 1) == 0)) for c in numeric
    }
    had_missing = {c: bool(x_train[c].isna().any()) for c in numeric}
    if leaves is None:
        encode, apply = pipeline[:-1].transform, pipeline.named_steps["tree"].apply
        leaves = (
            apply(encode(x_train)),
            apply(encode(x_holdout)) if x_holdout is not None else None,
        )
    train_leaves, hold_leaves = leaves
    y_train = np.asarray(y_train, dtype=float)
    base = y_train.mean()
    y_hold = np.asarray(y_holdout, dtype=float) if hold_leaves is not None else None
    hold_base = float(y_hold.mean()) if y_hold is not None and len(y_hold) else 0.0
    rules = []
    for leaf, path in _leaf_paths(tree).items():
        numbers, categories = _conditions(path, mapping)
        words, sql = [], []
        # columns in the order a reader expects: the configured feature order
        for column in [*categorical, *numeric]:
            if column in categories:
                words.append(_category_words(labels.get(column, column), categories[column]))
                sql.append(_category_sql(column, categories[column]))
            if column in numbers:
                words.append(
                    _numeric_words(
                        labels.get(column, column),
                        numbers[column],
                        whole[column],
                        had_missing[column],
                    )
                )
                sql.append(_numeric_sql(column, numbers[column]))
        in_train = train_leaves == leaf
        support = int(in_train.sum())
        adopters = int(y_train[in_train].sum())
        rate = adopters / support if support else 0.0
        if hold_leaves is not None:
            in_hold = hold_leaves == leaf
            hold_support = int(in_hold.sum())
            hold_adopters = int(y_hold[in_hold].sum())
            hold_rate = hold_adopters / hold_support if hold_support else None
        else:
            hold_support, hold_adopters, hold_rate = 0, 0, None
        interval = wilson_interval(hold_adopters, hold_support) or (None, None)
        rules.append(
            Rule(
                rule_id="",
                leaf=int(leaf),
                words=" and ".join(words) if words else "everyone",
                sql=" and ".join(sql) if sql else "true",
                score=float(tree.value[leaf, 0, 1]),
                support_train=support,
                adopters_train=adopters,
                rate_train=rate,
                lift_train=rate / base if base > 0 else float("nan"),
                support_holdout=hold_support,
                adopters_holdout=hold_adopters,
                rate_holdout=hold_rate,
                rate_holdout_low=interval[0],
                rate_holdout_high=interval[1],
                lift=hold_rate / hold_base if hold_rate is not None and hold_base > 0 else None,
            )
        )
    # calibration never reverses the tree's order; leaves it pooled keep the tree's order
    rules.sort(key=lambda r: (-r.score, -r.rate_train, -r.support_train, r.leaf))
    for i, rule in enumerate(rules, start=1):
        rule.rule_id = f"R{i:02d}"
    return rules


def rules_markdown(title: str, rules: list[Rule], base_rate: float) -> str:
    lines = [
        f"# {title}",
        "",
        f"Base adoption rate on the training rows: {base_rate:.1%}.",
        "",
        "| rule | segment | score | customers (train) | adopt (train) | customers (holdout) "
        "| adopt (holdout, 95% interval) | lift (holdout) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rules:
        hold = "-"
        if r.rate_holdout is not None:
            hold = f"{r.rate_holdout:.0%} ({r.rate_holdout_low:.0%}-{r.rate_holdout_high:.0%})"
        lift = f"{r.lift:.1f}" if r.lift is not None else "-"
        lines.append(
            f"| {r.rule_id} | {r.words} | {r.score:.1%} | {r.support_train:,} | "
            f"{r.rate_train:.0%} | {r.support_holdout:,} | {hold} | {lift} |"
        )
    return "\n".join(lines) + "\n"
