"""The fast encoding of the tree's rows gives what the fitted encoder itself gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.pipeline import MAX_CATEGORIES, encode_rows, encoder_fingerprint, tree_features


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


def test_encoders_that_encode_alike_share_a_fingerprint():
    # fitted on different customers with the same categories: one's rows serve the other
    def fitted(numeric, x):
        return tree_features(numeric, ["job"]).fit(x[[*numeric, "job"]])

    first = fitted(["age", "visits"], frame(2_000, 1))
    assert encoder_fingerprint(fitted(["age", "visits"], frame(2_000, 3))) == (
        encoder_fingerprint(first)
    )
    # a category the other never saw, another column, or rare values grouped otherwise
    # encode differently
    other_jobs = frame(2_000, 1)
    other_jobs.loc[:200, "job"] = "pilot"
    assert encoder_fingerprint(fitted(["age", "visits"], other_jobs)) != encoder_fingerprint(first)
    assert encoder_fingerprint(fitted(["age"], frame(2_000, 1))) != encoder_fingerprint(first)
    cities = [tree_features([], ["city"]).fit(frame(2_000, seed)[["city"]]) for seed in (1, 3)]
    assert encoder_fingerprint(cities[0]) != encoder_fingerprint(cities[1])
