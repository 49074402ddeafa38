"""A points scorecard: the readable alternative to a tree when the tree ranks worse.

Marketing and credit teams read a scorecard as a table: each chosen feature is cut into a
few bins, each bin is worth a whole number of points, and a customer's points add up;
more points, more likely to adopt. It is built the way such teams build one:

1. bins: numeric features at the training split's quintiles (fewer where values repeat),
   categories as they are (those under 1% of rows together as "other"), missing values
   a bin of their own;
2. each bin's weight of evidence, log(share of adopters / share of others), smoothed by
   one customer split at the base rate; features ranked by information value, keeping at most
   `max_features` of those worth at least `min_information_value`;
3. a logistic regression on the kept features' weights of evidence (weighted like the
   tree's tuning sample);
4. points: coefficient x weight of evidence x `points_to_double_odds` / ln 2, shifted so
   each feature's lowest bin scores 0, rounded to whole points. Twenty more points, by
   default, double the odds of adopting.

Its probability is a logistic fit of the outcome on the points in training, calibrated on
the holdout like the tree's (`ml.calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.rules import readable_number

OTHER = "other"
UNKNOWN = "unknown"


@dataclass
class Bin:
    """One row of the scorecard: a feature's bin and its points."""

    feature: str
    label: str
    #: numeric: (lower, upper], None for open ends; categorical: the values; missing: None
    lower: float | None = None
    upper: float | None = None
    values: tuple[str, ...] | None = None
    missing: bool = False
    #: the bin of rare and unseen values of a category
    other: bool = False
    points: int = 0
    woe: float = 0.0
    customers: int = 0
    adopters: float = 0.0

    @property
    def words(self) -> str:
        if self.missing:
            return f"{self.label} {UNKNOWN}"
        if self.other:
            return f"{self.label} any other"
        if self.values is not None:
            shown = ", ".join(self.values)
            return f"{self.label} = {shown}" if len(self.values) == 1 else f"{self.label} {shown}"
        if self.lower is None and self.upper is None:
            return f"{self.label} any"
        if self.lower is None:
            return f"{self.label} up to {readable_number(self.upper)}"
        if self.upper is None:
            return f"{self.label} over {readable_number(self.lower)}"
        return f"{self.label} over {readable_number(self.lower)} to {readable_number(self.upper)}"


