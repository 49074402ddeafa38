"""Activation through the real DAGs on the 20,000-customer demo: `crm run` releases every
scored offer to files and the warehouse, a re-score and re-publish keeps every holdout, the
CRM database gets the same rows when configured, the planted campaign effect shows in the
lift mart, and the run report renders its charts and tables in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2
import pytest

from datagen import planted
from tests.conftest import warehouse_query as query

pytestmark = [pytest.mark.integration, pytest.mark.shared_home("demo")]

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def latest(home: Path, offer: str) -> tuple[dict, pd.DataFrame]:
    folder = home / "audiences" / offer / "latest"
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest, pd.read_parquet(folder / "audience.parquet")


def scored_offers(home: Path) -> list[str]:
    summary = json.loads((home / "reports" / "last_scoring.json").read_text())
    return [o for o, v in summary["offers"].items() if v["status"] == "scored"]


def test_crm_run_releases_every_scored_offer_to_files_and_the_warehouse(demo):
    home = demo["home"]
    offers = scored_offers(home)
    assert planted.PREMIUM.product_id in offers
    assert "Audiences released" in demo["stdout"]
    # the contact policy (one offer per customer in 7 days): no customer is on two lists,
    # and what an offer lost is counted by the offer that won
    released = {offer: set(latest(home, offer)[1].customer_id) for offer in offers}
    for offer in offers:
        others = set().union(*(released[o] for o in offers if o != offer))
        assert not released[offer] & others
    lost = {o: latest(home, o)[0]["arbitration"]["lost_to"] for o in offers}
    assert sum(sum(v.values()) for v in lost.values()) > 0  # the demo's lists overlap
    for offer in offers:
        manifest = latest(home, offer)[0]
        assert manifest["suppressed"]["lost_to_other_offer"] == sum(lost[offer].values())
    for offer in offers:
        manifest, rows = latest(home, offer)
        assert manifest["as_of_date"] == demo["as_of"].isoformat()
        assert len(rows) == manifest["row_count"] == manifest["target"] + manifest["holdout"]
        assert manifest["scored_list"] == manifest["row_count"] + manifest["suppressed_total"]
        assert rows.customer_id.is_unique
        # selection rate by gender (a protected attribute, never a feature): every target
        # member is counted in one group
        genders = manifest["fairness"]["gender"]
        assert sum(g["selected"] for g in genders) == manifest["target"]
        assert {"female", "male"} <= {g["group"] for g in genders}
        # the files for people: whom to contact, whom never to, and what each column means
        folder = home / "audiences" / offer / "latest"
        target = pd.read_csv(folder / "target.csv", dtype={"customer_id": str})
        holdout = pd.read_csv(folder / "holdout.csv", dtype={"customer_id": str})
        assert (len(target), len(holdout)) == (manifest["target"], manifest["holdout"])
        assert set(target["group"]) <= {"target"} and set(holdout["group"]) <= {"holdout"}
        assert set(target.customer_id) | set(holdout.customer_id) == set(rows.customer_id)
        readme = (folder / "README.txt").read_text()
        assert "holdout.csv   the customers NOT to contact" in readme
        assert f"({manifest['holdout']:,} rows)" in readme
        assert len(pd.read_csv(folder / "diff.csv")) == sum(manifest["diff"].values())
        latest_name = (home / "audiences" / offer / "LATEST.txt").read_text().strip()
        assert latest_name == os.readlink(folder)
        share = manifest["holdout"] / max(manifest["row_count"], 1)
        assert manifest["row_count"] < 200 or 0.06 < share < 0.14
        warehouse = query(
            home,
            f"SELECT count(*), count(DISTINCT release_id) FROM activation.campaign_audience_latest "
            f"WHERE offer_id = '{offer}'",
        )
        assert warehouse == [(manifest["row_count"], 1 if manifest["row_count"] else 0)]
        assert query(
            home,
            f"SELECT release_id, row_count FROM activation.campaign_audience_releases "
            f"WHERE offer_id = '{offer}'",
        ) == [(manifest["release_id"], manifest["row_count"])]
        # the warehouse holds masked contacts only; the files none unless configured
        assert not query(
            home,
            "SELECT 1 FROM activation.campaign_audiences "
            "WHERE email_masked NOT LIKE '%***%' LIMIT 1",
        )
        assert not {"email", "phone", "full_name"} & set(rows.columns)
        # the release is the cut list less the suppressed: no score from outside it
        cut = query(
            home,
            f"SELECT count(*), min(score) FROM ml.offer_audiences WHERE offer_id = '{offer}' "
            f"AND as_of_date = '{demo['as_of']}'",
        )[0]
        assert cut[0] == manifest["scored_list"]
        assert rows.empty or rows.score.min() >= cut[1]


def fingerprints(home: Path, as_of) -> dict:
    """What a run of the date leaves: every mart, the date's scores and scored lists, and
    each offer's published release."""
    import duckdb

    from crm.warehouse import marts_fingerprint, table_fingerprint

    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"), read_only=True)
    try:
        where = f"as_of_date = DATE '{as_of}'"
        found = {
            "marts": marts_fingerprint(con),
            "scores": table_fingerprint(con, "ml.customer_scores", where),
            "lists": table_fingerprint(con, "ml.offer_audiences", where),
            "releases": con.execute(
                "SELECT offer_id, release_id FROM activation.campaign_audience_releases "
                "WHERE as_of_date = ? ORDER BY 1, 2",
                [as_of],
            ).fetchall(),
        }
    finally:
        con.close()
    return found


