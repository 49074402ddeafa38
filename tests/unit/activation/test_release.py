"""Holdout assignment, diffs, checksums, the CRM-database write plan and the `latest`
pointer, on small frames."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from activation.crm_db import VALUE_COLUMNS, plan
from activation.holdout import HOLDOUT, TARGET, assign_groups
from activation.release import Release, content_checksum, diff_releases
from activation.release_files import (
    latest_release,
    offer_folder,
    point_latest,
    verify_release,
    write_release,
)
from crm.errors import BadInputError


def _rows(ids, scores, bands=None, group="target") -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "offer_id": "OFFER-X",
            "campaign_id": "OFFER-X",
            "score": scores,
            "band": bands or ["5-50%"] * n,
            "decile": np.arange(n) % 10 + 1,
            "rule_id": "R1",
            "rule": "age <= 30",
            "group": group,
            "list_rank": np.arange(1, n + 1),
            "expected_value": 1.0,
            "model_version": "v1",
            "as_of_date": date(2026, 6, 1),
            "email": [f"{c}@example.com" for c in ids],
        }
    )


def test_holdout_is_deterministic_close_to_the_share_and_keyed_by_campaign():
    ids = [f"C{i:06d}" for i in range(20_000)]
    first = assign_groups("CAMP-A", ids, 0.10)
    again = assign_groups("CAMP-A", list(reversed(ids)), 0.10)[::-1]
    assert (first == again).all()
    share = (first == HOLDOUT).mean()
    assert 0.09 < share < 0.11
    other = assign_groups("CAMP-B", ids, 0.10)
    assert (first != other).mean() > 0.1  # another campaign draws another holdout


def test_a_persisted_assignment_wins_over_the_hash():
    ids = [f"C{i}" for i in range(100)]
    groups = assign_groups("CAMP", ids, 0.5)
    flipped = {ids[0]: TARGET if groups[0] == HOLDOUT else HOLDOUT}
    assert assign_groups("CAMP", ids, 0.5, flipped)[0] == flipped[ids[0]]
    assert (assign_groups("CAMP", ids, 0.0) == TARGET).all()


def test_diff_finds_adds_removals_band_and_score_changes():
    old = _rows(["a", "b", "c", "d"], [0.9, 0.5, 0.3, 0.2], [">=90%", "50-90%", "5-50%", "5-50%"])
    new = _rows(["b", "c", "d", "e"], [0.5, 0.3, 0.25, 0.1], ["50-90%", ">=90%", "5-50%", "5-50%"])
    diff = diff_releases(old, new).set_index("customer_id")["change"].to_dict()
    assert diff == {"a": "removed", "c": "band_changed", "d": "score_changed", "e": "added"}
    assert diff_releases(new, new).empty
    assert set(diff_releases(None, new)["change"]) == {"added"}
    empty = new.iloc[0:0]
    assert diff_releases(None, empty).empty
    assert set(diff_releases(new, empty)["change"]) == {"removed"}


def test_checksum_ignores_row_order_contacts_and_run_but_not_content():
    rows = _rows(["a", "b"], [0.9, 0.5])
    shuffled = rows.iloc[::-1].assign(email="other@example.com")
    assert content_checksum(rows) == content_checksum(shuffled)
    assert content_checksum(rows) != content_checksum(rows.assign(group=["target", "holdout"]))


def test_plan_writes_only_the_differences():
    columns = VALUE_COLUMNS
    current = _rows(["a", "b", "c"], [0.9, 0.5, 0.3])
    assert all(len(v) == 0 for v in plan(current, current.copy(), columns).values())
    added = _rows(["d"], [0.2]).assign(list_rank=4, decile=4)
    wanted = pd.concat([current.iloc[1:], added], ignore_index=True)
    wanted.loc[wanted.customer_id == "c", "score"] = 0.31
    todo = plan(current, wanted, columns)
    assert list(todo["insert"].index) == ["d"]
    assert list(todo["update"].index) == ["c"]
    assert list(todo["delete"].index) == ["a"]


def _release(ids, scores, folder="2026-06-01", revision=1) -> Release:
    rows = _rows(ids, scores)
    manifest = {
        "release_id": f"OFFER-X:{folder}",
        "folder": folder,
        "revision": revision,
        "row_count": len(rows),
        "as_of_date": folder[:10],
        "content_checksum": content_checksum(rows),
    }
    diff = diff_releases(None, rows)
    return Release("OFFER-X", "OFFER-X", date(2026, 6, 1), rows, diff, manifest)


def test_release_files_are_written_whole_and_latest_moves_forward_only(tmp_path):
    first = write_release(_release(["a", "b"], [0.9, 0.5]), tmp_path, ("email",))
    assert first["written"] and first["latest_moved"]
    latest = tmp_path / "OFFER-X" / "latest"
    assert os.readlink(latest) == "2026-06-01"
    manifest = verify_release(latest.resolve())
    assert manifest["row_count"] == 2
    target = pd.read_csv(latest / "target.csv")
    assert set(target.columns) >= {"customer_id", "group", "email"}
    assert set(target["group"]) == {"target"}
    assert (tmp_path / "OFFER-X" / "LATEST.txt").read_text() == "2026-06-01\n"

    write_release(_release(["a"], [0.9], folder="2026-06-02"), tmp_path, ())
    assert os.readlink(latest) == "2026-06-02"
    assert (tmp_path / "OFFER-X" / "LATEST.txt").read_text() == "2026-06-02\n"
    assert "email" not in pd.read_parquet(latest / "audience.parquet").columns
    # the same folder again writes nothing; an older date does not move latest back
    assert (
        write_release(_release(["a"], [0.9], folder="2026-06-02"), tmp_path, ())["written"] is False
    )
    assert point_latest(tmp_path / "OFFER-X", "2026-06-01") is False
    assert os.readlink(latest) == "2026-06-02"
    assert point_latest(tmp_path / "OFFER-X", "2026-06-02.r2") is True
    # rolling back (crm run --republish): latest and LATEST.txt move to the earlier release
    assert point_latest(tmp_path / "OFFER-X", "2026-06-01", back_in_time=True) is True
    assert os.readlink(latest) == "2026-06-01"
    assert (tmp_path / "OFFER-X" / "LATEST.txt").read_text() == "2026-06-01\n"


def test_a_tampered_release_fails_verification(tmp_path):
    write_release(_release(["a", "b"], [0.9, 0.5]), tmp_path, ())
    folder = tmp_path / "OFFER-X" / "2026-06-01"
    with open(folder / "target.csv", "a") as handle:
        handle.write("x\n")
    with pytest.raises(BadInputError, match="checksum"):
        verify_release(folder)


@pytest.mark.parametrize("name", ["../etc", "a/b", ".", "OFFER X", "Travel Insurance/2027"])
def test_an_offer_id_that_is_not_a_plain_name_gets_a_folder_inside_audiences(tmp_path, name):
    folder = offer_folder(tmp_path, name)
    assert folder.parent == tmp_path and folder.name not in (".", "..", name)


def test_plan_sees_a_value_that_became_missing():
    current = _rows(["a", "b"], [0.9, 0.5])
    wanted = current.copy()
    wanted["decile"] = wanted["decile"].astype("Int64")
    wanted.loc[1, "decile"] = pd.NA
    assert list(plan(current, wanted, VALUE_COLUMNS)["update"].index) == ["b"]


def test_a_release_of_an_offer_whose_id_holds_a_slash_is_written_and_found(tmp_path):
    """A CRM's product id `Travel Insurance/2027` once stopped every offer's release."""
    odd = "Travel Insurance/2027"
    release = _release(["a", "b"], [0.9, 0.5])
    release.offer = odd
    written = write_release(release, tmp_path, ())
    assert written["written"] and Path(written["folder"]).parent.parent == tmp_path
    folder, manifest = latest_release(tmp_path, odd)
    assert manifest["row_count"] == 2 and folder == Path(written["folder"])
    assert offer_folder(tmp_path, "Travel_Insurance_2027") != offer_folder(tmp_path, odd)
