from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml.config import load_config


def planted_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers whose adoption follows 'age 20-30 and job = sales and spend 150-200' (90%)
    and 5% elsewhere; spend is sometimes missing, a noise column is not."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "age": rng.integers(18, 70, n).astype(float),
            "spend": np.round(rng.uniform(0, 400, n), 2),
            "noise": rng.normal(size=n),
            "job": rng.choice(["sales", "clerk", "nurse", None], size=n, p=[0.4, 0.3, 0.25, 0.05]),
        }
    )
    frame.loc[rng.random(n) < 0.03, "spend"] = np.nan
    segment = frame.age.between(20, 30) & (frame.job == "sales") & frame.spend.between(150, 199.99)
    y = (rng.random(n) < np.where(segment, 0.9, 0.05)).astype(int)
    return frame, y


@pytest.fixture
def small_config():
    config = load_config().with_features(
        {"age": "age", "spend": "spend", "noise": "noise"}, {"job": "job"}
    )
    return replace(config, tuning_max_negatives=5_000)
