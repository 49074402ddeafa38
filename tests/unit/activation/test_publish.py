"""Releases built from a small real warehouse: each suppression reason, stable holdouts,
diffs between releases, idempotent re-runs, and a process killed while writing files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import pytest

from activation.config import ContactPolicy, load_config
from activation.publish import publish_audiences
from crm.errors import RetryableError
from crm.warehouse import session

from .conftest import AS_OF, add_scored

CUSTOMERS = [f"C{i:03d}" for i in range(1, 201)]


def _config(**changes):
    return replace(load_config(), **changes)


def test_each_suppression_reason_is_counted_and_the_customer_left_out(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS)
        con.execute(
            "INSERT INTO marts.fct_offer_adoptions VALUES "
            "('C001', 'OFFER-A', '2026-05-30 10:00', 10, NULL)"
        )
        # an unsubscribe known now counts, whatever the as-of date
        con.execute("UPDATE marts.dim_customers SET is_opted_out = true WHERE customer_id = 'C002'")
        con.execute(
            "INSERT INTO marts.fct_campaign_members VALUES ('CMP9', 'C003', 'control', 'running'), "
            "('CMP8', 'C006', 'control', 'completed'), ('CMP9', 'C007', 'target', 'running')"
        )
        con.execute(
            "INSERT INTO marts.fct_interactions VALUES ('C004', '2026-05-29 09:00', true, 'CMP9'), "
            "('C008', '2026-05-01 09:00', true, 'CMP9'), ('C009', '2026-05-31 09:00', false, NULL),"
            "('C011', '2026-05-31 09:00', true, 'OFFER-A')"
        )
        # (which contact is valid is audience_contacts' rule, tested in dbt)
        con.execute(
            "UPDATE audiences.audience_contacts SET has_valid_contact = false "
            "WHERE customer_id IN ('C005', 'C001')"
        )
        # the campaign's own control group in the CRM does not keep its members out
        con.execute(
            "INSERT INTO marts.fct_campaign_members "
            "VALUES ('OFFER-A', 'C012', 'control', 'running')"
        )
        con.execute(
            "UPDATE audiences.audience_contacts SET email = NULL WHERE customer_id = 'C010'"
        )
    summary = publish_audiences(AS_OF, run_id="r1", settings=home, config=_config())
    manifest = summary["offers"]["OFFER-A"]["manifest"]
    assert manifest["suppressed"] == {
        "already_adopted": 1,
        "opted_out": 1,
        "other_campaign_holdout": 1,
        "cooling_off": 1,
        "invalid_contact": 1,
        "excluded": 0,
        "lost_to_other_offer": 0,
        "over_channel_capacity": 0,
    }
    released = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet")
    assert len(released) == manifest["row_count"] == 195
    assert not {"C001", "C002", "C003", "C004", "C005"} & set(released.customer_id)
    # a completed campaign's control group, a target member, an old touch, a non-campaign
    # touch, a phone-only customer, the campaign's own touch and own control group stay in;
    # C001 (adopted and no valid contact) counts once, under the first reason
    assert {"C006", "C007", "C008", "C009", "C010", "C011", "C012"} <= set(released.customer_id)
    assert released.list_rank.tolist() == list(range(1, 196))
    assert "email" not in released.columns  # files carry no contact field unless configured


def test_holdout_is_stable_across_reruns_and_rescoring_and_persisted(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS)
    config = _config(holdout_share=0.2)
    first = publish_audiences(AS_OF, run_id="r1", settings=home, config=config)
    groups = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet")
    assert 20 <= (groups.group == "holdout").sum() <= 60
    again = publish_audiences(AS_OF, run_id="r2", settings=home, config=config)
    assert again["offers"]["OFFER-A"]["files"]["written"] is False
    assert again["offers"]["OFFER-A"]["warehouse"]["unchanged"] is True
    assert again["offers"]["OFFER-A"]["release_id"] == first["offers"]["OFFER-A"]["release_id"]

    # a re-score on the next day with other scores, and a new share: nobody changes group
    later = AS_OF + timedelta(days=1)
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", list(reversed(CUSTOMERS[:150])) + ["C900"], later, 0.8)
    publish_audiences(later, run_id="r3", settings=home, config=_config(holdout_share=0.5))
    next_day = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet")
    merged = groups.merge(next_day, on="customer_id", suffixes=("_1", "_2"))
    assert len(merged) == 150 and (merged.group_1 == merged.group_2).all()
    with session(read_only=True, settings=home) as con:
        kept = con.execute(
            "SELECT count(*) FROM activation.campaign_audience_groups WHERE campaign_id = 'OFFER-A'"
        ).fetchall()[0][0]
        latest = con.execute(
            "SELECT DISTINCT as_of_date FROM activation.campaign_audience_latest"
        ).fetchall()
    assert kept == 201
    assert latest == [(later,)]


def test_the_diff_says_who_was_added_removed_and_changed(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:10])
        later = AS_OF + timedelta(days=1)
        add_scored(con, "OFFER-A", CUSTOMERS[2:10] + ["C500"], later)
        con.execute(
            "UPDATE ml.offer_audiences SET band = '>=90%' WHERE as_of_date = ? "
            "AND customer_id = 'C005'",
            [later],
        )
    publish_audiences(AS_OF, run_id="r1", settings=home, config=_config())
    summary = publish_audiences(later, run_id="r2", settings=home, config=_config())
    manifest = summary["offers"]["OFFER-A"]["manifest"]
    assert manifest["diff"]["added"] == 1 and manifest["diff"]["removed"] == 2
    assert manifest["diff"]["band_changed"] == 1
    assert manifest["previous_release_id"].startswith("OFFER-A:2026-06-01:")
    diff = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "diff.parquet")
    changes = diff.set_index("customer_id")["change"].to_dict()
    assert changes["C500"] == "added" and changes["C001"] == "removed"
    assert changes["C005"] == "band_changed"
    with session(read_only=True, settings=home) as con:
        stored = con.execute(
            "SELECT count(*) FROM activation.campaign_audience_diffs WHERE release_id = ?",
            [summary["offers"]["OFFER-A"]["release_id"]],
        ).fetchall()[0][0]
    assert stored == len(diff)


def test_another_campaigns_recent_holdout_is_kept_out(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS, AS_OF - timedelta(days=1))
        add_scored(con, "OFFER-B", CUSTOMERS)
    config = _config(holdout_share=0.2)
    publish_audiences(AS_OF - timedelta(days=1), settings=home, config=config, offers=["OFFER-A"])
    held = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet")
    held = set(held[held.group == "holdout"].customer_id)
    summary = publish_audiences(AS_OF, settings=home, config=config, offers=["OFFER-B"])
    assert summary["offers"]["OFFER-B"]["manifest"]["suppressed"]["other_campaign_holdout"] == len(
        held
    )
    released = pd.read_parquet(home.audiences / "OFFER-B" / "latest" / "audience.parquet")
    assert not held & set(released.customer_id)


def test_a_changed_list_for_the_same_date_is_a_new_revision(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:20])
    first = publish_audiences(AS_OF, settings=home, config=_config())
    with session(settings=home) as con:
        con.execute("DELETE FROM ml.offer_audiences WHERE customer_id = 'C001'")
    second = publish_audiences(AS_OF, settings=home, config=_config())
    assert second["offers"]["OFFER-A"]["manifest"]["revision"] == 2
    assert os.readlink(home.audiences / "OFFER-A" / "latest") == "2026-06-01.r2"
    old = json.loads((home.audiences / "OFFER-A" / "2026-06-01" / "manifest.json").read_text())
    assert old["release_id"] == first["offers"]["OFFER-A"]["release_id"]  # untouched


KILL = """
import sys
from datetime import date
from activation.publish import publish_audiences
publish_audiences(date.fromisoformat(sys.argv[1]), run_id="killed")
"""


def test_a_process_killed_while_writing_files_leaves_latest_on_the_complete_release(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:50])
        add_scored(con, "OFFER-A", CUSTOMERS[10:60], AS_OF + timedelta(days=1))
    publish_audiences(AS_OF, settings=home, config=_config())
    link = home.audiences / "OFFER-A" / "latest"
    for point in (
        "activation.files.parquet_written",
        "activation.files.verified",
        "activation.latest.before_swap",
    ):
        env = {**os.environ, "CRM_HOME": str(home.home), "CRM_FAULT_POINT": point}
        proc = subprocess.run(
            [sys.executable, "-c", KILL, (AS_OF + timedelta(days=1)).isoformat()], env=env
        )
        assert proc.returncode == -9, point
        assert os.readlink(link) == "2026-06-01", point
        assert len(pd.read_parquet(link / "audience.parquet")) == 50
    # the next run completes the release and cleans up what the killed ones left
    summary = publish_audiences(AS_OF + timedelta(days=1), settings=home, config=_config())
    assert os.readlink(link) == "2026-06-02"
    assert len(pd.read_parquet(link / "audience.parquet")) == 50
    assert summary["offers"]["OFFER-A"]["manifest"]["diff"]["added"] == 10
    assert not [p for p in (home.audiences / "OFFER-A").iterdir() if p.name.startswith(".tmp")]


def test_nothing_scored_publishes_nothing(home):
    summary = publish_audiences(date(2026, 1, 1), settings=home, config=_config())
    assert summary["offers"] == {} and summary["crm_db"] == "not configured"


def test_destinations_can_be_switched_off_without_touching_scoring(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:20])
    # a configured but unreachable CRM database: switched off, it is never contacted
    configured = home.replace(db_url="postgresql://postgres@127.0.0.1:1/unreachable")
    summary = publish_audiences(AS_OF, settings=configured, config=_config(destinations=()))
    assert summary["crm_db"] == "switched off"
    assert "warehouse" not in summary["offers"]["OFFER-A"]
    assert summary["offers"]["OFFER-A"]["files"]["written"] is True
    with session(read_only=True, settings=home) as con:
        assert con.execute("SELECT count(*) FROM activation.campaign_audiences").fetchall() == [
            (0,)
        ]


def test_an_offer_scored_with_an_empty_list_gets_an_empty_release(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:20])
    publish_audiences(AS_OF, settings=home, config=_config())
    later = AS_OF + timedelta(days=1)
    with session(settings=home) as con:
        # scored the next day, but no one is worth contacting: the cut list is empty
        con.execute("INSERT INTO ml.customer_scores VALUES ('C001', 'OFFER-A', 0.01, ?)", [later])
    summary = publish_audiences(later, settings=home, config=_config())
    manifest = summary["offers"]["OFFER-A"]["manifest"]
    assert manifest["row_count"] == 0 and manifest["diff"]["removed"] == 20
    assert os.readlink(home.audiences / "OFFER-A" / "latest") == later.isoformat()
    assert pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet").empty
    with session(read_only=True, settings=home) as con:
        assert con.execute(
            "SELECT count(*) FROM activation.campaign_audience_latest"
        ).fetchall() == [(0,)]
        releases = con.execute(
            "SELECT as_of_date, row_count FROM activation.campaign_audience_releases ORDER BY 1"
        ).fetchall()
    assert releases == [(AS_OF, 20), (later, 0)]


def test_the_same_days_holdouts_of_other_offers_stay_out_in_any_order(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS)
        add_scored(con, "OFFER-B", CUSTOMERS)
    # two offers a customer may get the same day: one's holdout stays off the other's list
    config = _config(holdout_share=0.3, contact_policy=ContactPolicy(max_offers=2))
    for order in (["OFFER-B", "OFFER-A"], ["OFFER-A", "OFFER-B"]):
        for offer in order:
            publish_audiences(AS_OF, settings=home, config=config, offers=[offer])
        a = pd.read_parquet(home.audiences / "OFFER-A" / "latest" / "audience.parquet")
        b = pd.read_parquet(home.audiences / "OFFER-B" / "latest" / "audience.parquet")
        held_a = set(a[a.group == "holdout"].customer_id)
        held_b = set(b[b.group == "holdout"].customer_id)
        assert held_a and held_b
        assert not held_a & set(b.customer_id) and not held_b & set(a.customer_id)
    # the second order released exactly the same lists: no new revision
    assert os.readlink(home.audiences / "OFFER-A" / "latest") == "2026-06-01"


def test_a_list_that_goes_back_to_an_earlier_content_is_a_new_revision(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:20])
    publish_audiences(AS_OF, settings=home, config=_config())
    with session(settings=home) as con:
        con.execute("UPDATE ml.offer_audiences SET band = '>=90%' WHERE customer_id = 'C001'")
    publish_audiences(AS_OF, settings=home, config=_config())
    with session(settings=home) as con:
        con.execute("UPDATE ml.offer_audiences SET band = '50%-90%' WHERE customer_id = 'C001'")
    third = publish_audiences(AS_OF, settings=home, config=_config())
    assert third["offers"]["OFFER-A"]["manifest"]["revision"] == 3
    assert os.readlink(home.audiences / "OFFER-A" / "latest") == "2026-06-01.r3"


@pytest.fixture
def small_disk(home):
    """The audiences folder on its own 1 MB file system (tmpfs, needs root), unmounted after."""
    folder = home.audiences
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_that_fills_up_during_an_export_leaves_the_previous_release_intact(home, small_disk):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:50])
        add_scored(con, "OFFER-A", CUSTOMERS, AS_OF + timedelta(days=1))
    publish_audiences(AS_OF, settings=home, config=_config())
    link = small_disk / "OFFER-A" / "latest"
    # fill the disk up to the last few kilobytes, as another process would
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 4096))
    with pytest.raises(RetryableError, match="no space left") as failure:
        publish_audiences(AS_OF + timedelta(days=1), settings=home, config=_config())
    assert "stays on the previous release" in str(failure.value)
    assert os.readlink(link) == "2026-06-01"
    assert len(pd.read_parquet(link / "audience.parquet")) == 50
    assert not [p for p in (small_disk / "OFFER-A").iterdir() if p.name.startswith(".tmp")]
    with session(read_only=True, settings=home) as con:  # the warehouse kept the first only
        assert con.execute(
            "SELECT as_of_date FROM activation.campaign_audience_releases"
        ).fetchall() == [(AS_OF,)]
    # space freed: the retry publishes the new release
    (small_disk / "filler").unlink()
    summary = publish_audiences(AS_OF + timedelta(days=1), settings=home, config=_config())
    assert os.readlink(link) == "2026-06-02"
    assert summary["offers"]["OFFER-A"]["manifest"]["row_count"] == len(
        pd.read_parquet(link / "audience.parquet")
    )
