"""Holdout metrics for a ranking: AUC, average precision, lift and capture at the top k%,
a gains table by decile. Trees give many equal scores; ties are split in a fixed
pseudo-random order so the top k% of a leaf is a fair sample of it, not the first rows."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

TOP_SHARES = (0.05, 0.10, 0.20)


@lru_cache(maxsize=4)
def _tie_order(n: int, seed: int) -> np.ndarray:
    """The fixed pseudo-random order of n rows that breaks ties (the same for every
    ranking of n rows, so it is drawn and sorted once)."""
    order = np.argsort(np.random.default_rng(seed).random(n), kind="stable")
    order.flags.writeable = False
    return order


def ranking(scores: np.ndarray, seed: int = 0, then: np.ndarray | None = None) -> np.ndarray:
    """Row positions from the highest score down; ties by `then` (highest first) when
    given, and the rest in a fixed pseudo-random order. (Rows are put in that order
    first and then sorted stably, which is one sort instead of three.)"""
    scores = np.asarray(scores, dtype=float)
    tie = _tie_order(len(scores), seed)
    if then is None:
        return tie[np.argsort(-scores[tie], kind="stable")]
    then = np.asarray(then, dtype=float)
    return tie[np.lexsort((-then[tie], -scores[tie]))]


def lift_and_capture(y: np.ndarray, scores: np.ndarray, share: float) -> tuple[float, float]:
    y = np.asarray(y, dtype=float)
    top = ranking(scores)[: max(1, int(np.ceil(share * len(y))))]
    base = y.mean()
    if base == 0:
        return float("nan"), float("nan")
    return float(y[top].mean() / base), float(y[top].sum() / y.sum())


def metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    scores = np.asarray(scores, dtype=float)
    two_classes = 0 < y.sum() < len(y)
    out = {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, scores)) if two_classes else float("nan"),
        "average_precision": float(average_precision_score(y, scores))
        if two_classes
        else float("nan"),
    }
    for share in TOP_SHARES:
        lift, capture = lift_and_capture(y, scores, share)
        pct = int(round(share * 100))
        out[f"lift_at_{pct}"] = lift
        out[f"capture_at_{pct}"] = capture
    return out


def gains_table(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of the ranking (1 = highest scores): size, adopters, rate, cumulative
    capture and lift."""
    y = np.asarray(y, dtype=float)
    order = ranking(scores)
    decile = np.empty(len(y), dtype=int)
    decile[order] = np.arange(len(y)) * bins // max(len(y), 1) + 1
    frame = pd.DataFrame({"decile": decile, "y": y})
    table = frame.groupby("decile").agg(customers=("y", "size"), adopters=("y", "sum"))
    table["rate"] = table.adopters / table.customers
    total = max(y.sum(), 1e-12)
    table["cumulative_capture"] = table.adopters.cumsum() / total
    table["lift"] = table.rate / (y.mean() if y.mean() > 0 else np.nan)
    return table.reset_index()


def top_share_comparison(y, scores: np.ndarray, other: np.ndarray, share: float) -> dict:
    """Lift at the top `share` of two rankings of the same customers, each with its 95%
    interval (Wilson, on the top's adoption rate over the base rate), and the interval of
    their difference. The two tops overlap, so the difference is paired: each customer
    adds y x (in the first top - in the second top), and its standard error is that sum's,
    customers drawn independently (what a bootstrap over customers estimates)."""
    from ml.rules import wilson_interval

    y = np.asarray(y, dtype=float)
    n, base = len(y), float(np.mean(y)) if len(y) else 0.0
    k = max(1, int(np.ceil(share * n)))
    first = np.zeros(n)
    first[ranking(scores)[:k]] = 1
    second = np.zeros(n)
    second[ranking(other)[:k]] = 1
    out: dict = {"share": share, "customers": k, "base_rate": base}
    if base == 0:
        return out
    for name, top in (("first", first), ("second", second)):
        adopters = int((y * top).sum())
        low, high = wilson_interval(adopters, k)
        out[name] = {"lift": adopters / k / base, "low": low / base, "high": high / base}
    d = y * (first - second)
    difference = d.sum() / k / base
    se = np.sqrt(n * d.var()) / k / base
    out["difference"] = {
        "lift": float(difference),
        "low": float(difference - 1.96 * se),
        "high": float(difference + 1.96 * se),
    }
    return out
