"""A release as files: the immutable folder (`target.csv`, `holdout.csv`, `diff.csv`,
`README.txt`, Parquet copies, `manifest.json`) written under a temporary name, read back,
renamed into place; then `latest` moved by an atomic replace. What is on disk is found here
too: an offer's folder, its releases, the latest one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd

from activation.release import RELEASE_COLUMNS, Release
from crm import faults
from crm.errors import BadInputError, RetryableError
from crm.files import fsync_path

LATEST = "latest"
LATEST_NAME_FILE = "LATEST.txt"


def offer_folder(root: Path, offer: str) -> Path:
    """The offer's folder under audiences/: its id, or a safe name derived from it when the
    id is not a plain name (crm.files.folder_name), so no offer id stops a release."""
    from crm.files import folder_name

    return root / folder_name(offer)


def releases(root: Path, offer: str) -> list[tuple[Path, dict]]:
    """Every complete release folder of the offer with its manifest, oldest first."""
    found = []
    for manifest in offer_folder(root, offer).glob("*/manifest.json"):
        folder = manifest.parent
        if folder.name.startswith(".") or folder.is_symlink():
            continue
        found.append((folder, json.loads(manifest.read_text())))
    return sorted(found, key=lambda item: folder_key(item[0].name))


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
    later = current is not None and folder_key(current) > folder_key(folder_name)
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


def folder_key(name: str) -> tuple[str, int]:
    day, _, revision = name.partition(".r")
    return day, int(revision or 1)
