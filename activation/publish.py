"""Publish the day's audiences: for every offer scored on the as-of date, build the release,
write its files, then bring each destination in line with it.

Order matters for what a failure leaves behind. The release files come first and are the
record of what was decided; each destination is then made equal to the release in its
own transaction (the warehouse, then the CRM database when configured). A failure stops
the run with the earlier destinations done and the later ones still on the previous
release, never half-written; a retry finds the release already written and completes the
rest.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

from activation import crm_db
from activation.arbitration import EXCLUSIONS_FILE, decide_day
from activation.assemble import build_release, remember_groups
from activation.config import ActivationConfig, load_config
from activation.release import RELEASE_COLUMNS, Release
from activation.release_files import write_release
from crm.tables import ensure_activation


def publish_to_warehouse(con, release: Release, run_id: str | None) -> dict:
    """The release's rows into `activation.campaign_audiences` (masked contacts only), its diff
    into `activation.campaign_audience_diffs` and its manifest into
    `activation.campaign_audience_releases`, in one transaction; nothing if it is there already."""
    present = con.execute(
        "SELECT count(*) FROM activation.campaign_audience_releases WHERE release_id = ?",
        [release.release_id],
    ).fetchall()[0][0]
    if present:
        return {"rows": 0, "unchanged": True}
    rows = release.rows[RELEASE_COLUMNS]
    diff = release.diff.assign(
        release_id=release.release_id,
        previous_release_id=release.manifest.get("previous_release_id"),
        campaign_id=release.campaign_id,
        as_of_date=release.as_of,
    )
    con.register("release_rows", rows)
    con.register("release_diff", diff)
    try:
        con.execute("BEGIN TRANSACTION")
        remember_groups(con, release)
        con.execute(
            "DELETE FROM activation.campaign_audiences WHERE release_id = ?", [release.release_id]
        )
        con.execute(
            """
            INSERT INTO activation.campaign_audiences
            SELECT ?, r.customer_id, r.offer_id, r.campaign_id, r.score, r.band, r.decile,
                   r.rule_id, r.rule, r."group", r.list_rank, r.expected_value,
                   r.model_version, r.as_of_date, d.email_masked, d.phone_masked, ?, ?, ?
            FROM release_rows AS r
            LEFT JOIN marts.dim_customers AS d USING (customer_id)
            """,
            [
                release.release_id,
                int(release.manifest["revision"]),
                run_id,
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
        con.execute(
            "DELETE FROM activation.campaign_audience_diffs WHERE release_id = ?",
            [release.release_id],
        )
        m = release.manifest
        con.execute(
            "INSERT INTO activation.campaign_audience_releases VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                release.release_id,
                release.campaign_id,
                release.offer,
                release.as_of,
                int(m["revision"]),
                int(m["row_count"]),
                int(m["target"]),
                int(m["holdout"]),
                int(m["suppressed_total"]),
                m.get("previous_release_id"),
                run_id,
                datetime.now(UTC).replace(tzinfo=None),
                json.dumps(m, default=str),
            ],
        )
        con.execute(
            """
            INSERT INTO activation.campaign_audience_diffs
            SELECT release_id, previous_release_id, customer_id, change, old_band, new_band,
                   old_score, new_score, campaign_id, as_of_date
            FROM release_diff
            """
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("release_rows")
        con.unregister("release_diff")
    return {"rows": int(len(rows)), "unchanged": False}


def scored_offers(con, as_of: date) -> list[str]:
    """Offers scored on the date. An offer whose cut list is empty still gets a release
    (of no one), so `latest` never shows an older list as today's."""
    from crm.warehouse import table_exists

    if not table_exists(con, "ml", "customer_scores"):
        return []
    return [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT offer_id FROM ml.customer_scores WHERE as_of_date = ? ORDER BY 1",
            [as_of],
        ).fetchall()
    ]


def checked_releases(
    con, as_of: date, run_id: str | None, settings, config: ActivationConfig, offers=None
) -> tuple[list[Release], dict]:
    """Build every offer's release for the date and run the audience checkpoint on them
    (results in `audit.validation_results`); raises when a critical expectation failed."""
    from expectations.audiences import CHECKPOINT, validate_release
    from expectations.checkpoint import conclude

    # the policy decides on every list of the day, whichever offers are released now
    decided = decide_day(con, as_of, config, settings.landing / EXCLUSIONS_FILE)
    built = [
        build_release(con, offer, as_of, run_id, config, settings.audiences, decided)
        for offer in offers or scored_offers(con, as_of)
    ]
    outcomes = [o for r in built for o in validate_release(con, r, config.holdout_share)]
    return built, conclude(con, settings, CHECKPOINT, run_id, as_of, outcomes)


def check_audiences(
    as_of: date,
    run_id: str | None = None,
    settings=None,
    config: ActivationConfig | None = None,
    offers: list[str] | None = None,
) -> dict:
    """The audience checkpoint alone (the DAG's gate before publishing): build and check
    every release of the date, write nothing but the results."""
    from crm.settings import get_settings
    from crm.warehouse import session

    settings = settings or get_settings()
    with session(settings=settings) as con:
        ensure_activation(con)
        _, summary = checked_releases(con, as_of, run_id, settings, config or load_config(), offers)
    return {"as_of": as_of.isoformat(), **summary}


def publish_audiences(
    as_of: date,
    run_id: str | None = None,
    settings=None,
    config: ActivationConfig | None = None,
    offers: list[str] | None = None,
    republish: bool = False,
) -> dict:
    """Release and publish every scored offer's audience for the date: the files, then the
    destinations switched on in the config. Returns a summary per offer: manifest figures
    and what each destination did. `republish`: `latest` moves to this date even when a
    later one was released (rolling audiences back)."""
    from crm.settings import get_settings
    from crm.warehouse import session

    settings = settings or get_settings()
    config = config or load_config()
    started = time.perf_counter()
    summary: dict = {"as_of": as_of.isoformat(), "run_id": run_id, "offers": {}}
    destinations = config.destinations
    database = (
        crm_db.destination_from_config(config, settings) if "crm_db" in destinations else None
    )
    summary["crm_db"] = (
        "configured"
        if database
        else "switched off"
        if "crm_db" not in destinations
        else "not configured"
    )
    with session(settings=settings) as con:
        ensure_activation(con)
        # every list is built and checked before the first file is written: a critical
        # failure on one offer stops the run with nothing of this run published
        released, summary["validation"] = checked_releases(
            con, as_of, run_id, settings, config, offers
        )
        for release in released:
            offer = release.offer
            outcome: dict = {"release_id": release.release_id}
            outcome["files"] = write_release(
                release, settings.audiences, config.contact_fields["files"], republish
            )
            if "warehouse" in destinations:
                outcome["warehouse"] = publish_to_warehouse(con, release, run_id)
            outcome["manifest"] = release.manifest
            summary["offers"][offer] = outcome
    # the CRM database after the warehouse lock is let go: a slow remote database must not
    # hold up every other writer of the warehouse
    if database is not None:
        for release in released:
            outcome = summary["offers"][release.offer]
            if not outcome["files"]["is_latest"]:
                # a backfill: the CRM keeps the newest list, the files and warehouse keep both
                outcome["crm_db"] = {"skipped": "an older release than the latest one"}
                continue
            outcome["crm_db"] = crm_db.publish(
                release, database, config.contact_fields["crm_db"], run_id=run_id
            )
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
