"""The fast encoding of the tree's rows gives what the fitted encoder itself gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.pipeline import MAX_CATEGORIES, encode_rows, tree_features


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "visits": rng.integers(0, 9, n),  # integers, not floats
            "job": rng.choice(["sales", "clerk", "nurse", None], size=n),
            # more values than the encoder keeps: the rare ones are grouped
            "city": rng.choice([f"c{i}" for i in range(MAX_CATEGORIES + 10)], size=n),
        }
    )
    x.loc[rng.random(n) < 0.1, "age"] = np.nan
    return x


@pytest.mark.parametrize(
    ("numeric", "categorical"),
    [(["age", "visits"], ["job", "city"]), (["age"], []), ([], ["job"])],
)
def test_encoded_rows_equal_the_encoders_own_transform(numeric, categorical):
    encoder = tree_features(numeric, categorical).fit(frame(2_000, 1)[numeric + categorical])
    later = frame(500, 2)
    later.loc[:4, "job"] = "astronaut"  # a value training never saw
    expected = np.asarray(encoder.transform(later[numeric + categorical]), dtype=np.float32)
    got = encode_rows(encoder, later)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