def test_scoring_and_publishing_the_same_date_again_give_identical_scores_and_audiences(
    demo, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    shutil.copytree(demo["home"], home, symlinks=True)
    offer = planted.PREMIUM.product_id
    manifest, before = latest(home, offer)
    first = fingerprints(home, demo["as_of"])
    monkeypatch.setenv("CRM_HOME", str(home))
    monkeypatch.setenv("CRM_DB_URL", PG_URL)
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS crm_activation CASCADE")
    conn.close()
    from crm.orchestrate import run_activation, run_scoring

    # (the pipeline's own rerun, marts included, is tested on the 3,000-customer home)
    run_scoring(demo["as_of"], echo=lambda _: None)
    summary = run_activation(demo["as_of"], echo=lambda _: None)
    second = fingerprints(home, demo["as_of"])
    assert not first["scores"].startswith("0:") and len(first["releases"]) >= 2
    assert second == first
    again, after = latest(home, offer)
    assert again["release_id"] == manifest["release_id"]  # same list: the same release
    assert summary["offers"][offer]["files"]["written"] is False
    merged = before.merge(after, on="customer_id")
    assert len(merged) == len(before) and (merged.group_x == merged.group_y).all()
    # the CRM database, now configured, gets the same rows, with the contacts it may hold
    assert summary["crm_db"] == "configured"
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(
            'SELECT count(*), count(*) FILTER (WHERE "group" = %s), count(email) '
            "FROM crm_activation.campaign_audience WHERE campaign_id = %s",
            ["holdout", offer],
        )
        count, holdouts, emails = cur.fetchone()
        cur.execute("DROP SCHEMA crm_activation CASCADE")
    conn.close()
    assert count == len(after) and holdouts == manifest["holdout"] and emails == count


def test_the_planted_campaign_effect_shows_in_the_lift_mart(demo):
    frame = pd.DataFrame(
        query(
            demo["home"],
            "SELECT members_target, members_control, adopters_target, adopters_control, "
            "adoption_lift, adoption_lift_low, adoption_lift_high, incremental_adopters "
            "FROM marts.fct_campaign_lift WHERE is_window_closed",
        ),
        columns=["mt", "mc", "at", "ac", "lift", "low", "high", "incremental"],
    )
    assert len(frame) >= 10
    target = frame["at"].sum() / frame["mt"].sum()
    control = frame["ac"].sum() / frame["mc"].sum()
    # planted: 7% of the target group adopt within 30 days of the start, 2% of the control
    # (plus the offer's background adoption, which both groups share)
    assert abs(target - planted.CAMPAIGN_TARGET_ADOPTION) < 0.015
    assert control < target - 0.025
    assert (frame["low"] <= frame["lift"]).all() and (frame["lift"] <= frame["high"] + 1e-9).all()
    # every interval is honest about small control groups: wide when the group is small
    small = frame[frame.mc < 20]
    assert ((small.high - small.low) > 0.1).all()
    assert np.isclose(frame["incremental"], frame["lift"] * frame["mt"]).all()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no Chromium: `apt-get install -y chromium` (.ci/run installs it)")


def test_the_run_report_renders_its_charts_and_tables_in_headless_chromium(demo, tmp_path):
    report = demo["home"] / "reports" / "last_run.html"
    assert report.exists()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    ).stdout
    from html.parser import HTMLParser

    class Count(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: dict[str, int] = {}

        def handle_starttag(self, tag, attrs):
            classes = dict(attrs).get("class") or ""
            for key in [tag, *(f"{tag}.{c}" for c in classes.split())]:
                self.tags[key] = self.tags.get(key, 0) + 1

    parsed = Count()
    parsed.feed(dom)
    offers = scored_offers(demo["home"])
    assert parsed.tags.get("svg.gains", 0) >= len(offers)
    assert parsed.tags.get("svg.cost-curve", 0) >= len(offers)
    assert parsed.tags.get("line.cut", 0) >= len(offers)
    assert parsed.tags.get("polyline.capture", 0) >= len(offers)
    assert parsed.tags.get("rect.lift-bar", 0) >= 10 * len(offers)
    assert parsed.tags.get("svg.lift", 0) >= 1 and parsed.tags.get("rect.target-bar", 0) >= 3
    # the campaign verdicts: a gross bar and an incremental dot for the measured campaigns
    assert parsed.tags.get("svg.verdicts", 0) == 1
    assert parsed.tags.get("rect.gross-roi", 0) >= 10
    assert parsed.tags.get("circle.incremental-roi", 0) >= 10
    # the funnel of the demo's one pipeline (four open stages and won) and the forecast
    assert parsed.tags.get("svg.funnel", 0) == 1 and parsed.tags.get("rect.stage-bar", 0) == 5
    assert parsed.tags.get("svg.forecast", 0) == 1
    assert parsed.tags.get("rect.forecast-commit", 0) >= 1
    # the demo's as-of date is a month's first day: nothing won yet this month, but this
    # quarter, yes
    forecast = dom[dom.index('id="forecast"') :]
    assert "<td>closed</td>" in forecast[forecast.index('class="forecast"') :]
    for table in (
        "rules",
        "list-size",
        "suppression",
        "diff",
        "campaign-lift",
        "campaign-verdicts",
        "forecast",
        "fairness",
        "funnel",
        "calibration",
        "ranking",
        "arbitration",
    ):
        assert parsed.tags.get(f"table.{table}", 0) >= 1, table
    assert "OFFER-PREM" in dom and "occupation = sales" in dom

    shot = tmp_path / "report.png"
    subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri()],
        capture_output=True,
        timeout=120,
        env=env,
        check=True,
    )
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[:2] == (2400, 1280)
    # the page is drawn: dark text, the blue capture line and bars, not a blank page
    blue = (image[..., 2] > 150) & (image[..., 0] < 90) & (image[..., 1] < 140)
    dark = image.sum(axis=2) < 150
    assert blue.sum() > 500, "no chart lines or bars on the screenshot"
    assert dark.mean() > 0.005, "no text on the screenshot"