class Scorecard:
    """Fitted with `fit`; `points` and `predict_proba` for any frame with its features."""

    kind = "scorecard"

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        labels: dict[str, str],
        max_features: int = 8,
        min_information_value: float = 0.02,
        points_to_double_odds: float = 20.0,
        random_state: int = 0,
    ):
        self.numeric, self.categorical, self.labels = list(numeric), list(categorical), labels
        self.max_features = max_features
        self.min_information_value = min_information_value
        self.points_to_double_odds = points_to_double_odds
        self.random_state = random_state
        self.bins: dict[str, list[Bin]] = {}
        self.information_value: dict[str, float] = {}
        self.intercept, self.slope = 0.0, 0.0  # logistic of the outcome on total points
        #: Set by `ml.calibration`: maps the training probability to a calibrated one.
        self.calibrator = None

    # -- binning ---------------------------------------------------------------------------

    def _bins_for(self, column: str, values: pd.Series) -> list[Bin]:
        label = self.labels.get(column, column)
        if column in self.numeric:
            present = values.dropna().to_numpy(dtype=float)
            edges = np.unique(np.quantile(present, [0.2, 0.4, 0.6, 0.8])) if len(present) else []
            bounds = [None, *edges.tolist(), None] if len(edges) else [None, None]
            found = [Bin(column, label, lower=lo, upper=hi) for lo, hi in pairwise(bounds)]
        else:
            text = values.map(lambda v: v if v is None or v != v else str(v))
            shares = text.dropna().value_counts() / max(len(text), 1)
            common = sorted(v for v, share in shares.items() if share >= 0.01)
            found = [Bin(column, label, values=(v,)) for v in common]
            # rare and unseen values; a value itself called "other" keeps its own bin
            found.append(Bin(column, label, values=(OTHER,), other=True))
        found.append(Bin(column, label, missing=True))
        return found

    def _bin_index(self, column: str, values: pd.Series) -> np.ndarray:
        """Which of the column's bins each row falls in."""
        bins = self.bins[column]
        missing_bin = len(bins) - 1
        if column in self.numeric:
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            edges = np.array([b.upper for b in bins[:-2]], dtype=float)
            index = np.searchsorted(edges, x, side="left")
            return np.where(np.isnan(x), missing_bin, index)
        lookup = {b.values[0]: i for i, b in enumerate(bins[:-2])}
        # each distinct value is looked up once, as text as the bins were built from it
        # (a boolean or a number category too); rare and unseen values go to "other"
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
        other_bin = len(bins) - 2
        found = np.array([lookup.get(str(v), other_bin) for v in distinct], dtype=int)
        return np.where(codes < 0, missing_bin, found[np.maximum(codes, 0)] if len(found) else 0)

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, x: pd.DataFrame, y, sample_weight=None, bins_from=None) -> Scorecard:
        """Fit on (x, y) with `sample_weight`; the bins are cut on `bins_from` when given
        (the whole training split, when x is a sample that keeps every adopter)."""
        y = np.asarray(y, dtype=float)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        adopters, others = float((w * y).sum()), float((w * (1 - y)).sum())
        evidence = {}
        for column in [*self.numeric, *self.categorical]:
            source = x if bins_from is None else bins_from
            self.bins[column] = self._bins_for(column, source[column])
            index = self._bin_index(column, x[column])
            n_bins = len(self.bins[column])
            pos = np.bincount(index, weights=w * y, minlength=n_bins)
            neg = np.bincount(index, weights=w * (1 - y), minlength=n_bins)
            # smoothed by one customer split at the base rate: a bin without training
            # customers (an unknown that never occurred) is neutral, not extreme
            share = adopters / (adopters + others)
            woe = np.log(((pos + share) / (adopters + 1)) / ((neg + 1 - share) / (others + 1)))
            share_pos, share_neg = pos / max(adopters, 1e-12), neg / max(others, 1e-12)
            self.information_value[column] = float(((share_pos - share_neg) * woe).sum())
            counts = np.rint(np.bincount(index, weights=w, minlength=n_bins)).astype(int)
            for b, value, n, a in zip(self.bins[column], woe, counts, pos, strict=True):
                b.woe, b.customers, b.adopters = float(value), int(n), float(a)
            evidence[column] = woe[index]
        ranked = sorted(self.information_value, key=self.information_value.get, reverse=True)
        kept = [c for c in ranked if self.information_value[c] >= self.min_information_value]
        kept = kept[: self.max_features] or ranked[:1]
        self.bins = {c: self.bins[c] for c in kept}
        design = np.column_stack([evidence[c] for c in kept])
        model = LogisticRegression(max_iter=1000, random_state=self.random_state)
        model.fit(design, y, sample_weight=w)
        factor = self.points_to_double_odds / math.log(2)
        for column, coefficient in zip(kept, model.coef_[0], strict=True):
            raw = [coefficient * b.woe * factor for b in self.bins[column]]
            low = min(raw)
            for b, value in zip(self.bins[column], raw, strict=True):
                b.points = int(round(value - low))
        # the probability of the points, fitted on the same rows
        total = self.points(x).reshape(-1, 1)
        link = LogisticRegression(max_iter=1000, random_state=self.random_state)
        link.fit(total, y, sample_weight=w)
        self.intercept, self.slope = float(link.intercept_[0]), float(link.coef_[0][0])
        return self

    # -- using -----------------------------------------------------------------------------

    @property
    def features(self) -> list[str]:
        return list(self.bins)

    def bin_matrix(self, x: pd.DataFrame) -> np.ndarray:
        """Each row's bin of each kept feature (rows x features, in `features` order): what
        points, probabilities and reasons are read from, so scoring bins each row once."""
        columns = list(self.bins)
        if not columns:
            return np.zeros((len(x), 0), dtype=int)
        return np.column_stack([self._bin_index(c, x[c]) for c in columns])

    def _bin_points(self, bins: np.ndarray) -> np.ndarray:
        """The points of each cell of a `bin_matrix`."""
        points = np.zeros(bins.shape, dtype=int)
        for j, column in enumerate(self.bins):
            points[:, j] = np.array([b.points for b in self.bins[column]])[bins[:, j]]
        return points

    def bin_points(self, x: pd.DataFrame) -> pd.DataFrame:
        """Each row's points from each kept feature (one column per feature)."""
        return pd.DataFrame(
            self._bin_points(self.bin_matrix(x)), columns=list(self.bins), index=x.index
        )

    def points(self, x: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        """Each row's total points (`bins`: its `bin_matrix`, when already made)."""
        bins = self.bin_matrix(x) if bins is None else bins
        return self._bin_points(bins).sum(axis=1).astype(float)

    def training_probability(self, x: pd.DataFrame, bins: np.ndarray | None = None) -> np.ndarray:
        return self.probability_of_points(self.points(x, bins))

    def probability_of_points(self, points: np.ndarray) -> np.ndarray:
        """The training probability of total points (the logistic fit on them)."""
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.slope * points)))

    def calibrated(self, training: np.ndarray) -> np.ndarray:
        """The calibrated probability of training probabilities."""
        return training if self.calibrator is None else self.calibrator.predict(training)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = self.calibrated(self.training_probability(x))
        return np.column_stack([1 - p, p])

    def reasons(
        self, x: pd.DataFrame, top: int = 3, bins: np.ndarray | None = None
    ) -> pd.Categorical:
        """Per row, its points and the bins that gave most of them, in words:
        "85 points: occupation = sales +40, age 20-30 +25, ...". What a customer's score
        rests on, as a rule is for a tree."""
        columns = list(self.bins)
        bins = self.bin_matrix(x) if bins is None else bins
        # customers with the same bins get the same words: each combination is written
        # once (a million customers fall in a few thousand), found by one number per row
        if math.prod(len(self.bins[c]) for c in columns) < 2**62:
            key = np.zeros(len(bins), dtype=np.int64)
            for j, column in enumerate(columns):
                key = key * len(self.bins[column]) + bins[:, j]
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            combos = bins[first]
        else:  # too many combinations for one number: compare the rows themselves
            combos, inverse = np.unique(bins, axis=0, return_inverse=True)
        values = self._bin_points(combos)
        order = np.argsort(-values, axis=1, kind="stable")[:, :top]
        totals = values.sum(axis=1)
        out = []
        for i in range(len(combos)):
            parts = [
                f"{self.bins[columns[j]][combos[i, j]].words} +{values[i, j]}"
                for j in order[i]
                if values[i, j] > 0
            ]
            out.append(f"{int(totals[i])} points" + (": " + ", ".join(parts) if parts else ""))
        names, codes = np.unique(np.array(out, dtype=object), return_inverse=True)
        return pd.Categorical.from_codes(codes[inverse.reshape(-1)], names)

    def table(self) -> list[dict]:
        """The scorecard as rows a marketer reads: feature, bin, points, training customers
        and adoption."""
        return [
            {
                "feature": b.feature,
                "bin": b.words,
                "points": b.points,
                "customers_train": b.customers,
                "information_value": self.information_value[b.feature],
            }
            for column in self.bins
            for b in self.bins[column]
        ]


def scorecard_markdown(title: str, card: Scorecard) -> str:
    lines = [
        f"# {title}",
        "",
        f"Add the points of each feature's bin: {card.points_to_double_odds:g} more points "
        "double the odds of adopting.",
        "",
        "| feature | bin | points |",
        "|---|---|---:|",
    ]
    for row in card.table():
        lines.append(
            f"| {card.labels.get(row['feature'], row['feature'])} | {row['bin']} "
            f"| {row['points']} |"
        )
    return "\n".join(lines) + "\n"
