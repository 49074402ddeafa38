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

import errno
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from activation.config import ActivationConfig
from activation.holdout import HOLDOUT, TARGET, assign_groups
from crm import faults
from crm.errors import BadInputError, RetryableError
from crm.runs import fsync_path

#: Why a scored customer is left out of a release, in the order they are checked: a
#: customer is counted under the first reason that applies.
SUPPRESSION_REASONS = (
    "already_adopted",
    "opted_out",
    "other_campaign_holdout",
    "cooling_off",
    "invalid_contact",
)
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
LATEST = "latest"
LATEST_NAME_FILE = "LATEST.txt"


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


def _cutoff(as_of: date) -> datetime:
    return datetime.combine(as_of + timedelta(days=1), datetime.min.time())


def ensure_tables(con) -> None:
    """The warehouse tables activation keeps (created on first use)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS marts.campaign_audience_groups (
            campaign_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, "group" VARCHAR NOT NULL,
            assigned_as_of DATE NOT NULL, assigned_release VARCHAR NOT NULL,
            PRIMARY KEY (campaign_id, customer_id)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS marts.campaign_audiences (
            release_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, offer_id VARCHAR,
            campaign_id VARCHAR, score DOUBLE, band VARCHAR, decile INTEGER, rule_id VARCHAR,
            rule VARCHAR, "group" VARCHAR, list_rank BIGINT, expected_value DOUBLE,
            model_version VARCHAR, as_of_date DATE, email_masked VARCHAR, phone_masked VARCHAR,
            revision INTEGER, run_id VARCHAR, published_at TIMESTAMP
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS marts.campaign_audience_diffs (
            release_id VARCHAR NOT NULL, previous_release_id VARCHAR, customer_id VARCHAR,
            change VARCHAR, old_band VARCHAR, new_band VARCHAR, old_score DOUBLE,
            new_score DOUBLE, campaign_id VARCHAR, as_of_date DATE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS marts.campaign_audience_releases (
            release_id VARCHAR PRIMARY KEY, campaign_id VARCHAR, offer_id VARCHAR,
            as_of_date DATE, revision INTEGER, row_count BIGINT, target BIGINT, holdout BIGINT,
            suppressed_total BIGINT, previous_release_id VARCHAR, run_id VARCHAR,
            published_at TIMESTAMP, manifest VARCHAR
        )
        """
    )
    # the members of each campaign's newest release (latest as-of date, then revision); a
    # release of no one leaves the campaign empty here, as in the files
    con.execute(
        """
        CREATE OR REPLACE VIEW marts.campaign_audience_latest AS
        SELECT a.*
        FROM marts.campaign_audiences AS a
        JOIN (
            SELECT release_id FROM marts.campaign_audience_releases
            QUALIFY row_number() OVER (
                PARTITION BY campaign_id ORDER BY as_of_date DESC, revision DESC
            ) = 1
        ) AS newest USING (release_id)
        """
    )


def same_day_holdouts(con, offer: str, as_of: date, config: ActivationConfig) -> pd.DataFrame:
    """Customers in the holdout other offers' lists of the same day would draw for them
    (persisted assignment or hash): kept out of this offer's list, whatever order the
    offers are released in, so no holdout is contacted by another campaign that day."""
    others = con.execute(
        "SELECT offer_id, customer_id FROM ml.offer_audiences "
        "WHERE as_of_date = ? AND offer_id <> ?",
        [as_of, offer],
    ).df()
    held = []
    for other, members in others.groupby("offer_id"):
        campaign = config.campaign_for(str(other))
        known = dict(
            con.execute(
                'SELECT customer_id, "group" FROM marts.campaign_audience_groups '
                "WHERE campaign_id = ?",
                [campaign],
            ).fetchall()
        )
        groups = assign_groups(campaign, members["customer_id"], config.holdout_share, known)
        held.append(members["customer_id"][groups == HOLDOUT])
    ids = pd.concat(held, ignore_index=True) if held else pd.Series([], dtype=object)
    return pd.DataFrame({"customer_id": ids.astype(object)})


