"""An audience release: one offer's scored list for one as-of date, suppressed, split into
target and holdout, compared with the previous release, and written as an immutable
folder of files.

`CRM_HOME/audiences/<offer>/<as-of date>/` holds `target.csv` (contact), `holdout.csv` (never
contact), `diff.csv` and a `README.txt` saying so for marketing, `audience.parquet` and
`diff.parquet` for systems, and `manifest.json`. The folder is written under a temporary
name, checked (row counts and checksums read back) and renamed into place; only then does
the `latest` symlink move, by an atomic replace (and `LATEST.txt`, which names the folder
where symlinks do not survive). A process killed at any point leaves `latest` on the
previous complete release and, at worst, a temporary folder the next run removes.

The same list again (same customers, groups, scores, rules, model) is the same release:
nothing is written. A different list for a date that already has a release gets a new
revision (`<date>.r2`, ...), so a published folder is never changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

#: The columns that define a release's content (its checksum); contact fields and run ids
#: do not make a list different.
CONTENT_COLUMNS = [
    "customer_id",
    "group",
    "score",
    "band",
    "decile",
    "rule_id",
    "list_rank",
    "model_version",
]
RELEASE_COLUMNS = [
    "customer_id",
    "offer_id",
    "campaign_id",
    "score",
    "band",
    "decile",
    "rule_id",
    "rule",
    "group",
    "list_rank",
    "expected_value",
    "model_version",
    "as_of_date",
]
DIFF_CHANGES = ("added", "removed", "band_changed", "score_changed")
DIFF_COLUMNS = ("customer_id", "change", "old_band", "new_band", "old_score", "new_score")


@dataclass
class Release:
    """A release in memory: the rows (with every contact field) and its manifest."""

    offer: str
    campaign_id: str
    as_of: date
    rows: pd.DataFrame
    diff: pd.DataFrame
    manifest: dict = field(default_factory=dict)

    @property
    def release_id(self) -> str:
        return self.manifest["release_id"]


def content_checksum(rows: pd.DataFrame) -> str:
    """sha256 of the release's content columns, in customer order (run ids excluded)."""
    canonical = rows[CONTENT_COLUMNS].sort_values("customer_id").copy()
    canonical["score"] = canonical["score"].round(12)
    data = canonical.to_csv(index=False, lineterminator="\n").encode()
    return hashlib.sha256(data).hexdigest()


def diff_releases(previous: pd.DataFrame | None, current: pd.DataFrame) -> pd.DataFrame:
    """Customers added, removed, or with a changed band or score since the previous release."""
    columns = list(DIFF_COLUMNS)
    if previous is None or previous.empty:
        previous = pd.DataFrame({"customer_id": [], "band": [], "score": []})

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:  # an empty list must still join
        return frame[["customer_id", "band", "score"]].astype(
            {"customer_id": object, "band": object, "score": float}
        )

    merged = keyed(previous).merge(
        keyed(current),
        on="customer_id",
        how="outer",
        suffixes=("_old", "_new"),
        indicator=True,
    )
    change = np.select(
        [
            merged["_merge"].eq("right_only"),
            merged["_merge"].eq("left_only"),
            merged["band_old"].ne(merged["band_new"]),
            ~np.isclose(merged["score_old"].astype(float), merged["score_new"].astype(float)),
        ],
        list(DIFF_CHANGES),
        default="",
    )
    merged["change"] = change
    out = merged[merged["change"] != ""].rename(
        columns={
            "band_old": "old_band",
            "band_new": "new_band",
            "score_old": "old_score",
            "score_new": "new_score",
        }
    )
    return out[columns].sort_values("customer_id").reset_index(drop=True)
