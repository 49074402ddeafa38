"""Read the feature and label marts into frames, and the dates of the time-based split.

The training split is the feature date T = as_of - 2 x horizon with its labels, the
holdout T = as_of - horizon: a model is judged on a later window than it learned from.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from ml.config import ModelConfig


def split_dates(as_of: date, horizon_days: int) -> tuple[date, date]:
    """(training feature date, holdout feature date)."""
    return as_of - timedelta(days=2 * horizon_days), as_of - timedelta(days=horizon_days)


def _typed(frame: pd.DataFrame, config: ModelConfig) -> pd.DataFrame:
    for column in config.numeric:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in config.categorical:
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def offers(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT product_id FROM marts.dim_products WHERE is_offer ORDER BY 1"
        ).fetchall()
    ]


def feature_frame(con, feature_date: date, config: ModelConfig) -> pd.DataFrame:
    """Features on `feature_date` of every customer known then."""
    frame = con.execute(
        "SELECT * FROM features.customer_features WHERE as_of_date = ? ORDER BY customer_id",
        [feature_date],
    ).df()
    return _typed(frame, config)


def labels(con, feature_date: date, offer: str) -> pd.DataFrame:
    """customer_id and adopted, for the customers eligible for `offer` on `feature_date`."""
    return con.execute(
        "SELECT customer_id, adopted FROM features.offer_labels "
        "WHERE as_of_date = ? AND offer_id = ?",
        [feature_date, offer],
    ).df()


def labelled_frame(con, feature_date: date, offer: str, config: ModelConfig) -> pd.DataFrame:
    """Features on `feature_date` of the customers eligible for `offer` then, with `adopted`."""
    return with_labels(feature_frame(con, feature_date, config), labels(con, feature_date, offer))


def with_labels(features: pd.DataFrame, offer_labels: pd.DataFrame) -> pd.DataFrame:
    """The eligible customers' features with their label (an inner join on customer_id)."""
    return features.merge(offer_labels, on="customer_id", how="inner", sort=True)


def adopters(con, offer: str, as_of: date) -> set[str]:
    """Customers who had adopted `offer` by the end of the as-of date."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    return {
        r[0]
        for r in con.execute(
            "SELECT customer_id FROM marts.fct_offer_adoptions "
            "WHERE offer_id = ? AND adopted_at < ?",
            [offer, cutoff.to_pydatetime()],
        ).fetchall()
    }