def candidates(con, offer: str, campaign_id: str, as_of: date, config: ActivationConfig):
    """The offer's scored list for the date with contact fields and, per customer, the
    first suppression reason that applies (NULL: keep).

    Opt-outs are read from the newest customer 360 (an unsubscribe known now counts even
    for an earlier as-of date); the campaign's own control group and its own touches never
    suppress its members."""
    cutoff = _cutoff(as_of)
    con.register("same_day_holdouts", same_day_holdouts(con, offer, as_of, config))
    try:
        frame = con.execute(
            f"""
            WITH audience AS (
                SELECT * FROM ml.offer_audiences WHERE as_of_date = $as_of AND offer_id = $offer
            ),
            adopted AS (
                SELECT DISTINCT customer_id FROM intermediate.int_offer_adoptions_attributed
                WHERE product_id = $offer AND adopted_at < $cutoff
            ),
            opted_out AS (
                SELECT customer_id FROM marts.dim_customers WHERE is_opted_out
            ),
            other_holdouts AS (
                -- control groups of other campaigns running in the CRM ...
                SELECT m.customer_id
                FROM staging.stg_crm__campaign_members AS m
                JOIN staging.stg_crm__campaigns AS c USING (campaign_id)
                WHERE m.member_group = 'control' AND c.status = 'running'
                  AND m.campaign_id <> $campaign
                UNION
                -- ... holdouts of our earlier releases of other campaigns, still protected
                SELECT customer_id FROM marts.campaign_audiences
                WHERE "group" = '{HOLDOUT}' AND campaign_id <> $campaign
                  AND as_of_date < $as_of AND as_of_date >= $protect_from
                UNION
                -- ... and the holdouts other offers' lists draw today
                SELECT customer_id FROM same_day_holdouts
            ),
            touched AS (
                SELECT DISTINCT customer_id FROM marts.fct_interactions
                WHERE is_campaign_touch AND occurred_at >= $cool_from AND occurred_at < $cutoff
                  AND campaign_id IS DISTINCT FROM $campaign
            ),
            contacts AS (
                SELECT
                    customer_id, full_name, email, phone,
                    coalesce(regexp_full_match(trim(email), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+'), false)
                    OR coalesce(length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 7, false)
                        AS has_valid_contact
                FROM staging.stg_crm__customers
            )
            SELECT
                a.customer_id, a.offer_id, a.score, a.band, a.decile, a.rule_id, a.rule,
                a.list_rank, a.expected_value, a.model_version, a.selected_by,
                c.full_name, c.email, c.phone,
                CASE
                    WHEN a.customer_id IN (SELECT customer_id FROM adopted) THEN 'already_adopted'
                    WHEN a.customer_id IN (SELECT customer_id FROM opted_out) THEN 'opted_out'
                    WHEN a.customer_id IN (SELECT customer_id FROM other_holdouts)
                        THEN 'other_campaign_holdout'
                    WHEN a.customer_id IN (SELECT customer_id FROM touched) THEN 'cooling_off'
                    WHEN NOT coalesce(c.has_valid_contact, false) THEN 'invalid_contact'
                END AS suppressed_because
            FROM audience AS a
            LEFT JOIN contacts AS c USING (customer_id)
            ORDER BY a.list_rank
            """,
            {
                "as_of": as_of,
                "offer": offer,
                "campaign": campaign_id,
                "cutoff": cutoff,
                "cool_from": cutoff - timedelta(days=config.cooling_off_days),
                "protect_from": as_of - timedelta(days=config.holdout_protect_days),
            },
        ).df()
    finally:
        con.unregister("same_day_holdouts")
    return frame


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


def offer_folder(root: Path, offer: str) -> Path:
    """The offer's folder under audiences/: its id, or a safe name derived from it when the
    id is not a plain name (crm.runs.folder_name), so no offer id stops a release."""
    from crm.runs import folder_name

    return root / folder_name(offer)


def releases(root: Path, offer: str) -> list[tuple[Path, dict]]:
    """Every complete release folder of the offer with its manifest, oldest first."""
    found = []
    for manifest in offer_folder(root, offer).glob("*/manifest.json"):
        folder = manifest.parent
        if folder.name.startswith(".") or folder.is_symlink():
            continue
        found.append((folder, json.loads(manifest.read_text())))
    return sorted(found, key=lambda item: _folder_key(item[0].name))


def latest_release(root: Path, offer: str) -> tuple[Path, dict] | None:
    """The folder and manifest `latest` points at (or, without the link, the one
    LATEST.txt names), if any."""
    link = offer_folder(root, offer) / LATEST
    named = offer_folder(root, offer) / LATEST_NAME_FILE
    if link.is_symlink():
        folder = link.resolve()
    elif named.exists():
        folder = named.parent / named.read_text().strip()
    else:
        return None
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    return folder, json.loads(manifest.read_text())


def build_release(
    con,
    offer: str,
    as_of: date,
    run_id: str | None,
    config: ActivationConfig,
    root: Path,
) -> Release:
    """Select, suppress, split and diff one offer's list (reads the warehouse, and keeps the
    new holdout assignments in `marts.campaign_audience_groups`)."""
    campaign_id = config.campaign_for(offer)
    frame = candidates(con, offer, campaign_id, as_of, config)
    suppressed = frame["suppressed_because"].notna()
    counts = {
        reason: int((frame["suppressed_because"] == reason).sum()) for reason in SUPPRESSION_REASONS
    }
    rows = frame[~suppressed].drop(columns=["suppressed_because"]).reset_index(drop=True)
    known = dict(
        con.execute(
            'SELECT customer_id, "group" FROM marts.campaign_audience_groups WHERE campaign_id = ?',
            [campaign_id],
        ).fetchall()
    )
    rows["group"] = assign_groups(campaign_id, rows["customer_id"], config.holdout_share, known)
    rows["campaign_id"] = campaign_id
    rows["as_of_date"] = as_of
    rows["list_rank"] = np.arange(1, len(rows) + 1)
    checksum = content_checksum(rows)

    existing = releases(root, offer) if offer_folder(root, offer).exists() else []
    same_date = [(f, m) for f, m in existing if m["as_of_date"] == as_of.isoformat()]
    # the same list as the date's newest revision is that release; a list that goes back to
    # an older revision's content is a new revision (latest only moves forward)
    newest = same_date[-1] if same_date else None
    reused = newest if newest and newest[1]["content_checksum"] == checksum else None
    if reused is not None:
        # the same list again: the release that exists is the answer, nothing new is made
        diff = pd.read_parquet(reused[0] / "diff.parquet")[list(DIFF_COLUMNS)]
        return Release(offer, campaign_id, as_of, rows, diff, reused[1])
    revision = 1 + max((int(m["revision"]) for _, m in same_date), default=0)
    # the previous release: the newest one before this date (so backfills diff correctly)
    earlier = [(f, m) for f, m in existing if _folder_key(f.name) < (as_of.isoformat(), revision)]
    previous = earlier[-1] if earlier else None
    previous_rows = pd.read_parquet(previous[0] / "audience.parquet") if previous else None
    diff = diff_releases(previous_rows, rows)
    group_counts = rows["group"].value_counts()
    manifest = {
        "release_id": f"{campaign_id}:{as_of.isoformat()}:{checksum[:12]}",
        "offer_id": offer,
        "campaign_id": campaign_id,
        "as_of_date": as_of.isoformat(),
        "revision": revision,
        "folder": as_of.isoformat() if revision == 1 else f"{as_of.isoformat()}.r{revision}",
        "run_id": run_id,
        "model_versions": sorted(rows["model_version"].dropna().unique().tolist())
        or sorted(frame["model_version"].dropna().unique().tolist()),
        "selection_rule": frame["selected_by"].iloc[0] if len(frame) else None,
        "scored_list": int(len(frame)),
        "row_count": int(len(rows)),
        "target": int(group_counts.get(TARGET, 0)),
        "holdout": int(group_counts.get(HOLDOUT, 0)),
        "holdout_share": config.holdout_share,
        "suppressed": counts,
        "suppressed_total": int(suppressed.sum()),
        "contact_fields": list(config.contact_fields["files"]),
        "content_checksum": checksum,
        "previous_release_id": previous[1]["release_id"] if previous else None,
        "diff": {change: int((diff["change"] == change).sum()) for change in DIFF_CHANGES},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return Release(offer, campaign_id, as_of, rows, diff, manifest)


def remember_groups(con, release: Release) -> int:
    """Persist the group of every customer seen for the first time in this campaign."""
    new = release.rows[["customer_id", "group"]].copy()
    new["campaign_id"] = release.campaign_id
    con.register("release_groups", new)
    try:
        before = con.execute("SELECT count(*) FROM marts.campaign_audience_groups").fetchall()[0][0]
        con.execute(
            """
            INSERT INTO marts.campaign_audience_groups
            SELECT n.campaign_id, n.customer_id, n."group", ?, ?
            FROM release_groups AS n
            ANTI JOIN marts.campaign_audience_groups AS g
                ON g.campaign_id = n.campaign_id AND g.customer_id = n.customer_id
            """,
            [release.as_of, release.release_id],
        )
        after = con.execute("SELECT count(*) FROM marts.campaign_audience_groups").fetchall()[0][0]
    finally:
        con.unregister("release_groups")
    return int(after - before)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_rows(release: Release, contact_fields: tuple[str, ...]) -> pd.DataFrame:
    """The release as the files carry it: the release columns plus the allowed contacts."""
    return release.rows[RELEASE_COLUMNS + list(contact_fields)]


def write_release(
    release: Release, root: Path, contact_fields: tuple[str, ...], republish: bool = False
) -> dict:
    """Write the release folder atomically and move `latest` to it (back in time too when
    `republish`). Returns what was done."""
    offer_dir = offer_folder(root, release.offer)
    offer_dir.mkdir(parents=True, exist_ok=True)
    for leftover in offer_dir.glob(".tmp-*"):  # from a process killed mid-way
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink()
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    final = offer_dir / release.manifest["folder"]
    if final.exists():
        written = False
    else:
        staging = offer_dir / f".tmp-{release.manifest['folder']}-{os.getpid()}"
        try:
            manifest = _write_folder(staging, release, file_rows(release, contact_fields))
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk: free what we took
            if exc.errno == errno.ENOSPC:
                raise RetryableError(
                    f"no space left on the device while writing the {release.offer} release "
                    f"under {offer_dir}; `latest` stays on the previous release. Free space "
                    "and run again."
                ) from exc
            raise
        os.rename(staging, final)
        fsync_path(offer_dir)
        release.manifest = manifest
        written = True
    moved = point_latest(offer_dir, final.name, back_in_time=republish)
    is_latest = os.readlink(offer_dir / LATEST) == final.name
    return {"folder": str(final), "written": written, "latest_moved": moved, "is_latest": is_latest}


#: The files of a release folder, each checksummed in its manifest. Marketing uses the two
#: CSVs (target: contact; holdout: never contact) and README.txt; systems the Parquet files.
RELEASE_FILES = (
    "target.csv",
    "holdout.csv",
    "diff.csv",
    "audience.parquet",
    "diff.parquet",
    "README.txt",
)

RELEASE_README = """\
{offer} audience for campaign {campaign_id}, as of {as_of} (release {release_id})

target.csv    the customers to contact ({target:,} rows)
holdout.csv   the customers NOT to contact ({holdout:,} rows): the holdout group. Leave
              them out of the campaign; comparing them with the target group afterwards
              is how the campaign's real effect is measured.
diff.csv      what changed since the previous release: customers added, removed, or with
              a new band or score ({changes:,} rows)
audience.parquet, diff.parquet   the same rows for systems (target and holdout together,
              told apart by the `group` column); manifest.json: counts and checksums

Columns of target.csv and holdout.csv:
  customer_id     the customer's id in the CRM
  offer_id        the offer this list is for; campaign_id: the campaign it feeds
  score           the model's estimate (0 to 1) that the customer adopts the offer
  band            the likelihood band of the score
  decile          1 = the top tenth of the scored customers by score, 10 = the lowest
  rule_id, rule   the segment rule (a leaf of the decision tree) that gave the score
  group           target or holdout
  list_rank       the customer's place on this release (1 = the highest score)
  expected_value  score x the offer's margin - the contact cost: what a contact is worth
  model_version   the model that scored the customer{contacts}

Columns of diff.csv: customer_id, change (added, removed, band_changed, score_changed),
old_band, new_band, old_score, new_score, release_id, campaign_id.
"""


def _readme(release: Release, rows: pd.DataFrame, diff: pd.DataFrame) -> str:
    contacts = [c for c in rows.columns if c not in RELEASE_COLUMNS]
    return RELEASE_README.format(
        offer=release.offer,
        campaign_id=release.campaign_id,
        as_of=release.as_of,
        release_id=release.release_id,
        target=int((rows["group"] == "target").sum()),
        holdout=int((rows["group"] == "holdout").sum()),
        changes=len(diff),
        contacts=(
            "\n  " + ", ".join(contacts) + "   contact details the configuration allows in files"
            if contacts
            else ""
        ),
    )


def _write_folder(staging: Path, release: Release, rows: pd.DataFrame) -> dict:
    """The release's files, checksummed, flushed and read back, in `staging`; the manifest."""
    staging.mkdir()
    rows.to_parquet(staging / "audience.parquet", index=False)
    faults.checkpoint("activation.files.parquet_written")
    for group in ("target", "holdout"):
        rows[rows["group"] == group].to_csv(
            staging / f"{group}.csv", index=False, lineterminator="\n"
        )
    diff = release.diff.assign(release_id=release.release_id, campaign_id=release.campaign_id)
    diff.to_parquet(staging / "diff.parquet", index=False)
    diff.to_csv(staging / "diff.csv", index=False, lineterminator="\n")
    (staging / "README.txt").write_text(_readme(release, rows, diff))
    manifest = dict(release.manifest)
    manifest["files"] = {
        name: {"sha256": _sha256(staging / name), "bytes": (staging / name).stat().st_size}
        for name in RELEASE_FILES
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    for name in (*RELEASE_FILES, "manifest.json"):
        fsync_path(staging / name)
    verify_release(staging, expected_rows=len(rows))
    faults.checkpoint("activation.files.verified")
    return manifest


def verify_release(folder: Path, expected_rows: int | None = None) -> dict:
    """Read a release folder back: every file present, checksums and row counts as stated."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, stated in manifest["files"].items():
        if _sha256(folder / name) != stated["sha256"]:
            raise BadInputError(f"{folder / name}: checksum differs from the manifest")
    rows = pd.read_parquet(folder / "audience.parquet", columns=["customer_id"])
    expected = manifest["row_count"] if expected_rows is None else expected_rows
    if len(rows) != expected or rows["customer_id"].duplicated().any():
        raise BadInputError(f"{folder}: {len(rows)} rows, expected {expected} distinct")
    return manifest


def point_latest(offer_dir: Path, folder_name: str, back_in_time: bool = False) -> bool:
    """Atomically point `latest` at `folder_name` (a relative symlink replaced by rename),
    unless it already points there or (but with `back_in_time`) at a later date.
    `LATEST.txt` names the same folder for where symlinks do not survive (a file share)."""
    link = offer_dir / LATEST
    current = os.readlink(link) if link.is_symlink() else None
    if current == folder_name:
        _write_latest_name(offer_dir, folder_name)
        return False
    later = current is not None and _folder_key(current) > _folder_key(folder_name)
    if later and not back_in_time:
        return False  # a backfill does not move latest back in time
    temporary = offer_dir / f".tmp-latest-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(folder_name, temporary)
    faults.checkpoint("activation.latest.before_swap")
    os.replace(temporary, link)
    _write_latest_name(offer_dir, folder_name)
    fsync_path(offer_dir)
    return True


def _write_latest_name(offer_dir: Path, folder_name: str) -> None:
    """`LATEST.txt`: the latest folder's name, replaced atomically. (Not `LATEST`: on a
    case-insensitive file system that is the same name as the `latest` link.)"""
    path = offer_dir / LATEST_NAME_FILE
    if path.exists() and path.read_text().strip() == folder_name:
        return
    temporary = offer_dir / f".tmp-latest-name-{os.getpid()}"
    temporary.write_text(folder_name + "\n")
    fsync_path(temporary)
    os.replace(temporary, path)


def _folder_key(name: str) -> tuple[str, int]:
    day, _, revision = name.partition(".r")
    return day, int(revision or 1)
